"""Persisted, resumable multi-host workflows.

A workflow is a list of steps; its row is a ``Migration``: ``step`` holds the
last step that finished and ``state`` the facts later steps (or a restarted
conductor) need. Every step is idempotent. The engine:

* runs steps in order, saving ``step`` after each one;
* on a failure, undoes the finished steps in reverse (each undo idempotent too),
  then lets the workflow record the outcome (fault, events, instance state);
* after a restart, ``resume`` continues from the step after ``step``.

Every write of the instance's state is a compare-and-swap from the task_state the
run holds (``Run.task_state``, starting with the one the API set). When someone
else changed it first — an admin's reset-state, a delete — the write raises
``StateConflict`` and the run is *superseded*: it stops, gives back what it held
(the destination's claim, copies it made) and leaves the instance's state to
whoever changed it; see ``Workflow.superseded``.

Crash injection (``conductor.crash_after``, e.g. "resize:power_off") stops a
workflow right after a step is saved, as a killed process would, so tests can
restart the conductor at every step and check the invariants.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from gureum.agent import messages as msg
from gureum.agent import rpc as agent_rpc
from gureum.agent.messages import Message
from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import instances, states
from gureum.compute.instances import StateConflict
from gureum.compute.models import Instance, Migration
from gureum.config import Settings
from gureum.db import Database
from gureum.scheduler import claims
from gureum.scheduler.requests import request_spec
from gureum.scheduler.select import NoValidHost, select_and_claim

log = logging.getLogger("gureum.workflows")

R = TypeVar("R")

TERMINAL = states.MIGRATION_TERMINAL


class StepFailed(Exception):
    """A step could not be done; the message is what the user sees in the fault."""


class HostAway(BusError):
    """A host the run needs did not come back after a restart (see ``resume``)."""


class SimulatedCrash(BaseException):
    """Stops a workflow as if the conductor process died (tests only)."""


@dataclass
class Run:
    """What one workflow run carries between steps."""

    migration_id: int
    instance_id: str
    request_id: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def task_state(self) -> str | None:
        """The task_state this run holds: every state write expects it."""
        value = self.state.get("task_state")
        return value if isinstance(value, str) else None

    @task_state.setter
    def task_state(self, value: str | None) -> None:
        self.state["task_state"] = value


# Tests only: awaited at ("enter" | "done", step name) of every run, to interleave other
# requests with each step (tests/functional/test_state_races.py).
StepHook = Callable[["Workflow", Run, str, str], Awaitable[None]]


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
    step_hook: StepHook | None = None  # tests only

    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.away: set[str] = set()  # hosts that did not come back (resume)

    def task_states(self) -> frozenset[str | None]:
        """The task_states a run of this workflow holds, one step after another."""
        return frozenset(s.task_state for s in self.steps if s.task_state is not None)

    # -- running ----------------------------------------------------------------------
    async def execute(self, run: Run, start_after: str = "") -> bool:
        names = [s.name for s in self.steps]
        index = names.index(start_after) + 1 if start_after in names else 0
        done: list[Step] = [s for s in self.steps[:index]]
        for step in self.steps[index:]:
            try:
                await self._enter(run, step)
                await self._hook(run, "enter", step.name)
                await step.do(self, run)
                await self._finish_step(run, step)
                done.append(step)
                self._maybe_crash(step)
                await self._hook(run, "done", step.name)
            except StateConflict as lost:
                log.warning("%s %s superseded at %s: %s", self.kind, run.instance_id,
                            step.name, lost.message)
                await self.superseded(run, done, step, lost)
                return False
            except (StepFailed, RemoteError, BusError) as exc:
                message = _message(exc)
                log.warning("%s %s failed at %s: %s", self.kind, run.instance_id,
                            step.name, message)
                await self._record_event(run, step, "Error", message)
                try:
                    await self.rollback(run, done, step, message)
                except StateConflict as lost:
                    await self.superseded(run, [], step, lost)
                return False
        try:
            await self.completed(run)
        except StateConflict as lost:
            await self.superseded(run, [], self.steps[-1], lost)
            return False
        return True

    async def _hook(self, run: Run, when: str, step: str) -> None:
        if self.step_hook is not None:
            await type(self).step_hook(self, run, when, step)  # type: ignore[misc]

    async def rollback(self, run: Run, done: list[Step], failed: Step, message: str) -> None:
        for step in reversed([*done, failed]):
            if step.undo is None:
                continue
            try:
                await step.undo(self, run)
            except HostAway as exc:
                # Left for the host's agent: when it comes back it reconciles against
                # the database and drops what no instance or move claims any more.
                log.warning("%s %s: undo of %s skipped: %s", self.kind, run.instance_id,
                            step.name, exc.message)
            except (StepFailed, RemoteError, BusError) as exc:
                log.error("%s %s: undo of %s failed: %s", self.kind, run.instance_id,
                          step.name, _message(exc))
                await self.unrecoverable(run, f"{message}; then undoing {step.name} failed: "
                                              f"{_message(exc)}")
                return
        await self.rolled_back(run, failed, message)

    async def superseded(self, run: Run, done: list[Step], at: Step,
                         lost: StateConflict) -> None:
        """Someone else changed the instance's state (reset-state, delete) while the run
        held it. The run stops: what it made on hosts is undone (best effort, each
        undo idempotent), the destination's claim goes back, the migration ends in
        ``error``, and the instance's state is left to whoever changed it. For a
        deleted server every copy the run knows of goes (the delete may have looked
        for them before or after this run ended)."""
        for step in reversed([*done, at]):
            if step.undo is None:
                continue
            try:
                await step.undo(self, run)
            except (StepFailed, RemoteError, BusError, StateConflict) as exc:
                log.warning("%s %s: undo of %s after being superseded failed: %s",
                            self.kind, run.instance_id, step.name, _message(exc))
        if is_deleting(lost):
            await self.destroy_copies(run)
        await self.abandon(run, f"{self.kind} of {run.instance_id} stopped at {at.name}: "
                                f"{lost.message}")

    async def destroy_copies(self, run: Run) -> None:
        """A deleted server's copies on both ends of the move (idempotent)."""
        for host in sorted({h for h in (run.state.get("source"), run.state.get("dest"))
                            if h}):
            try:
                await self.driver(host, msg.Destroy(run.instance_id))
            except (RemoteError, BusError) as exc:  # its agent reconciles when back
                log.warning("could not destroy %s on %s: %s", run.instance_id, host,
                            _message(exc))

    async def abandon(self, run: Run, message: str) -> None:
        """The end of a superseded run: claims back, migration ``error``, event recorded."""
        def _do(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            if mig is not None:
                claims.release(s, mig.uuid)
                if mig.status not in TERMINAL:
                    mig.status = "error"
                mig.state = {**dict(mig.state or {}), "superseded": message}
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(_do)

    def _maybe_crash(self, step: Step) -> None:
        """``crash_after`` names one or more KIND:STEP (comma-separated; KIND may be *)."""
        targets = {t.strip() for t in self.settings.conductor.crash_after.split(",")}
        if targets & {f"{self.kind}:{step.name}", f"*:{step.name}"}:
            raise SimulatedCrash(f"{self.kind} crashed after {step.name} (injected)")

    # -- persistence ------------------------------------------------------------------------
    async def _enter(self, run: Run, step: Step) -> None:
        await asyncio.to_thread(self._enter_sync, run, step)

    def _enter_sync(self, run: Run, step: Step) -> None:
        with self.db.session() as s:
            # Still ours? The compare-and-swap also moves to the step's task_state.
            target = step.task_state if step.task_state is not None else run.task_state
            instances.save(s, run.instance_id, {"task_state": target},
                           expected_task_state=run.task_state)
            run.task_state = target
            if step.event:
                inst = s.get(Instance, run.instance_id)
                instances.event_start(s, run.instance_id, run.request_id, step.event,
                                      inst.host if inst else None)

    async def _finish_step(self, run: Run, step: Step) -> None:
        await asyncio.to_thread(self._finish_step_sync, run, step)

    def _finish_step_sync(self, run: Run, step: Step) -> None:
        with self.db.session() as s:
            # The step's progress is recorded only while the run still holds the instance.
            instances.save(s, run.instance_id, {}, expected_task_state=run.task_state)
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            # A step may leave a line for its event (e.g. what the hypervisor measured).
            details = run.state.pop("event_details", None)
            mig.step = step.name
            mig.state = dict(run.state)
            if step.status:
                mig.status = step.status
            if step.event:
                instances.event_finish(s, run.instance_id, run.request_id, step.event,
                                       host=run.state.get("event_host"), details=details)

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
            # The claim committed but the step was not saved (the conductor stopped in
            # between): the row knows both ends, which the next steps read from the state.
            for key, value in (("dest", mig.dest_compute), ("dest_node", mig.dest_node),
                               ("source", mig.source_compute),
                               ("source_node", mig.source_node)):
                run.state.setdefault(key, value)
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
    async def driver(self, host: str, message: Message[R], *,
                     rpc_timeout: float | None = None) -> R:
        """One typed driver operation on a host's agent (gureum/agent/messages.py)."""
        if host in self.away:
            raise HostAway(f"Compute host {host} did not come back after a restart.")
        return await agent_rpc.call(self.bus, host, message,
                                    rpc_timeout or self.settings.compute.rpc_timeout)

    # -- resuming after a restart ------------------------------------------------------------
    def hosts_for_resume(self, run: Run) -> set[str]:
        """The hosts a resumed run must be able to talk to (both ends by default)."""
        return {h for h in (run.state.get("source"), run.state.get("dest")) if h}

    async def resume(self, run: Run, start_after: str, away: set[str]) -> bool:
        """Continue after a restart. With every host back this is ``execute``; when a
        host stayed away the run is rolled back as far as the hosts that answer allow,
        which leaves the guest where it runs (Nova does the same when a host is gone)."""
        if not away:
            return await self.execute(run, start_after)
        self.away = set(away)
        names = [s.name for s in self.steps]
        index = names.index(start_after) + 1 if start_after in names else 0
        done = list(self.steps[:index])
        failed = self.steps[min(index, len(self.steps) - 1)]
        message = (f"{', '.join(sorted(away))} did not come back after a restart; the "
                   f"{self.kind} was rolled back")
        log.warning("%s %s: %s", self.kind, run.instance_id, message)
        await self._record_event(run, failed, "Error", message)
        try:
            await self.rollback(run, done, failed, message)
        except StateConflict as lost:
            await self.superseded(run, [], failed, lost)
        return False

    # -- outcomes (workflows override) -------------------------------------------------------
    async def completed(self, run: Run) -> None:
        """All steps done."""

    async def rolled_back(self, run: Run, failed: Step, message: str) -> None:
        """Every finished step was undone; the instance is back where it started."""

    async def unrecoverable(self, run: Run, message: str) -> None:
        """Undoing failed too: the instance goes to ERROR with the whole story."""


def is_deleting(lost: StateConflict) -> bool:
    """Whether the run lost its instance to a delete (done or in progress)."""
    return lost.deleted or lost.task_state == states.DELETING


def _message(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return exc.remote_message
    if isinstance(exc, (BusError, StateConflict)):
        return exc.message
    return str(exc)


async def wait_for_hosts(bus: Transport, hosts: set[str], timeout: float) -> set[str]:
    """Wait until every host's agent answers a ping, at most ``timeout`` seconds.

    Returns the hosts that did not answer. After a restart the agents may start
    after the conductor (or come back later): asking them anything before that
    only fails the step and its undo both."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiting = set(hosts)
    while waiting:
        for host in sorted(waiting):
            try:
                await agent_rpc.call(bus, host, msg.Ping(),
                                     max(0.1, min(2.0, deadline - loop.time())))
                waiting.discard(host)
            except BusError:
                pass
        if not waiting or loop.time() >= deadline:
            break
        await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))
    return waiting

