"""A server's NICs while they change: attach, detach, and the unplug of a port deleted
under a running server (Neutron's ``network-vif-deleted``).

Each change is an ``InterfaceOperation`` row written in the transaction that starts
it, so a process killed in the middle (the API waiting for its agent call, a
conductor) leaves work that a restart finishes:

* ``attach``: the port was taken and bound; the host's agent plugs it. Resumed, it
  is asked again (plugging is idempotent) and the outcome recorded.
* ``detach``: the user asked for the NIC to go; the agent unplugs it, then the port
  is released (deleted if Compute made it, else kept, detached: S11).
* ``rollback``: an attach whose outcome is unknown (the agent did not answer): the
  NIC is unplugged again, then the port released, so the guest never keeps a NIC
  without a port and the port is free again.
* ``unplug``: the port was deleted through the Networking API while attached; the
  server's network_info drops it at once and the agent unplugs the NIC.

Whoever works on a row holds its lease (``lease_until``); the conductor takes up rows
without one, or whose lease ran out (its sweep, and at start). Outcomes are recorded
only by the holder of a row of the expected kind, so two runs never both decide.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.compute import instances
from gureum.compute.guests import refresh_network_info
from gureum.compute.models import Instance, InterfaceOperation
from gureum.db.base import utcnow
from gureum.errors import Conflict
from gureum.network import service as netsvc

log = logging.getLogger("gureum.compute.interfaces")

ATTACH, DETACH, ROLLBACK, UNPLUG = "attach", "detach", "rollback", "unplug"
EV_ATTACH = "compute_attach_interface"
EV_DETACH = "compute_detach_interface"
OUTBOX_METHOD = "interface_work"
# Who holds a row an API request started: this process (a new one each start), so a
# conductor in the same `gureum up` knows the rows a killed predecessor held.
_CURRENT: list[str] = []  # the holders of this process
API_PREFIX = f"api@{socket.gethostname()}/"
API_HOLDER = API_PREFIX + uuid.uuid4().hex[:12]
_CURRENT.append(API_HOLDER)


def operation(s: Session, instance_id: str, port_id: str) -> InterfaceOperation | None:
    return s.scalar(select(InterfaceOperation).where(
        InterfaceOperation.instance_id == instance_id,
        InterfaceOperation.port_id == port_id))


def begin(s: Session, instance_id: str, port_id: str, kind: str, request_id: str,
          lease: float) -> None:
    """Record an attach or detach the caller runs now (it holds the lease)."""
    found = operation(s, instance_id, port_id)
    if found is not None:
        raise Conflict(f"Port {port_id} of instance {instance_id} has an interface "
                       f"{found.kind} in progress.", nova_type="PortInUse")
    s.add(InterfaceOperation(instance_id=instance_id, port_id=port_id, kind=kind,
                             request_id=request_id or "", created_at=utcnow(),
                             lease_until=utcnow() + dt.timedelta(seconds=lease),
                             held_by=API_HOLDER))
    s.flush()


def _hand_over(s: Session, op: InterfaceOperation) -> None:
    """The conductor takes the row now (no lease; the outbox tells it)."""
    op.lease_until = None
    op.held_by = None
    outbox.add(s, OUTBOX_METHOD, {"instance_id": op.instance_id, "port_id": op.port_id})


def _mine(s: Session, instance_id: str, port_id: str, kind: str
          ) -> InterfaceOperation | None:
    op = operation(s, instance_id, port_id)
    return op if op is not None and op.kind == kind else None


# -- outcomes (recorded by the API after its call, or by the conductor) ---------------

def attached(s: Session, instance_id: str, port_id: str, request_id: str,
             host: str | None) -> bool:
    """The agent plugged the NIC. False when the port was deleted meanwhile (the row
    became an unplug, handed to the conductor now)."""
    op = _mine(s, instance_id, port_id, ATTACH)
    if op is None:
        other = operation(s, instance_id, port_id)
        instances.event_finish(s, instance_id, request_id, EV_ATTACH, "Error", host=host,
                               details=f"Port {port_id} was deleted during the attach.")
        instances.finish_action(s, instance_id, request_id)
        if other is not None and other.kind == UNPLUG:
            _hand_over(s, other)
        return False
    s.delete(op)
    instances.event_finish(s, instance_id, request_id, EV_ATTACH, host=host)
    instances.finish_action(s, instance_id, request_id)
    refresh_network_info(s, instance_id)
    return True


def attach_failed(s: Session, instance_id: str, port_id: str, request_id: str,
                  host: str | None, error: str, unknown: bool) -> None:
    """The attach failed: the port's part is undone. ``unknown``: the agent did not
    answer, so the NIC may be plugged; the conductor unplugs it before the port goes."""
    instances.event_finish(s, instance_id, request_id, EV_ATTACH, "Error", host=host,
                           details=error)
    instances.finish_action(s, instance_id, request_id)
    op = operation(s, instance_id, port_id)
    if op is not None and op.kind == UNPLUG:
        _hand_over(s, op)
        return
    if unknown and op is not None:
        op.kind = ROLLBACK
        _hand_over(s, op)
        return
    if op is not None:
        s.delete(op)
    netsvc.release_port(s, instance_id, port_id)


def detached(s: Session, instance_id: str, port_id: str, request_id: str,
             host: str | None) -> None:
    """The NIC is gone from the guest: the port is released."""
    op = operation(s, instance_id, port_id)
    if op is not None and op.kind in (DETACH, ROLLBACK):
        s.delete(op)
    if request_id:
        instances.event_finish(s, instance_id, request_id, EV_DETACH, host=host)
        instances.finish_action(s, instance_id, request_id)
    if op is None or op.kind != UNPLUG:
        netsvc.release_port(s, instance_id, port_id)
    else:
        _hand_over(s, op)
    refresh_network_info(s, instance_id)


def detach_failed(s: Session, instance_id: str, port_id: str, request_id: str,
                  host: str | None, error: str, unknown: bool) -> None:
    """The detach failed. The agent refused: the NIC and the port stay. ``unknown`` (no
    answer): the conductor detaches it again until the host answers."""
    op = operation(s, instance_id, port_id)
    if op is not None and (unknown or op.kind == UNPLUG):
        _hand_over(s, op)
        return
    instances.event_finish(s, instance_id, request_id, EV_DETACH, "Error", host=host,
                           details=error)
    instances.finish_action(s, instance_id, request_id)
    if op is not None and op.kind == DETACH:
        s.delete(op)


def unplugged(s: Session, instance_id: str, port_id: str) -> None:
    op = _mine(s, instance_id, port_id, UNPLUG)
    if op is not None:
        s.delete(op)
    refresh_network_info(s, instance_id)


def drop(s: Session, instance_id: str, port_id: str) -> None:
    op = operation(s, instance_id, port_id)
    if op is not None:
        s.delete(op)


def settled(s: Session, instance_id: str, port_id: str) -> None:
    """Nothing more to do (a rollback the guest refused: the NIC and its port stay)."""
    drop(s, instance_id, port_id)
    refresh_network_info(s, instance_id)


# -- Neutron's events ------------------------------------------------------------------

def port_deleted(s: Session, instance_id: str, port_id: str) -> bool:
    """``network-vif-deleted``: the port went while attached to the instance. Its
    network_info drops it now, and the conductor unplugs the NIC from the guest (in
    this transaction's outbox). False when there is no such server any more."""
    inst = s.get(Instance, instance_id)
    if inst is None or inst.deleted:
        return False
    refresh_network_info(s, instance_id)
    op = operation(s, instance_id, port_id)
    if op is None:
        op = InterfaceOperation(instance_id=instance_id, port_id=port_id, kind=UNPLUG,
                                request_id="", created_at=utcnow(), lease_until=None)
        s.add(op)
        s.flush()
        _hand_over(s, op)
    else:
        # An attach or detach under way keeps its lease: its caller hands the row over
        # when its own call is back, so the unplug never runs before a late plug.
        op.kind = UNPLUG
        if op.lease_until is None:
            _hand_over(s, op)
    log.info("port %s of %s deleted: its NIC is unplugged", port_id, instance_id)
    return True


def vif_deleted_event(s: Session, instance_id: str, port_id: str) -> None:
    """The external event (os-server-external-events): a port that is still the
    instance's was not deleted, so it stays; otherwise as ``port_deleted`` (asking the
    agent again to unplug a NIC already gone changes nothing)."""
    if netsvc.instance_port(s, instance_id, port_id) is None:
        port_deleted(s, instance_id, port_id)


# -- the conductor's side ---------------------------------------------------------------

def _free(stale: tuple[str, ...] = ()) -> ColumnElement[bool]:
    """Rows nobody holds (no lease, or one run out), and those held by an earlier run
    of a process that just started again: held under one of the ``stale`` prefixes
    (its role and name), but not by this process."""
    now = utcnow()
    free = or_(InterfaceOperation.lease_until.is_(None), InterfaceOperation.lease_until < now)
    for prefix in stale:
        free = or_(free, and_(InterfaceOperation.held_by.startswith(prefix),
                              InterfaceOperation.held_by.not_in(_CURRENT)))
    return free


def holder(role: str, name: str) -> str:
    """A holder's label for this process: ``<role>@<name>/`` and a new id each start."""
    label = f"{role}@{name}/{uuid.uuid4().hex[:12]}"
    _CURRENT.append(label)
    return label


def claim(s: Session, op_id: int, seconds: float, by: str,
          stale: tuple[str, ...] = ()) -> bool:
    """Take a row for ``seconds`` (see ``_free``)."""
    now = utcnow()
    result = s.execute(update(InterfaceOperation).where(
        InterfaceOperation.id == op_id, _free(stale))
        .values(lease_until=now + dt.timedelta(seconds=seconds), held_by=by)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def postpone(s: Session, instance_id: str, port_id: str, seconds: float) -> None:
    op = operation(s, instance_id, port_id)
    if op is not None:
        op.lease_until = utcnow() + dt.timedelta(seconds=seconds)


def due(s: Session, stale: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(instance, port) of every row ``_free`` says may be taken."""
    return [(o.instance_id, o.port_id) for o in s.scalars(
        select(InterfaceOperation).where(_free(stale)).order_by(InterfaceOperation.id))]
