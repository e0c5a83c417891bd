"""Instance records: compare-and-swap state changes, faults, actions and events.

Used by the API's services (which create instances, look them up for a caller
and start actions) and by the conductor (which records what agents report).
The caller owns the session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from gureum.compute import states
from gureum.compute.models import Counter, Instance, InstanceAction, InstanceActionEvent
from gureum.console import tokens
from gureum.context import RequestContext
from gureum.db import compare_and_swap, utcnow
from gureum.errors import Conflict, InvalidState, NotFound


def next_seq(s: Session, name: str = "instance") -> int:
    """The next value of a named counter, unique across concurrent transactions."""
    result = s.execute(sa_update(Counter).where(Counter.name == name)
                       .values(value=Counter.value + 1))
    if not result.rowcount:  # type: ignore[attr-defined]
        s.add(Counter(name=name, value=1))
        s.flush()
        return 1
    value = s.scalar(select(Counter.value).where(Counter.name == name))
    assert value is not None
    return int(value)


def instance_name(seq: int) -> str:
    return f"instance-{seq:08x}"


def get(s: Session, instance_id: str, include_deleted: bool = False) -> Instance:
    inst = s.get(Instance, instance_id)
    if inst is None or (inst.deleted and not include_deleted):
        raise NotFound(f"Instance {instance_id} could not be found.", kind="instance")
    return inst


def visible(s: Session, ctx: RequestContext, instance_id: str,
            include_deleted: bool = False) -> Instance:
    """The server if the caller may see it; 404 (never 403) otherwise, so that a
    project cannot learn which ids another project's servers have."""
    inst = s.get(Instance, instance_id)
    if inst is None or (inst.deleted and not include_deleted) or \
            (not ctx.is_admin and inst.project_id != ctx.project_id):
        raise NotFound(f"Instance {instance_id} could not be found.", kind="instance")
    return inst


def check_not_locked(ctx: RequestContext, inst: Instance) -> None:
    """A locked server refuses changes, except from admin (Nova's 409)."""
    if inst.locked and not ctx.is_admin:
        raise Conflict(f"Instance {inst.id} is locked")


# vm_state and task_state (and deleted) change only through ``save``, which names the
# task_state it expects: the task_state is the instance's lock, as in Nova's
# ``instance.save(expected_task_state=…)``. Other columns change through ``update``.
STATE_FIELDS = frozenset({"vm_state", "task_state", "deleted"})


class StateConflict(InvalidState):
    """A compare-and-swap on an instance's state was lost: someone changed it first.

    Raised instead of returning False so that no caller can lose a write silently;
    the API answers it with Nova's 409, a workflow step stops cleanly on it.
    """

    def __init__(self, instance_id: str, expected_task_state: Any,
                 current: Instance | None) -> None:
        if current is None or current.deleted:
            now = "deleted"
        else:
            now = f"vm_state {current.vm_state}, task_state {current.task_state}"
        super().__init__(f"Instance {instance_id} changed state while this operation ran "
                         f"(expected task_state {_show(expected_task_state)}, now {now}).")
        self.instance_id = instance_id
        self.expected_task_state = expected_task_state
        self.deleted = current is None or bool(current.deleted)
        self.task_state = None if current is None else current.task_state
        self.vm_state = None if current is None else current.vm_state


def _show(expected: Any) -> str:
    if isinstance(expected, (set, frozenset, tuple, list)):
        return " or ".join(sorted(str(e) for e in expected))
    return str(expected)


def save(s: Session, instance_id: str, values: dict[str, Any], *,
         expected_task_state: str | Collection[str] | None,
         expected_vm_state: str | Collection[str] | None = None) -> None:
    """Compare-and-swap: write values only if task_state (and vm_state when given) are
    still as expected; StateConflict otherwise (nothing is written then).

    ``expected_task_state`` is mandatory: every state write names the task_state it
    expects (None for "nothing in progress"). A collection means "one of these".
    """
    expected: dict[str, Any] = {"deleted": False, "task_state": expected_task_state}
    if expected_vm_state is not None:
        expected["vm_state"] = expected_vm_state
    values = {**values, "updated_at": utcnow()}
    if not compare_and_swap(s, Instance, instance_id, _normalise(expected), values):
        s.expire_all()
        raise StateConflict(instance_id, expected_task_state, s.get(Instance, instance_id))
    if values.get("deleted"):
        tokens.remove_for(s, instance_id)  # a deleted server's console URLs open nothing
    s.expire_all()


def update(s: Session, instance_id: str, values: dict[str, Any]) -> None:
    """Write columns that are not the instance's state (host, flavor, metadata, lock…).

    vm_state, task_state and deleted are refused here: they change only through
    ``save`` with the state they expect.
    """
    bad = STATE_FIELDS & set(values)
    if bad:
        raise ValueError(f"{sorted(bad)} change only through instances.save with an "
                         "expected task_state")
    s.execute(sa_update(Instance).where(Instance.id == instance_id)
              .values(**values, updated_at=utcnow())
              .execution_options(synchronize_session=False))
    if "host" in values:
        # Moved (or off every host): a console URL given out on another host is not
        # this guest's any more.
        tokens.remove_for(s, instance_id, except_host=values["host"] or None)
    s.expire_all()


def _normalise(expected: dict[str, Any]) -> dict[str, Any]:
    """compare_and_swap takes lists for "one of"; tuples and sets become lists."""
    out: dict[str, Any] = {}
    for k, v in expected.items():
        if isinstance(v, (set, frozenset, tuple)):
            v = list(v)
        if isinstance(v, list) and None in v:
            raise ValueError("use a separate save for a None expected state")
        out[k] = v
    return out


def start_task(s: Session, inst: Instance, action: str) -> states.Action:
    """Check the action table and set the action's task_state, atomically.

    Two racing requests both pass the check; only one finds the task_state it
    expects when it writes, the other gets Nova's 409.
    """
    a = states.check(action, inst.id, inst.vm_state, inst.task_state,
                     launched=inst.launched_at is not None)
    if a.task_state is None:
        return a
    try:
        save(s, inst.id, {"task_state": a.task_state}, expected_task_state=inst.task_state,
             expected_vm_state=inst.vm_state)
    except StateConflict as lost:
        if lost.deleted:
            raise NotFound(f"Instance {inst.id} could not be found.",
                           kind="instance") from None
        raise Conflict(f"Cannot '{a.name}' instance {inst.id} while it is in task_state "
                       f"{lost.task_state}") from None
    return a


def set_fault(s: Session, instance_id: str, message: str, code: int = 500,
              details: str = "") -> None:
    s.execute(sa_update(Instance).where(Instance.id == instance_id).values(fault={
        "code": code, "message": message[:255], "details": details,
        "created": iso(utcnow())}))


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- instance actions and events (os-instance-actions) -------------------------------

def start_action(s: Session, instance_id: str, action: str, request_id: str,
                 user_id: str | None, project_id: str | None) -> InstanceAction:
    row = InstanceAction(instance_id=instance_id, action=action, request_id=request_id,
                         user_id=user_id, project_id=project_id)
    s.add(row)
    s.flush()
    return row


def find_action(s: Session, instance_id: str, request_id: str) -> InstanceAction | None:
    return s.scalar(select(InstanceAction).where(
        InstanceAction.instance_id == instance_id, InstanceAction.request_id == request_id)
        .order_by(InstanceAction.id.desc()).limit(1))


def event_start(s: Session, instance_id: str, request_id: str, event: str,
                host: str | None = None) -> None:
    action = find_action(s, instance_id, request_id)
    if action is None:
        return
    s.add(InstanceActionEvent(action_id=action.id, event=event, host=host))
    action.updated_at = utcnow()
    s.flush()


def event_finish(s: Session, instance_id: str, request_id: str, event: str,
                 result: str = "Success", host: str | None = None,
                 details: str | None = None, traceback: str | None = None) -> None:
    """Finish an event (starting it first if it never started); Error marks the action."""
    action = find_action(s, instance_id, request_id)
    if action is None:
        return
    ev = s.scalar(select(InstanceActionEvent).where(
        InstanceActionEvent.action_id == action.id, InstanceActionEvent.event == event,
        InstanceActionEvent.finish_time.is_(None)).order_by(InstanceActionEvent.id.desc())
        .limit(1))
    now = utcnow()
    if ev is None:
        ev = InstanceActionEvent(action_id=action.id, event=event, host=host, start_time=now)
        s.add(ev)
    ev.finish_time = now
    ev.result = result
    ev.details = details
    ev.traceback = traceback
    if host:
        ev.host = host
    action.updated_at = now
    if result != "Success" and not action.message:
        action.message = "Error"
    s.flush()


def finish_action(s: Session, instance_id: str, request_id: str) -> None:
    action = find_action(s, instance_id, request_id)
    if action is not None and action.finish_time is None:
        action.finish_time = utcnow()
