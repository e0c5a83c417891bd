"""Live migration (S3): the guest keeps running while it moves.

Steps: claim the destination → preflight there (it also tells whether the
instances directory is shared: detected, never declared) → bind: an INACTIVE
binding of every port on the destination, computed for it (S5) → prepare an
empty guest waiting for the state, its NICs plugged as those bindings say →
migrate (memory only on shared storage, memory and disks otherwise) → post:
the destination's bindings are activated and the source's deleted; the
instance and its resources are on the destination. Until "migrate" succeeds
the guest runs on the source; a failure (or an abort) there leaves it running
on the source, untouched, its ports bound there and no inactive binding left.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from gureum.agent import messages as msg
from gureum.bus import BusError, RemoteError
from gureum.compute import instances, states, volumes
from gureum.compute.guests import (
    activate_network,
    discard_network,
    guest_spec,
    prepare_network,
)
from gureum.compute.instances import StateConflict
from gureum.compute.models import Instance, Migration
from gureum.db import utcnow
from gureum.scheduler import claims
from gureum.virt.driver import MIGRATION_FIGURES, GuestSpec
from gureum.workflows.engine import Run, Step, StepFailed, Workflow, is_deleting
from gureum.workflows.resize import storage_marker

log = logging.getLogger("gureum.workflows.live")


def record_figures(s: Session, run: Run, figures: dict[str, Any]) -> None:
    """What the source's hypervisor measured goes into the migration record: the bytes
    in Nova's columns (``GET /servers/{id}/migrations/{id}`` shows them), the downtime
    in its state (no Nova field has it) and, as a line, in the details of the
    compute_live_migration event (``openstack server event show``, 2.84, admins)."""
    mig = s.get(Migration, run.migration_id)
    assert mig is not None
    known = {k: figures[k] for k in MIGRATION_FIGURES
             if isinstance(figures.get(k), int) and not isinstance(figures.get(k), bool)}
    for name in ("memory_total_bytes", "memory_processed_bytes", "memory_remaining_bytes",
                 "disk_total_bytes", "disk_processed_bytes", "disk_remaining_bytes"):
        if name in known:
            setattr(mig, name, known[name])
    run.state["figures"] = known
    if "downtime_ms" in known:
        run.state["downtime_ms"] = known["downtime_ms"]
    line = [f"downtime {known['downtime_ms']} ms" if "downtime_ms" in known else "",
            f"total {known['total_time_ms']} ms" if "total_time_ms" in known else ""]
    moved = [f"{known[k] / 1e6:.1f} MB of {what}"
             for k, what in (("memory_processed_bytes", "memory"),
                             ("disk_processed_bytes", "disk")) if known.get(k)]
    text = ", ".join(filter(None, line))
    if moved:
        text += f" ({' and '.join(moved)} copied)"
    if text:
        run.state["event_details"] = f"Live migration measured by the hypervisor: {text}."


class LiveMigrationWorkflow(Workflow):
    kind = "live-migration"

    async def _claim(self, run: Run) -> None:
        await self.with_session(lambda s: self.claim_destination(s, run))

    async def _spec(self, run: Run) -> GuestSpec:
        def load(s: Session) -> GuestSpec:
            inst = s.get(Instance, run.instance_id)
            assert inst is not None
            return guest_spec(inst)
        spec: GuestSpec = await self.with_session(load)
        return spec

    async def _preflight(self, run: Run) -> None:
        spec = await self._spec(run)
        run.state["event_host"] = run.state["dest"]
        marker = await self.with_session(lambda s: storage_marker(s, run.state["source"]))
        facts = await self.driver(run.state["dest"], msg.Preflight(spec, source_marker=marker))
        shared = facts.shared_storage  # the destination sees the source's marker file
        requested = run.state.get("block_migration", "auto")
        if requested == "auto":
            block = not shared
        elif requested:
            if shared:
                raise StepFailed(f"{run.state['dest']} shares the instances directory with "
                                 f"{run.state['source']}; block migration would copy the disk "
                                 "onto itself. Use block_migration false or auto.")
            block = True
        else:
            if not shared:
                raise StepFailed(f"{run.state['source']} and {run.state['dest']} do not share "
                                 "the instances directory; live migration without block "
                                 "migration needs shared storage. Use block_migration auto.")
            block = False
        run.state["shared"] = shared
        run.state["block"] = block

    async def _bind(self, run: Run) -> None:
        await self.with_session(lambda s: prepare_network(s, run.instance_id,
                                                          run.state["dest"]))

    async def _unbind(self, run: Run) -> None:
        if run.state.get("dest"):
            await self.with_session(lambda s: discard_network(s, run.instance_id,
                                                              run.state["dest"]))

    async def _prepare(self, run: Run) -> None:
        def load(s: Session) -> GuestSpec:
            inst = s.get(Instance, run.instance_id)
            assert inst is not None
            # The destination plugs the ports as their (inactive) bindings there say.
            return guest_spec(inst, network_info=prepare_network(
                s, run.instance_id, run.state["dest"]), block_devices=volumes.block_devices_for(
                s, run.instance_id, run.state["dest"]))
        spec: GuestSpec = await self.with_session(load)
        uri = await self.driver(run.state["dest"], msg.PrepareIncoming(
            spec, block_migration=bool(run.state["block"])))
        run.state["uri"] = uri

    async def _unprepare(self, run: Run) -> None:
        if run.state.get("dest"):
            await self.driver(run.state["dest"], msg.AbortIncoming(run.instance_id))

    async def _migrate(self, run: Run) -> None:
        run.state["event_host"] = run.state["source"]
        # Idempotent: after a restart the move may already have happened.
        if run.instance_id in await self.driver(run.state["dest"], msg.ListGuests()):
            return
        try:
            figures = await self.driver(run.state["source"], msg.LiveMigrate(
                run.instance_id, dest_uri=run.state["uri"],
                block_migration=bool(run.state["block"])),
                rpc_timeout=max(self.settings.compute.rpc_timeout, 3600.0))
        except (RemoteError, BusError) as exc:
            # MigrationFailed is the source's answer: the guest runs there. Anything
            # else (no answer: its agent died or restarted, while the hypervisor may
            # have finished the move on its own) is checked where the guest would be.
            if isinstance(exc, RemoteError) and exc.kind == "MigrationFailed":
                raise
            if await self._has_guest(run.state["dest"], run.instance_id):
                log.warning("%s: no answer from %s (%s), but the guest runs on %s: moved",
                            run.instance_id, run.state["source"], exc, run.state["dest"])
                return
            raise
        if isinstance(figures, dict):
            await self.with_session(lambda s: record_figures(s, run, figures))

    async def _post(self, run: Run) -> None:
        def moved(s: Session) -> None:
            inst = s.get(Instance, run.instance_id)
            mig = s.get(Migration, run.migration_id)
            assert inst is not None and mig is not None
            claims.release(s, inst.id)  # the source's resources
            claims.move(s, mig.uuid, inst.id)  # the destination's become the instance's
            instances.update(s, inst.id, {"host": run.state["dest"],
                                          "node": run.state["dest_node"]})
            activate_network(s, inst.id, run.state["dest"])
        await self.with_session(moved)

    steps = (
        Step("claim", _claim, Workflow.release_destination,
             task_state=states.MIGRATING, status="preparing",
             event="conductor_live_migrate_instance"),
        Step("preflight", _preflight, None, status="preparing",
             event="compute_check_can_live_migrate_destination"),
        Step("bind", _bind, _unbind, status="preparing"),
        Step("prepare", _prepare, _unprepare, status="running",
             event="compute_pre_live_migration"),
        Step("migrate", _migrate, None, status="running", event="compute_live_migration"),
        Step("post", _post, None, status="post-migrating",
             event="compute_post_live_migration_at_destination"),
    )

    async def resume(self, run: Run, start_after: str, away: set[str]) -> bool:
        """With a host away, find where the guest runs before deciding: on the
        destination (it answers and has the guest, or the source answers and has lost
        it after a finished migration) the move is only recorded; on the source it is
        rolled back. Never roll back onto a source that no longer has the guest: the
        destination's agent would then destroy the only running copy."""
        dest, source = run.state.get("dest"), run.state.get("source")
        if away and dest and run.state.get("uri"):
            moved = None
            if dest not in away:
                moved = await self._has_guest(dest, run.instance_id)
            elif source and source not in away:
                on_source = await self._has_guest(source, run.instance_id)
                moved = None if on_source is None else not on_source
            if moved:
                self.away = set()
                return await self.execute(run, "migrate")  # only "post": record it
        return await super().resume(run, start_after, away)

    async def _has_guest(self, host: str, guest_id: str) -> bool | None:
        try:
            return guest_id in (await self.driver(host, msg.ListGuests()) or [])
        except (RemoteError, BusError):
            return None

    async def superseded(self, run: Run, done: list[Step], at: Step,
                         lost: StateConflict) -> None:
        """Past the point of no return (the guest already runs on the destination), the
        move is a fact: it is recorded (or, for a deleted server, the copy destroyed);
        before it, the run is undone as usual."""
        dest: str = run.state.get("dest") or ""
        moved = False
        if dest and run.state.get("uri"):
            try:
                moved = run.instance_id in await self.driver(dest, msg.ListGuests())
            except (RemoteError, BusError):
                moved = False
        if not moved:
            await super().superseded(run, done, at, lost)
            return
        if is_deleting(lost):
            await self.destroy_copies(run)
        else:
            def record(s: Session) -> None:
                inst = s.get(Instance, run.instance_id)
                mig = s.get(Migration, run.migration_id)
                assert inst is not None and mig is not None
                if inst.host != dest:
                    claims.release(s, inst.id)
                    claims.move(s, mig.uuid, inst.id)
                    instances.update(s, inst.id, {"host": dest,
                                                  "node": run.state["dest_node"]})
                    activate_network(s, inst.id, dest)
            await self.with_session(record)
        await self.abandon(run, f"live migration of {run.instance_id} was superseded after "
                                f"the guest moved to {dest}: {lost.message}")

    async def completed(self, run: Run) -> None:
        def done(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            mig.status = "completed"  # terminal only once the instance says so too
            instances.save(s, run.instance_id, {"task_state": None},
                           expected_task_state=run.task_state)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(done)

    async def rolled_back(self, run: Run, failed: Step, message: str) -> None:
        def back(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            claims.release(s, mig.uuid)
            aborted = (mig.state or {}).get("abort_requested") or "aborted" in message
            mig.status = "cancelled" if aborted else "error"
            mig.updated_at = utcnow()
            instances.save(s, run.instance_id, {"task_state": None},
                           expected_task_state=run.task_state)
            instances.set_fault(s, run.instance_id, f"Live migration to "
                                f"{run.state.get('dest') or 'another host'} failed at "
                                f"{failed.name}; the server keeps running on its source: "
                                f"{message}", 500, message)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(back)

    async def unrecoverable(self, run: Run, message: str) -> None:
        def broken(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            if mig is not None:
                mig.status = "error"
                claims.release(s, mig.uuid)  # the destination's claim goes with it
            if run.state.get("dest"):  # its bindings there were never activated
                discard_network(s, run.instance_id, run.state["dest"])
            instances.save(s, run.instance_id, {"vm_state": states.ERROR, "task_state": None},
                           expected_task_state=run.task_state)
            instances.set_fault(s, run.instance_id, message, 500, message)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(broken)
