"""Draining a compute host for maintenance, and restoring it (``gureum host drain|restore``).

An operation is a row (``HostOperation``) with one item per instance; the conductor
runs it (gureum/workflows/drain.py) and everything it needs to continue after a
restart, or after the operator's command was interrupted, is in those rows. The
rules for starting one live here, called by the API (admins only):

* a drain disables the host's compute service (reason "maintenance" unless given)
  in the same transaction, so the scheduler places nothing new there; asking again
  for a drain of a host whose drain is paused, failed or done continues that same
  drain (failed instances are tried again, instances that arrived since are added);
* a restore enables the service and moves back what the host's last drain moved:
  its items start as the drain's, in the other direction; asking again continues it;
* one operation runs on a host at a time: a drain while a restore runs (or the other
  way round) is a 409 that says how to pause the other one;
* pausing asks the runner to stop after the instance it is moving.

The caller owns the session and has checked the policy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.compute import services, zones
from gureum.compute.models import ComputeNode, HostOperation, HostOperationItem, Instance
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.errors import Conflict, InvalidInput, NotFound

POLICIES = ("live", "cold", "stop")
ACTIVE = ("running", "pausing")  # a runner works (or is about to) on the operation
OPEN = ("running", "pausing", "paused", "failed", "done")  # not yet restored
DEFAULT_REASON = "maintenance"

# How a drain's finished item is undone by the restore: (restore policy, done as).
UNDO = {"live-migrated": "live", "cold-migrated": "cold", "stopped": "start"}


def get(s: Session, operation_id: int) -> HostOperation:
    op = s.get(HostOperation, operation_id)
    if op is None:
        raise NotFound(f"Host operation {operation_id} could not be found.")
    return op


def items(s: Session, operation_id: int) -> list[HostOperationItem]:
    return list(s.scalars(select(HostOperationItem).where(
        HostOperationItem.operation_id == operation_id).order_by(
        HostOperationItem.position, HostOperationItem.id)))


def list_operations(s: Session, host: str | None = None) -> list[HostOperation]:
    """Newest first."""
    stmt = select(HostOperation).order_by(HostOperation.id.desc())
    if host:
        stmt = stmt.where(HostOperation.host == host)
    return list(s.scalars(stmt))


def latest(s: Session, host: str, kind: str | None = None) -> HostOperation | None:
    stmt = select(HostOperation).where(HostOperation.host == host)
    if kind:
        stmt = stmt.where(HostOperation.kind == kind)
    return s.scalar(stmt.order_by(HostOperation.id.desc()).limit(1))


def _check_host(s: Session, host: str, field: str) -> None:
    if s.scalar(select(ComputeNode.id).where(ComputeNode.host == host).limit(1)) is None \
            and zones.compute_service(s, host) is None:
        raise NotFound(f"Compute host {host} could not be found.") if field == "host" \
            else InvalidInput(f"Compute host {host} could not be found.", field=field)


def _refuse_other(s: Session, host: str, kind: str) -> None:
    other = latest(s, host)
    if other is not None and other.kind != kind and other.status in ACTIVE:
        command = f"gureum host {other.kind} {host}"
        raise Conflict(f"A {other.kind} of {host} is in progress (operation {other.id}); "
                       f"pause it first (Ctrl-C on `{command}`, or PUT status 'paused').")


def _reopen(s: Session, op: HostOperation) -> None:
    """Continue an operation: failed items are tried again, the runner is handed it."""
    for item in items(s, op.id):
        if item.status == "failed":
            item.status, item.message = "pending", None
            item.migration_id = item.request_id = None
            item.started_at = item.finished_at = None
    if op.status not in ACTIVE:
        op.status = "running"
    op.finished_at = None


def _hand_over(s: Session, op: HostOperation) -> None:
    s.flush()
    outbox.add(s, "host_operation", {"operation_id": op.id})


def start_drain(s: Session, ctx: RequestContext, host: str, policy: str | None = None,
                per_server: dict[str, str] | None = None, target: str | None = None,
                reason: str | None = None) -> HostOperation:
    """Disable the host's compute service and hand its drain to the conductor (a new
    drain, or the host's open one continued, with any option given now replacing
    the one given before)."""
    _check_host(s, host, "host")
    if target is not None:
        _check_host(s, target, "target")
        if target == host:
            raise InvalidInput(f"The target host can't be the host drained ({host}).",
                               field="target")
    _refuse_other(s, host, "drain")
    svc = services.by_host(s, host, "nova-compute")
    op = latest(s, host)
    if per_server:
        _check_named(s, host, per_server, op if op is not None and op.kind == "drain"
                     and op.status in OPEN else None)
    if op is None or op.kind != "drain" or op.status not in OPEN:
        op = HostOperation(host=host, kind="drain", policy=policy or "live",
                           per_server=dict(per_server or {}), target=target,
                           reason=reason or DEFAULT_REASON, user_id=ctx.user_id,
                           project_id=ctx.project_id or "", request_id=ctx.request_id)
        s.add(op)
    else:
        if policy is not None:
            op.policy = policy
        if per_server:
            op.per_server = {**(op.per_server or {}), **per_server}
        if target is not None:
            op.target = target
        if reason is not None:
            op.reason = reason
        _reopen(s, op)
    services.set_status(svc, True, op.reason or DEFAULT_REASON)
    _hand_over(s, op)
    return op


def _check_named(s: Session, host: str, per_server: dict[str, str],
                 op: HostOperation | None) -> None:
    """Each server named must be on the host (or in its open drain): a misspelt name
    would otherwise have its server moved when the operator wanted it stopped."""
    known: set[str] = set()
    for inst in s.scalars(select(Instance).where(Instance.host == host,
                                                 Instance.deleted.is_(False))):
        known.update((inst.id, inst.name))
    if op is not None:
        for item in items(s, op.id):
            known.update((item.instance_id, item.name))
    for name in per_server:
        if name not in known:
            raise InvalidInput(f"per_server: no server {name!r} on host {host}.",
                               field="per_server")


def start_restore(s: Session, ctx: RequestContext, host: str) -> HostOperation:
    """Enable the host's compute service and hand the move back of what its last
    drain moved to the conductor (or continue the restore under way)."""
    _check_host(s, host, "host")
    _refuse_other(s, host, "restore")
    svc = services.by_host(s, host, "nova-compute")
    services.set_status(svc, False, None)
    op = latest(s, host)
    if op is not None and op.kind == "restore" and op.status != "done":
        _reopen(s, op)
        _hand_over(s, op)
        return op
    drain = op if op is not None and op.kind == "drain" and op.status in OPEN else None
    restore = HostOperation(host=host, kind="restore", policy="live",
                            drain_id=drain.id if drain else None, user_id=ctx.user_id,
                            project_id=ctx.project_id or "", request_id=ctx.request_id)
    s.add(restore)
    s.flush()
    if drain is not None:
        drain.status = "restored"
        for position, item in enumerate(i for i in items(s, drain.id)
                                        if i.status == "done" and i.outcome in UNDO):
            s.add(HostOperationItem(
                operation_id=restore.id, instance_id=item.instance_id, name=item.name,
                position=position, policy=UNDO[item.outcome or ""],
                source=item.dest or host, dest=host, was_running=item.was_running))
    _hand_over(s, restore)
    return restore


def pause(s: Session, op: HostOperation) -> None:
    """Ask the runner to stop after the instance it is moving (nothing to do otherwise)."""
    if op.status == "running":
        op.status = "pausing"
        op.updated_at = utcnow()


def counts(s: Session, operation_id: int) -> dict[str, int]:
    rows = s.execute(select(HostOperationItem.status, func.count()).where(
        HostOperationItem.operation_id == operation_id).group_by(HostOperationItem.status))
    return {str(status): int(n) for status, n in rows}


def check_policy(value: str, field: str) -> str:
    if value not in POLICIES:
        raise InvalidInput(f"Invalid policy {value!r} for {field}: one of "
                           f"{', '.join(POLICIES)}.", field=field)
    return value


def described(s: Session, op: HostOperation, with_items: bool = True) -> dict[str, Any]:
    """What the view needs besides the row: its items (or their counts)."""
    found = items(s, op.id) if with_items else []
    return {"items": found, "counts": counts(s, op.id)}
