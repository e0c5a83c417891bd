"""Turn an instance (and what an operation asks for) into a RequestSpec."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.models import Instance, ServerGroup
from gureum.scheduler.model import RequestSpec


def request_spec(s: Session, inst: Instance, *, flavor: dict[str, Any] | None = None,
                 consumer_id: str | None = None, ignore_hosts: frozenset[str] = frozenset(),
                 requested_host: str | None = None, requested_node: str | None = None,
                 availability_zone: str | bool | None = True) -> RequestSpec:
    """The scheduling request for an instance.

    Boots use the instance as it is; moves pass the new flavor, the consumer that
    holds the claim (the migration), the hosts to avoid (the source) and a target.
    ``availability_zone=True`` keeps the instance's pinned zone.
    """
    flavor = flavor if flavor is not None else (inst.flavor or {})
    hints = inst.scheduler_hints or {}
    sysmeta = inst.system_metadata or {}
    tried = frozenset(sysmeta.get("tried_hosts", [])) | ignore_hosts

    def hosts_of(ids: Any) -> frozenset[str]:
        ids = [ids] if isinstance(ids, str) else list(ids or [])
        rows = s.scalars(select(Instance.host).where(Instance.id.in_(ids),
                                                     Instance.host.is_not(None)))
        return frozenset(h for h in rows if h)

    group_policy = None
    group_hosts: frozenset[str] = frozenset()
    max_per_host = 1
    if inst.server_group_id:
        group = s.get(ServerGroup, inst.server_group_id)
        if group is not None:
            group_policy = group.policy
            max_per_host = int((group.rules or {}).get("max_server_per_host", 1))
            group_hosts = frozenset(h for h in s.scalars(select(Instance.host).where(
                Instance.server_group_id == group.id, Instance.id != inst.id,
                Instance.deleted.is_(False), Instance.host.is_not(None))) if h)
    forced = sysmeta.get("forced_destination") or {}
    requested = sysmeta.get("requested_destination") or {}
    if requested_host or requested_node:
        forced, requested = {}, {"host": requested_host, "node": requested_node}
    elif consumer_id is not None:
        forced, requested = {}, {}  # a move is not bound by where the boot was forced
    az = inst.requested_az if availability_zone is True else availability_zone
    return RequestSpec(
        instance_id=consumer_id or inst.id, project_id=inst.project_id,
        vcpus=int(flavor.get("vcpus", 1)), memory_mb=int(flavor.get("ram", 0)),
        disk_gb=int(flavor.get("disk", 0)) + int(flavor.get("ephemeral", 0))
        + (int(flavor.get("swap", 0)) + 1023) // 1024,
        availability_zone=az if isinstance(az, str) else None,
        force_host=forced.get("host"), force_node=forced.get("node"),
        requested_host=requested.get("host"), requested_node=requested.get("node"),
        image_properties=sysmeta.get("image_properties", {}),
        group_policy=group_policy, group_hosts=group_hosts,
        group_max_server_per_host=max_per_host,
        same_host=hosts_of(hints.get("same_host")),
        different_host=hosts_of(hints.get("different_host")),
        ignore_hosts=tried, extra_specs=dict(flavor.get("extra_specs") or {}),
    )
