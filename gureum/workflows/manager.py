"""Starts, resumes and finishes workflows; the conductor owns one manager.

On conductor start ``resume_all`` takes up every migration that is not in a
terminal status: it continues from the step after the last one saved, or
re-runs a confirm/revert that was in flight. Auto-confirm (the
``resize_confirm_window`` setting) also lives here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import instances, states
from gureum.compute.instances import StateConflict
from gureum.compute.models import Instance, InstanceAction, Migration
from gureum.config import Settings
from gureum.db import Database, utcnow
from gureum.workflows.engine import TERMINAL, Run, SimulatedCrash, Workflow, wait_for_hosts
from gureum.workflows.evacuate import EvacuateWorkflow
from gureum.workflows.live import LiveMigrationWorkflow
from gureum.workflows.resize import ResizeWorkflow

log = logging.getLogger("gureum.workflows")

KINDS: dict[str, type[Workflow]] = {
    "resize": ResizeWorkflow, "migration": ResizeWorkflow,
    "live-migration": LiveMigrationWorkflow, "evacuation": EvacuateWorkflow,
}


class WorkflowManager:
    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[int, asyncio.Task[Any]] = {}  # migration id → its run
        self._auto_confirm: asyncio.Task[None] | None = None

    def workflow(self, kind: str) -> Workflow:
        return KINDS[kind](self.settings, self.db, self.bus)

    def _spawn(self, coro: Any, migration_id: int | None = None) -> None:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if migration_id is not None:
            self._running[migration_id] = task
            task.add_done_callback(lambda _t: self._running.pop(migration_id, None))

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except SimulatedCrash as crash:
            log.warning("%s", crash)
        except Exception:
            log.exception("workflow failed unexpectedly")

    async def start(self) -> None:
        if self.settings.compute.resize_confirm_window > 0:
            self._auto_confirm = asyncio.create_task(self._auto_confirm_loop())
        await self.resume_all()

    async def stop(self) -> None:
        if self._auto_confirm is not None:
            self._auto_confirm.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    # -- entry points (the conductor's bus methods call these) --------------------------------
    async def begin(self, migration_id: int, request_id: str) -> None:
        loaded = await asyncio.to_thread(self._migration, migration_id)
        if loaded is None:
            return
        mig, task_state = loaded
        if mig.status in TERMINAL or migration_id in self._running:
            return  # a repeated hand-over (the outbox may deliver twice)
        wf = self.workflow(mig.migration_type)
        run = Run(migration_id, mig.instance_id, request_id, dict(mig.state or {}))
        run.task_state = task_state
        self._spawn(self._execute(wf, run, mig.step), migration_id)

    async def _execute(self, wf: Workflow, run: Run, start_after: str,
                       resuming: bool = False) -> None:
        """Run (or resume) a workflow; a run whose instance moved on is superseded.

        A resumed run first waits (bounded) for the hosts it needs to answer."""
        owned = wf.task_states()
        if run.task_state not in owned:
            lost = StateConflict(run.instance_id, sorted(t for t in owned if t),
                                 await asyncio.to_thread(self._instance, run.instance_id))
            names = [s.name for s in wf.steps]
            index = names.index(start_after) + 1 if start_after in names else 0
            at = wf.steps[min(index, len(wf.steps) - 1)]
            await wf.superseded(run, list(wf.steps[:index]), at, lost)
            return
        if not resuming:
            await wf.execute(run, start_after)
            return
        hosts = wf.hosts_for_resume(run)
        wait = self.settings.conductor.resume_host_wait
        away = await wait_for_hosts(self.bus, hosts, wait) if hosts else set()
        await wf.resume(run, start_after, away)

    async def finish_resize(self, instance_id: str, request_id: str, confirm: bool) -> None:
        mig = await asyncio.to_thread(self._finished_migration, instance_id)
        if mig is None:
            log.warning("%s: no finished migration to %s", instance_id,
                        "confirm" if confirm else "revert")
            return
        run = Run(mig.id, instance_id, request_id, dict(mig.state or {}))
        wf = self.workflow(mig.migration_type)
        assert isinstance(wf, ResizeWorkflow)
        self._spawn(self._finish(wf, run, confirm))

    async def _finish(self, wf: ResizeWorkflow, run: Run, confirm: bool,
                      resuming: bool = False) -> None:
        if resuming:
            wf.away = await wait_for_hosts(self.bus, wf.hosts_for_resume(run),
                                           self.settings.conductor.resume_host_wait)
        try:
            await (wf.confirm(run) if confirm else wf.revert(run))
        except StateConflict as lost:
            log.warning("%s of the resize of %s superseded: %s",
                        "confirm" if confirm else "revert", run.instance_id, lost.message)
        except (RemoteError, BusError) as exc:
            message = exc.remote_message if isinstance(exc, RemoteError) else exc.message
            try:
                await asyncio.to_thread(self._finish_failed, run, confirm, message)
            except StateConflict as lost:
                log.warning("%s: %s", run.instance_id, lost.message)

    def _finish_failed(self, run: Run, confirm: bool, message: str) -> None:
        # The server stays in VERIFY_RESIZE: the user can try again.
        with self.db.session() as s:
            instances.save(s, run.instance_id, {"task_state": None},
                           expected_task_state=states.RESIZE_CONFIRMING if confirm
                           else states.RESIZE_REVERTING)
            what = "Confirming" if confirm else "Reverting"
            instances.set_fault(s, run.instance_id, f"{what} the resize failed: {message}",
                                500, message)
            instances.event_finish(s, run.instance_id, run.request_id,
                                   "compute_confirm_resize" if confirm
                                   else "compute_revert_resize", "Error", details=message)
            instances.finish_action(s, run.instance_id, run.request_id)

    # -- restart --------------------------------------------------------------------------
    async def resume_all(self) -> None:
        for mig_id, instance_id, kind, step, status, state, task_state, request_id in \
                await asyncio.to_thread(self._unfinished):
            run = Run(mig_id, instance_id, request_id, dict(state or {}))
            wf = self.workflow(kind)
            if status == "finished" and isinstance(wf, ResizeWorkflow):
                if task_state == states.RESIZE_CONFIRMING:
                    self._spawn(self._finish(wf, run, True, resuming=True))
                    continue
                if task_state == states.RESIZE_REVERTING:
                    self._spawn(self._finish(wf, run, False, resuming=True))
                    continue
                if task_state is None:
                    continue  # VERIFY_RESIZE: waiting for the user
                # else: the last step finished but its completion was not recorded
            if mig_id in self._running:
                continue
            log.info("resuming %s of %s after step %r", kind, instance_id, step)
            run.task_state = task_state
            self._spawn(self._execute(wf, run, step, resuming=True), mig_id)

    def _unfinished(self) -> list[tuple[Any, ...]]:
        with self.db.session(write=False) as s:
            out = []
            for mig in s.scalars(select(Migration).where(Migration.status.not_in(TERMINAL))):
                inst = s.get(Instance, mig.instance_id)
                if inst is None or inst.deleted:
                    continue
                request_id = s.scalar(select(InstanceAction.request_id).where(
                    InstanceAction.instance_id == inst.id).order_by(
                    InstanceAction.id.desc()).limit(1)) or "req-recovered"
                out.append((mig.id, mig.instance_id, mig.migration_type, mig.step,
                            mig.status, mig.state, inst.task_state, request_id))
            return out

    def _migration(self, migration_id: int) -> tuple[Migration, str | None] | None:
        with self.db.session(write=False) as s:
            mig = s.get(Migration, migration_id)
            if mig is None:
                return None
            inst = s.get(Instance, mig.instance_id)
            s.expunge(mig)
            task_state = inst.task_state if inst is not None and not inst.deleted else None
            return mig, task_state

    def _instance(self, instance_id: str) -> Instance | None:
        with self.db.session(write=False) as s:
            inst = s.get(Instance, instance_id)
            if inst is not None:
                s.expunge(inst)
            return inst

    def _finished_migration(self, instance_id: str) -> Migration | None:
        with self.db.session(write=False) as s:
            mig = s.scalar(select(Migration).where(
                Migration.instance_id == instance_id, Migration.status == "finished")
                .order_by(Migration.id.desc()).limit(1))
            if mig is not None:
                s.expunge(mig)
            return mig

    # -- auto-confirm ----------------------------------------------------------------------
    async def _auto_confirm_loop(self) -> None:
        window = self.settings.compute.resize_confirm_window
        while True:
            await asyncio.sleep(min(window, 10.0))
            for instance_id in await asyncio.to_thread(self._due_for_confirm, window):
                log.info("auto-confirming the resize of %s", instance_id)
                await self.finish_resize(instance_id, "req-auto-confirm", True)

    def _due_for_confirm(self, window: float) -> list[str]:
        cutoff = utcnow() - dt.timedelta(seconds=window)
        due = []
        with self.db.session() as s:
            for mig in s.scalars(select(Migration).where(Migration.status == "finished",
                                                         Migration.updated_at <= cutoff)):
                inst = s.get(Instance, mig.instance_id)
                if inst is None or inst.vm_state != states.RESIZED or inst.task_state:
                    continue
                try:
                    instances.save(s, inst.id, {"task_state": states.RESIZE_CONFIRMING},
                                   expected_task_state=None,
                                   expected_vm_state=states.RESIZED)
                except StateConflict:
                    continue  # the user acted first
                instances.start_action(s, inst.id, "confirmResize", "req-auto-confirm",
                                       None, inst.project_id)
                due.append(inst.id)
        return due
