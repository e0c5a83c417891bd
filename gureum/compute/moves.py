"""Moving a server between hosts: resize, cold and live migration, evacuation.

Each move starts as an action does (compute/actions.py: the action table, the
task_state compare-and-swap, the instance action) and writes the migration row
that the conductor's workflow runs from; the outbox hands that row over once
the transaction commits. The rules that decide whether a move may start live
here: a named target host must exist and differ from the source, a resize must
change the flavor and may not shrink the root disk, and an evacuation needs
the source host fenced (its compute service down or forced down) so that the
guest can never run on two hosts at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.compute import actions, capabilities, instances, zones
from gureum.compute.models import ComputeNode, Instance, Migration
from gureum.compute.servers import find_flavor, flavor_snapshot
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput


def check_host(s: Session, host: str, source: str | None) -> None:
    """A target host the caller named: it must exist and not be the source."""
    if s.scalar(select(ComputeNode.id).where(ComputeNode.host == host).limit(1)) is None:
        raise InvalidInput(f"Compute host {host} could not be found.", field="host")
    if host == source:
        raise InvalidInput(f"The target host can't be the same one ({host}).", field="host")


def _begin_workflow(s: Session, ctx: RequestContext, inst: Instance, action: str,
                    nova_action: str, migration_type: str, *,
                    new_flavor: dict[str, Any] | None = None, host: str | None = None,
                    status: str | None = None, state: dict[str, Any] | None = None
                    ) -> Migration:
    """Start the move of a server its caller has looked up and checked (the lock, a
    named host, fencing): the action, the migration row the workflow runs from, and
    its hand-over to the conductor."""
    from gureum.compute import volumes
    from gureum.workflows.resize import start_migration

    if migration_type != "evacuation":  # a dead host's server goes, whatever was under way
        volumes.check_settled(s, inst.id)
    actions.begin(s, ctx, inst, action, nova_action)
    mig = start_migration(s, inst, migration_type, new_flavor, host, ctx.user_id,
                          ctx.project_id or "")
    if status is not None:
        mig.status = status
    if state:
        mig.state = {**(mig.state or {}), **state}
    outbox.add(s, "begin_workflow", {"migration_id": mig.id, "request_id": ctx.request_id})
    return mig


def resize(s: Session, ctx: RequestContext, server_id: str, flavor_ref: str) -> Migration:
    """Resize to another flavor: never the same one, never a smaller root disk."""
    inst = instances.visible(s, ctx, server_id)
    flavor = find_flavor(s, ctx, flavor_ref)
    current = inst.flavor or {}
    if flavor.id == inst.flavor_id:
        raise InvalidInput("When resizing, instances must change flavor!", field="flavorRef")
    if flavor.disk and flavor.disk < int(current.get("disk", 0)):
        raise InvalidInput("Resize to a smaller disk is not allowed: the root disk would "
                           f"shrink from {current.get('disk')} GB to {flavor.disk} GB.",
                           field="flavorRef")
    instances.check_not_locked(ctx, inst)
    return _begin_workflow(s, ctx, inst, "resize", "resize", "resize",
                           new_flavor=flavor_snapshot(flavor))


def migrate(s: Session, ctx: RequestContext, server_id: str, host: str | None) -> Migration:
    """Cold migration, to the host named (admin) or one the scheduler picks."""
    inst = actions.changeable(s, ctx, server_id)
    if host is not None:
        check_host(s, host, inst.host)
    return _begin_workflow(s, ctx, inst, "migrate", "migrate", "migration", host=host)


def finish_resize(s: Session, ctx: RequestContext, server_id: str, confirm: bool) -> None:
    """confirmResize or revertResize of a server in VERIFY_RESIZE."""
    action = "confirmResize" if confirm else "revertResize"
    inst = actions.changeable(s, ctx, server_id)
    actions.begin(s, ctx, inst, action, action)
    outbox.add(s, "finish_resize", {"instance_id": inst.id, "request_id": ctx.request_id,
                                    "confirm": confirm})


def live_migrate(s: Session, ctx: RequestContext, server_id: str, host: str | None,
                 block_migration: bool | str) -> Migration:
    """Live migration (block_migration True, False or "auto"); a lock does not stop an
    operator's move, as with Nova."""
    inst = instances.visible(s, ctx, server_id)
    if host is not None:
        check_host(s, host, inst.host)
    mig = _begin_workflow(s, ctx, inst, "os-migrateLive", "live-migration",
                          "live-migration", host=host, status="queued",
                          state={"block_migration": block_migration})
    if block_migration is True:
        capabilities.require(s, mig.source_compute, capabilities.BLOCK_MIGRATION)
    return mig


def check_fenced(s: Session, host: str | None, settings: Settings) -> None:
    """Evacuation only from a host whose compute service is down or forced down: a
    host that still answers may still run the guest, which would then run twice."""
    if host is None:
        return
    svc = zones.compute_service(s, host)
    if svc is not None and zones.is_up(svc, settings):
        raise Conflict(f"Compute service of {host} is still in use.")


def evacuate(s: Session, ctx: RequestContext, server_id: str, host: str | None,
             keep_stopped: bool, settings: Settings) -> Migration:
    """Rebuild a server of a fenced (dead) host on another host; keep_stopped (2.95)
    leaves it stopped there."""
    inst = instances.visible(s, ctx, server_id)
    if host is not None:
        check_host(s, host, inst.host)
    check_fenced(s, inst.host, settings)
    return _begin_workflow(s, ctx, inst, "evacuate", "evacuate", "evacuation",
                           host=host, status="accepted", state={"keep_stopped": keep_stopped})
