"""Persisted, resumable multi-host workflows.

A workflow is a list of steps; its row is a ``Migration``: ``step`` holds the
last step that finished and ``state`` the facts later steps (or a restarted
conductor) need. Every step is idempotent. The engine:

* runs steps in order, saving ``step`` after each one;
* on a failure, undoes the finished steps in reverse (each undo idempotent too),
  then lets the workflow record the outcome (fault, events, instance state);
* after a restart, ``resume`` continues from the step after ``step``.

Crash injection (``conductor.crash_after``, e.g. "resize:power_off") stops a
workflow right after a step is saved, as a killed process would, so tests can
restart the conductor at every step and check the invariants.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import instances
from gureum.compute.models import Instance, Migration
from gureum.config import Settings
from gureum.db import Database
from gureum.scheduler import claims
from gureum.scheduler.requests import request_spec
from gureum.scheduler.select import NoValidHost, select_and_claim
from gureum.virt.driver import GuestSpec

log = logging.getLogger("gureum.workflows")

TERMINAL = frozenset({"confirmed", "reverted", "completed", "error", "failed", "cancelled",
                      "done"})


class StepFailed(Exception):
    """A step could not be done; the message is what the user sees in the fault."""


class SimulatedCrash(BaseException):
    """Stops a workflow as if the conductor process died (tests only)."""


@dataclass
class Run:
    """What one workflow run carries between steps."""

    migration_id: int
    instance_id: str
    request_id: str
    state: dict[str, Any] = field(default_factory=dict)


StepFn = Callable[[Any, Run], Awaitable[None]]  # (the workflow, the run)


@dataclass(frozen=True)
class Step:
    name: str
    do: StepFn
    undo: StepFn | None = None
    task_state: str | None = None  # the instance's task_state while this step runs
    # The migration's status once this step is done; never a terminal one (only
    # ``completed`` writes that, together with the instance's final state).
    status: str | None = None
    event: str | None = None  # the instance action event this step records


class Workflow:
    """Base of resize/migrate, live migration and evacuation."""

    kind = ""
    steps: tuple[Step, ...] = ()

    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus

    # -- running ----------------------------------------------------------------------
    async def execute(self, run: Run, start_after: str = "") -> bool:
        names = [s.name for s in self.steps]
        index = names.index(start_after) + 1 if start_after in names else 0
        done: list[Step] = [s for s in self.steps[:index]]
        for step in self.steps[index:]:
            try:
                await self._enter(run, step)
                await step.do(self, run)
                await self._finish_step(run, step)
                done.append(step)
                self._maybe_crash(step)
            except (StepFailed, RemoteError, BusError) as exc:
                message = _message(exc)
                log.warning("%s %s failed at %s: %s", self.kind, run.instance_id,
                            step.name, message)
                await self._record_event(run, step, "Error", message)
                await self.rollback(run, done, step, message)
                return False
        await self.completed(run)
        return True

    async def rollback(self, run: Run, done: list[Step], failed: Step, message: str) -> None:
        for step in reversed([*done, failed]):
            if step.undo is None:
                continue
            try:
                await step.undo(self, run)
            except (StepFailed, RemoteError, BusError) as exc:
                log.error("%s %s: undo of %s failed: %s", self.kind, run.instance_id,
                          step.name, _message(exc))
                await self.unrecoverable(run, f"{message}; then undoing {step.name} failed: "
                                              f"{_message(exc)}")
                return
        await self.rolled_back(run, failed, message)

    def _maybe_crash(self, step: Step) -> None:
        target = self.settings.conductor.crash_after
        if target and target in (f"{self.kind}:{step.name}", f"*:{step.name}"):
            raise SimulatedCrash(f"{self.kind} crashed after {step.name} (injected)")

    # -- persistence ------------------------------------------------------------------------
    async def _enter(self, run: Run, step: Step) -> None:
        await asyncio.to_thread(self._enter_sync, run, step)

    def _enter_sync(self, run: Run, step: Step) -> None:
        with self.db.session() as s:
            if step.task_state is not None:
                instances.save(s, run.instance_id, {"task_state": step.task_state})
            if step.event:
                inst = s.get(Instance, run.instance_id)
                instances.event_start(s, run.instance_id, run.request_id, step.event,
                                      inst.host if inst else None)

    async def _finish_step(self, run: Run, step: Step) -> None:
        await asyncio.to_thread(self._finish_step_sync, run, step)

    def _finish_step_sync(self, run: Run, step: Step) -> None:
        with self.db.session() as s:
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            mig.step = step.name
            mig.state = dict(run.state)
            if step.status:
                mig.status = step.status
            if step.event:
                instances.event_finish(s, run.instance_id, run.request_id, step.event,
                                       host=run.state.get("event_host"))

    async def _record_event(self, run: Run, step: Step, result: str, details: str) -> None:
        if step.event is None:
            return

        def _do() -> None:
            with self.db.session() as s:
                instances.event_finish(s, run.instance_id, run.request_id, step.event or "",
                                       result, details=details)
        await asyncio.to_thread(_do)

    def with_session(self, fn: Callable[[Session], Any]) -> Awaitable[Any]:
        """Run fn(session) in a worker thread inside one transaction."""
        def _do() -> Any:
            with self.db.session() as s:
                return fn(s)
        return asyncio.to_thread(_do)

    # -- the destination --------------------------------------------------------------------
    def claim_destination(self, s: Session, run: Run, *, flavor: dict[str, Any] | None = None,
                          same_host: bool = False) -> tuple[Instance, Migration] | None:
        """Choose and claim the destination (the migration holds the claim).

        Idempotent: None when a destination was claimed before (a resumed run).
        """
        mig = s.get(Migration, run.migration_id)
        inst = s.get(Instance, run.instance_id)
        assert mig is not None and inst is not None
        if mig.dest_compute:
            return None
        requested = run.state.get("requested_host")
        spec = request_spec(s, inst, flavor=flavor, consumer_id=mig.uuid,
                            ignore_hosts=frozenset() if same_host
                            else frozenset({inst.host or ""}),
                            requested_host=requested,
                            availability_zone=None if requested else True)
        try:
            chosen = select_and_claim(s, spec, self.settings.compute)
        except NoValidHost as exc:
            raise StepFailed(exc.message) from None
        mig.dest_compute = mig.dest_host = chosen.host
        mig.dest_node = chosen.node
        run.state.update({"dest": chosen.host, "dest_node": chosen.node,
                          "source": inst.host, "source_node": inst.node})
        return inst, mig

    async def release_destination(self, run: Run) -> None:
        """Undo of claim_destination: give back what the migration holds."""
        def release(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            claims.release(s, mig.uuid)
        await self.with_session(release)

    # -- talking to hosts ---------------------------------------------------------------------
    async def driver(self, host: str, op: str, *, rpc_timeout: float | None = None,
                     spec: GuestSpec | None = None, guest_id: str | None = None,
                     **kwargs: Any) -> Any:
        """One driver operation on a host (kwargs go to the driver method)."""
        args: dict[str, Any] = {"op": op, **kwargs}
        if spec is not None:
            args["spec"] = spec.to_dict()
        if guest_id is not None:
            args["guest_id"] = guest_id
        return await self.bus.call("compute", "driver", args, server=host,
                                   timeout=rpc_timeout or self.settings.compute.rpc_timeout)

    # -- outcomes (workflows override) -------------------------------------------------------
    async def completed(self, run: Run) -> None:
        """All steps done."""

    async def rolled_back(self, run: Run, failed: Step, message: str) -> None:
        """Every finished step was undone; the instance is back where it started."""

    async def unrecoverable(self, run: Run, message: str) -> None:
        """Undoing failed too: the instance goes to ERROR with the whole story."""


def _message(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return exc.remote_message
    if isinstance(exc, BusError):
        return exc.message
    return str(exc)
