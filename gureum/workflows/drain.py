"""Drain and restore of a compute host: one instance after another, resumable.

A host operation (compute/host_operations.py) is a row with one item per
instance. The runner takes the next item that is not finished and moves its
instance with the workflows a user's request would start — live migration
(block migration when the hosts share no instances directory, as the live
migration decides), cold migration and its confirm, or a clean stop — through
the same compute services as the API (the action table, the compare-and-swap,
the instance action, the outbox). The item records which move it started
(migration id, request id) before the move is handed over, so a runner that
starts again (conductor restart) or is handed the operation again (the operator
ran the command again) waits for that move instead of starting another one.

A failed item is recorded with its reason and the runner goes on with the
others; the operation ends ``failed`` when any item did, ``done`` otherwise.
Pausing (``pausing``) takes effect between items. No new engine: each move is
an existing workflow's run; the drain is the list of them, saved after each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute import actions, host_operations, moves, services, states
from gureum.compute.models import HostOperation, HostOperationItem, Instance, Migration
from gureum.config import Settings
from gureum.context import RequestContext, new_request_id
from gureum.db import Database, locks, utcnow
from gureum.db.engine import OUTBOX_KEY
from gureum.errors import GureumError

log = logging.getLogger("gureum.workflows.drain")

Dispatch = Callable[[list[int]], Awaitable[Any]]

LEASE_KIND = "host-operation"
POLL = 0.2  # seconds between looks at a move under way
BUSY_WAIT = 30.0  # how long an instance busy with another task is waited for

MOVABLE_LIVE = (states.ACTIVE, states.PAUSED)
MOVABLE_COLD = (states.ACTIVE, states.STOPPED)
HINTS = {states.RESIZED: " (confirm or revert its resize first)",
         states.ERROR: " (see its fault: `openstack server show`)"}


@dataclass(frozen=True)
class Started:
    """What starting an item did: a move handed over, or the item already settled."""

    outbox_ids: tuple[int, ...] = ()
    settled: bool = False


class HostOperationRunner:
    """Runs drains and restores in the conductor (one task per operation)."""

    def __init__(self, settings: Settings, db: Database, dispatch: Dispatch,
                 owner: str) -> None:
        self.settings = settings
        self.db = db
        self.dispatch = dispatch
        self.owner = owner  # the conductor's name: who holds an operation's lease
        self.lease = settings.conductor.work_lease
        self._running: dict[int, asyncio.Task[None]] = {}

    def start(self, operation_id: int) -> None:
        if operation_id in self._running:
            return  # the same operation handed over again: its run goes on
        task = asyncio.create_task(self._guard(operation_id), name=f"host-op-{operation_id}")
        self._running[operation_id] = task
        task.add_done_callback(lambda _t: self._running.pop(operation_id, None))

    async def resume_all(self) -> None:
        """Start every unfinished operation no other conductor holds (after a restart,
        and periodically: one whose conductor died is taken over when its lease ends)."""
        for operation_id in await asyncio.to_thread(self._unfinished):
            if operation_id not in self._running:
                self.start(operation_id)

    async def stop(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def _unfinished(self) -> list[int]:
        with self.db.session(write=False) as s:
            return list(s.scalars(select(HostOperation.id).where(
                HostOperation.status.in_(host_operations.ACTIVE))))

    async def _guard(self, operation_id: int) -> None:
        """Run the operation while holding its lease (several conductors: one runs it)."""
        ident = str(operation_id)
        if not await asyncio.to_thread(self._lease, locks.claim, ident):
            log.debug("host operation %s is run by another conductor", operation_id)
            return
        run = asyncio.create_task(self.run(operation_id))
        try:
            while True:
                done, _ = await asyncio.wait({run}, timeout=self.lease / 3)
                if done:
                    run.result()
                    return
                if not await asyncio.to_thread(self._lease, locks.renew, ident):
                    log.warning("lost the lease on host operation %s", operation_id)
                    run.cancel()
                    return
        except asyncio.CancelledError:
            run.cancel()
            raise
        except Exception:
            log.exception("host operation %s failed unexpectedly", operation_id)
        finally:
            if run.done() and not run.cancelled():
                await asyncio.to_thread(self._release, ident)

    def _lease(self, fn: Callable[..., bool], ident: str) -> bool:
        with self.db.session() as s:
            return fn(s, LEASE_KIND, ident, self.owner, self.lease)

    def _release(self, ident: str) -> None:
        with self.db.session() as s:
            locks.release(s, LEASE_KIND, ident, self.owner)

    # -- the loop ------------------------------------------------------------------------
    async def run(self, operation_id: int) -> None:
        while True:
            item_id = await asyncio.to_thread(self._next, operation_id)
            if item_id is None:
                return
            await self._item(operation_id, item_id)

    def _next(self, operation_id: int) -> int | None:
        """The next item to work on; None when the operation ends (or pauses) here."""
        with self.db.session() as s:
            op = s.get(HostOperation, operation_id)
            if op is None:
                return None
            if op.status == "pausing":
                op.status = "paused"
                return None
            if op.status != "running":
                return None
            if op.kind == "drain":
                self._enlist(s, op)
            for item in host_operations.items(s, op.id):
                if item.status in ("pending", "running"):
                    return item.id
            failed = any(i.status == "failed" for i in host_operations.items(s, op.id))
            op.status = "failed" if failed else "done"
            op.finished_at = utcnow()
            log.info("%s of %s %s", op.kind, op.host, op.status)
            return None

    def _enlist(self, s: Session, op: HostOperation) -> None:
        """Every instance on the host gets an item (those that arrived since, too); the
        service stays disabled while the drain runs."""
        svc = services.by_host(s, op.host, "nova-compute")
        if not svc.disabled:
            services.set_status(svc, True, op.reason or host_operations.DEFAULT_REASON)
        known = {i.instance_id: i for i in host_operations.items(s, op.id)}
        position = max((i.position for i in known.values()), default=-1)
        per_server = op.per_server or {}
        for inst in s.scalars(select(Instance).where(
                Instance.host == op.host, Instance.deleted.is_(False)).order_by(
                Instance.created_at, Instance.seq)):
            item = known.get(inst.id)
            policy = per_server.get(inst.id) or per_server.get(inst.name) or op.policy
            if item is None:
                position += 1
                s.add(HostOperationItem(operation_id=op.id, instance_id=inst.id,
                                        name=inst.name, position=position, policy=policy,
                                        source=op.host))
            elif item.status in ("pending", "failed") and item.policy != policy:
                item.policy = policy
            elif item.status in ("done", "skipped") and not (
                    item.outcome in ("stopped", "left-stopped")
                    and inst.vm_state == states.STOPPED):
                # Moved off and back here since, or stopped and started again: again.
                item.status, item.outcome, item.dest = "pending", None, None
                item.migration_id = item.request_id = None
        s.flush()

    async def _item(self, operation_id: int, item_id: int) -> None:
        started = await self._start_item(operation_id, item_id)
        if started.outbox_ids:
            await self.dispatch(list(started.outbox_ids))
        if started.settled:
            return
        while True:
            ended, outbox_ids = await asyncio.to_thread(self._check_item, operation_id,
                                                        item_id)
            if outbox_ids:
                await self.dispatch(outbox_ids)
            if ended:
                return
            await asyncio.sleep(POLL)

    # -- starting an item ------------------------------------------------------------------
    async def _start_item(self, operation_id: int, item_id: int) -> Started:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_WAIT
        while True:
            try:
                result = await asyncio.to_thread(self._start_sync, operation_id, item_id,
                                                 loop.time() >= deadline)
            except GureumError as exc:  # refused: its transaction rolled back
                return await asyncio.to_thread(self._fail_later, item_id, exc.message)
            if result is not None:
                return result
            await asyncio.sleep(1.0)  # busy with another task: wait for it

    def _start_sync(self, operation_id: int, item_id: int, give_up: bool) -> Started | None:
        with self.db.session() as s:
            op = s.get(HostOperation, operation_id)
            item = s.get(HostOperationItem, item_id)
            assert op is not None and item is not None
            if item.status == "running":
                return Started()  # started before a restart: wait for it
            inst = s.get(Instance, item.instance_id)
            where = op.host if op.kind == "drain" else item.source
            if inst is None or inst.deleted:
                return self._settle(item, "skipped", "deleted", "the server was deleted")
            if inst.host != where:
                return self._settle(item, "skipped", "elsewhere",
                                    f"now on {inst.host or 'no host'}; left there")
            if inst.task_state is not None:
                if not give_up:
                    return None
                return self._settle(item, "failed", None, f"busy ({inst.task_state}) for "
                                    f"{BUSY_WAIT:.0f} s; run the command again when it is "
                                    "done")
            ctx = RequestContext(user_id=op.user_id, project_id=op.project_id or None,
                                 roles=frozenset({"admin", "member", "reader"}),
                                 request_id=new_request_id())
            item.started_at = utcnow()
            done = self._begin(s, op, item, inst, ctx)
            if done is not None:
                return done
            item.status = "running"
            item.request_id = ctx.request_id
            return Started(tuple(s.info.get(OUTBOX_KEY) or ()))

    def _begin(self, s: Session, op: HostOperation, item: HostOperationItem, inst: Instance,
               ctx: RequestContext) -> Started | None:
        """Start the item's move; a Started when there was nothing to move."""
        policy = item.policy
        target = op.target if op.kind == "drain" else op.host
        if policy == "live" and inst.vm_state not in MOVABLE_LIVE:
            if inst.vm_state in MOVABLE_COLD:
                policy = "cold"  # a stopped server has no memory to move: cold, no downtime
            else:
                raise GureumError(f"cannot be moved in vm_state {inst.vm_state}"
                                  f"{HINTS.get(inst.vm_state, '')}")
        if policy in ("stop", "start"):
            wanted = states.STOPPED if policy == "stop" else states.ACTIVE
            if inst.vm_state == wanted:
                what = "already stopped" if policy == "stop" else "already running"
                return self._settle(item, "done", "left-stopped" if policy == "stop"
                                    else "left-running", what, was_running=False)
            if policy == "start" and not item.was_running:
                return self._settle(item, "skipped", None, "was not running before the "
                                    "drain; left stopped")
            actions.start(s, ctx, inst.id, policy, policy)
            item.outcome = "stopped" if policy == "stop" else "started"
            item.was_running = True if policy == "stop" else item.was_running
            return None
        if policy == "live":
            mig = moves.live_migrate(s, ctx, inst.id, target, "auto")
            item.outcome = "live-migrated"
        else:
            mig = moves.migrate(s, ctx, inst.id, target)
            item.outcome = "cold-migrated"
        item.migration_id = mig.id
        return None

    def _settle(self, item: HostOperationItem, status: str, outcome: str | None,
                message: str, was_running: bool | None = None) -> Started:
        item.status, item.message = status, message
        if outcome is not None:
            item.outcome = outcome
        if was_running is not None:
            item.was_running = was_running
        item.started_at = item.started_at or utcnow()
        item.finished_at = utcnow()
        return Started(settled=True)

    def _fail_later(self, item_id: int, message: str) -> Started:
        """The move was refused (its transaction rolled back): record why, apart."""
        with self.db.session() as s:
            item = s.get(HostOperationItem, item_id)
            assert item is not None
            self._settle(item, "failed", None, message)
        return Started(settled=True)

    # -- watching an item --------------------------------------------------------------------
    def _check_item(self, operation_id: int, item_id: int) -> tuple[bool, list[int]]:
        """Whether the item's move has ended (and then its outcome recorded), and the
        outbox rows written. A cold migration that finished is confirmed here (the
        drain's decision, as the operator's `openstack server migrate confirm` is)."""
        with self.db.session() as s:
            ended = self._check(s, operation_id, item_id)
            return ended, list(s.info.get(OUTBOX_KEY) or ())

    def _check(self, s: Session, operation_id: int, item_id: int) -> bool:
        item = s.get(HostOperationItem, item_id)
        assert item is not None
        inst = s.get(Instance, item.instance_id)
        if inst is None or inst.deleted:
            self._settle(item, "skipped", "deleted", "the server was deleted")
            return True
        if item.migration_id is None:  # a stop or a start: the instance says
            if inst.task_state is not None:
                return False
            wanted = states.STOPPED if item.outcome == "stopped" else states.ACTIVE
            if inst.vm_state == wanted:
                self._settle(item, "done", None, "")
            else:
                self._settle(item, "failed", None, _fault(inst) or
                             f"ended {inst.vm_state}")
            return True
        mig = s.get(Migration, item.migration_id)
        assert mig is not None
        if mig.status == "finished" and inst.vm_state == states.RESIZED \
                and inst.task_state is None:
            op = s.get(HostOperation, operation_id)
            assert op is not None
            ctx = RequestContext(user_id=op.user_id, project_id=op.project_id or None,
                                 roles=frozenset({"admin", "member", "reader"}),
                                 request_id=new_request_id())
            moves.finish_resize(s, ctx, inst.id, True)
            return False
        if mig.status not in states.MIGRATION_TERMINAL:
            return False
        if mig.status in ("completed", "confirmed", "done") and inst.host == mig.dest_compute:
            item.dest = mig.dest_compute
            self._settle(item, "done", None, "")
        else:
            self._settle(item, "failed", None, _fault(inst) or
                         f"the migration ended {mig.status}")
        return True


def _fault(inst: Instance) -> str | None:
    fault = inst.fault or {}
    return str(fault.get("message") or "") or None
