"""Build host states from the database, filter, weigh, and claim the best host."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.models import (
    Aggregate,
    AggregateHost,
    ComputeNode,
    ComputeService,
)
from gureum.config import ComputeSettings
from gureum.db import utcnow
from gureum.errors import GureumError
from gureum.scheduler import claims
from gureum.scheduler.filters import filter_hosts
from gureum.scheduler.model import HostState, RequestSpec
from gureum.scheduler.weighers import weigh

log = logging.getLogger("gureum.scheduler")

COMPUTE_BINARY = "gureum-compute"


class NoValidHost(GureumError):
    status = 400
    title = "No valid host"


def service_is_up(svc: ComputeService, down_after: float, now: dt.datetime | None = None
                  ) -> bool:
    if svc.forced_down or svc.last_seen_up is None:
        return False
    now = now or utcnow()
    return (now - svc.last_seen_up).total_seconds() <= down_after


def load_host_states(s: Session, conf: ComputeSettings) -> list[HostState]:
    services = {svc.host: svc for svc in s.scalars(
        select(ComputeService).where(ComputeService.binary == COMPUTE_BINARY))}
    aggregates: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for agg_host, name, agg_md in s.execute(
            select(AggregateHost.host, Aggregate.name, Aggregate.metadata_).join(
                Aggregate, Aggregate.id == AggregateHost.aggregate_id)):
        aggregates.setdefault(agg_host, []).append((name, dict(agg_md or {})))
    now = utcnow()
    out = []
    for node in s.scalars(select(ComputeNode).order_by(ComputeNode.host)):
        svc = services.get(node.host)
        aggs = aggregates.get(node.host, [])
        metadata: dict[str, str] = {}
        for _name, md in aggs:
            metadata.update(md)
        out.append(HostState(
            host=node.host, node=node.hypervisor_hostname, node_id=node.id,
            enabled=bool(svc and not svc.disabled),
            up=bool(svc and service_is_up(svc, conf.service_down_time, now)),
            availability_zone=metadata.get("availability_zone")
            or conf.default_availability_zone,
            aggregates=tuple(name for name, _ in aggs), aggregate_metadata=metadata,
            hypervisor_type=node.hypervisor_type,
            vcpus_total=node.vcpus * node.cpu_allocation_ratio - node.reserved_vcpus,
            memory_mb_total=node.memory_mb * node.ram_allocation_ratio
            - node.reserved_memory_mb,
            disk_gb_total=node.local_gb * node.disk_allocation_ratio - node.reserved_disk_gb,
            vcpus_used=node.vcpus_used, memory_mb_used=node.memory_mb_used,
            disk_gb_used=node.local_gb_used,
        ))
    return out


@dataclass(frozen=True)
class Selection:
    host: str
    node: str
    node_id: int
    availability_zone: str


def select_and_claim(s: Session, spec: RequestSpec, conf: ComputeSettings) -> Selection:
    """Filter, weigh, then claim the best host that still has room.

    Raises NoValidHost with Nova's message (and which filters removed hosts).
    """
    hosts = load_host_states(s, conf)
    passed, removed = filter_hosts(hosts, spec)
    for h in weigh(passed, spec, conf.weigher):
        if claims.claim(s, h.node_id, spec.instance_id, spec.vcpus, spec.memory_mb,
                        spec.disk_gb):
            return Selection(h.host, h.node, h.node_id, h.availability_zone)
        # Someone claimed it first; the next host may still have room.
        removed["claim"] = removed.get("claim", 0) + 1
    why = ", ".join(f"{name} removed {n}" for name, n in removed.items()) or "no hosts"
    raise NoValidHost("No valid host was found. There are not enough hosts available. "
                      f"({len(hosts)} hosts; {why})")
