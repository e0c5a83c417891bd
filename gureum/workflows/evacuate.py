"""Evacuation (S13): rebuild a server of a dead host on another host.

Allowed only when the source's compute service is down or forced down (the
API checks). Steps: claim a destination → rebuild there: on shared storage the
existing disk is reused, otherwise the guest is rebuilt from its image → the
instance, its ports and its resources move. The source agent, when it comes
back, finds its copy belongs elsewhere and destroys it instead of starting it
(agent reconcile), so two copies never run.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from gureum.agent import messages as msg
from gureum.bus import BusError, RemoteError
from gureum.compute import instances, states, volumes
from gureum.compute.guests import allocate_network, bind_network, guest_spec
from gureum.compute.instances import StateConflict
from gureum.compute.models import Instance, Migration
from gureum.scheduler import claims
from gureum.virt.driver import GuestSpec
from gureum.workflows.engine import Run, Step, Workflow, is_deleting
from gureum.workflows.resize import storage_marker

log = logging.getLogger("gureum.workflows.evacuate")


class EvacuateWorkflow(Workflow):
    kind = "evacuation"

    async def _claim(self, run: Run) -> None:
        def claim(s: Session) -> None:
            claimed = self.claim_destination(s, run)
            if claimed is not None:
                inst = claimed[0]
                run.state["power_on"] = (inst.vm_state != states.STOPPED
                                         or not run.state.get("keep_stopped", False))
        await self.with_session(claim)

    async def _rebuild(self, run: Run) -> None:
        def load(s: Session) -> GuestSpec:
            inst = s.get(Instance, run.instance_id)
            assert inst is not None
            return guest_spec(inst, block_devices=volumes.block_devices_for(
                s, inst.id, run.state["dest"]))
        spec = await self.with_session(load)
        dest = run.state["dest"]
        run.state["event_host"] = dest
        if run.instance_id in await self.driver(dest, msg.ListGuests()):
            return  # rebuilt before a restart
        # Does the destination see the dead host's instances directory (its marker)?
        marker = await self.with_session(lambda s: storage_marker(s, run.state["source"]))
        facts = await self.driver(dest, msg.Preflight(spec, source_marker=marker))
        run.state["shared"] = facts.shared_storage
        if run.state["shared"]:
            await self.driver(dest, msg.FinishMigration(
                spec, resize_disk=False, power_on=bool(run.state["power_on"])))
        else:
            await self.driver(dest, msg.Spawn(spec))
            if not run.state["power_on"]:
                await self.driver(dest, msg.PowerOff(run.instance_id, timeout=0,
                                                     retry_interval=1))

    async def _move(self, run: Run) -> None:
        def moved(s: Session) -> None:
            inst = s.get(Instance, run.instance_id)
            mig = s.get(Migration, run.migration_id)
            assert inst is not None and mig is not None
            claims.release(s, inst.id)  # the dead host's resources
            claims.move(s, mig.uuid, inst.id)
            running = bool(run.state["power_on"])
            instances.save(s, inst.id, {
                "host": run.state["dest"], "node": run.state["dest_node"],
                "vm_state": states.ACTIVE if running else states.STOPPED,
                "power_state": states.RUNNING if running else states.SHUTDOWN},
                expected_task_state=run.task_state)
            if not inst.network_info:
                instances.update(s, inst.id, {"network_info": allocate_network(s, inst)})
            bind_network(s, inst.id, run.state["dest"])
        await self.with_session(moved)

    steps = (
        Step("claim", _claim, Workflow.release_destination,
             task_state=states.REBUILDING, status="pre-migrating",
             event="conductor_rebuild_server"),
        Step("rebuild", _rebuild, None, task_state=states.REBUILD_SPAWNING,
             event="compute_rebuild_instance"),
        Step("move", _move, None, status="post-migrating", event="conductor_move_instance"),
    )

    def hosts_for_resume(self, run: Run) -> set[str]:
        """The source is down by definition; only the destination must answer."""
        return {run.state["dest"]} if run.state.get("dest") else set()

    async def superseded(self, run: Run, done: list[Step], at: Step,
                         lost: StateConflict) -> None:
        """Once the guest was rebuilt on the destination, the server lives there: the
        move is recorded (or, for a deleted server, the new copy destroyed)."""
        dest: str = run.state.get("dest") or ""
        rebuilt = False
        if dest:
            try:
                rebuilt = run.instance_id in await self.driver(dest, msg.ListGuests())
            except (RemoteError, BusError):
                rebuilt = False
        if is_deleting(lost):
            await self.destroy_copies(run)
        elif rebuilt:
            def record(s: Session) -> None:
                inst = s.get(Instance, run.instance_id)
                mig = s.get(Migration, run.migration_id)
                assert inst is not None and mig is not None
                if inst.host != dest:
                    claims.release(s, inst.id)
                    claims.move(s, mig.uuid, inst.id)
                    instances.update(s, inst.id, {"host": dest,
                                                  "node": run.state["dest_node"]})
                    bind_network(s, inst.id, dest)
            await self.with_session(record)
        await self.abandon(run, f"evacuation of {run.instance_id} stopped at {at.name}: "
                                f"{lost.message}")

    async def completed(self, run: Run) -> None:
        def done(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            mig.status = "done"  # "completed" once the dead host has cleaned up
            instances.save(s, run.instance_id, {"task_state": None, "fault": None},
                           expected_task_state=run.task_state)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(done)

    async def rolled_back(self, run: Run, failed: Step, message: str) -> None:
        def back(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            assert mig is not None
            claims.release(s, mig.uuid)
            mig.status = "failed"
            # As in Nova, a failed evacuation leaves the server in ERROR on its dead host.
            instances.save(s, run.instance_id, {"vm_state": states.ERROR, "task_state": None},
                           expected_task_state=run.task_state)
            instances.set_fault(s, run.instance_id, f"Evacuation failed at {failed.name}: "
                                f"{message}", 500, message)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(back)

    async def unrecoverable(self, run: Run, message: str) -> None:
        await self.rolled_back(run, self.steps[-1], message)
