"""Resize and cold migration: one workflow, with confirm and revert.

Steps (S2): claim the destination → preflight on the destination (space,
directory: nothing is touched yet) → clean power-off on the source → move the
disks over the agents' own channel (nothing when the instances directory is
shared) → finish on the destination (VERIFY_RESIZE). A failure before the
power-off leaves the server running on the source; a failure after it rolls
back: the copy on the destination is dropped and the guest starts again on the
source. The source disk is only removed by confirm (or auto-confirm).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent import messages as msg
from gureum.compute import instances, states, volumes
from gureum.compute.guests import bind_network, guest_spec, shutdown_timeout
from gureum.compute.models import ComputeNode, Instance, Migration
from gureum.db import utcnow
from gureum.scheduler import claims
from gureum.virt.driver import GuestSpec
from gureum.workflows.engine import Run, Step, StepFailed, Workflow

log = logging.getLogger("gureum.workflows.resize")


def spec_with_flavor(inst: Instance, flavor: dict[str, Any],
                     block_devices: list[dict[str, Any]] | None = None) -> GuestSpec:
    base = guest_spec(inst, block_devices=block_devices)
    return GuestSpec.from_dict({**base.to_dict(), "vcpus": int(flavor.get("vcpus", 1)),
                                "memory_mb": int(flavor.get("ram", 64)),
                                "root_gb": int(flavor.get("disk", 0)),
                                "ephemeral_gb": int(flavor.get("ephemeral", 0)),
                                "swap_mb": int(flavor.get("swap", 0))})


def node_of(s: Session, host: str) -> ComputeNode:
    node = s.scalar(select(ComputeNode).where(ComputeNode.host == host).limit(1))
    if node is None:
        raise StepFailed(f"Compute host {host} has no compute node record.")
    return node


def storage_marker(s: Session, host: str) -> str | None:
    """The host's shared-storage marker (its agent reports it with its resources); a
    destination that sees this file in its instances directory shares it."""
    return node_of(s, host).shared_storage_id


class ResizeWorkflow(Workflow):
    kind = "resize"

    async def _claim(self, run: Run) -> None:
        def claim(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            inst = s.get(Instance, run.instance_id)
            assert mig is not None and inst is not None
            same_host = (self.settings.compute.allow_resize_to_same_host
                         and mig.migration_type == "resize")
            if self.claim_destination(s, run, flavor=inst.new_flavor or inst.flavor,
                                      same_host=same_host) is not None:
                run.state["shared"] = inst.host == run.state["dest"]  # preflight detects more
        await self.with_session(claim)

    async def _spec(self, run: Run, new: bool = True) -> GuestSpec:
        def load(s: Session) -> GuestSpec:
            inst = s.get(Instance, run.instance_id)
            assert inst is not None
            flavor = (inst.new_flavor or inst.flavor) if new else (inst.old_flavor or
                                                                    inst.flavor)
            host = run.state.get("dest" if new else "source")  # where it is defined
            return spec_with_flavor(inst, flavor or {}, volumes.block_devices_for(
                s, inst.id, host) if host else None)
        result: GuestSpec = await self.with_session(load)
        return result

    async def _preflight(self, run: Run) -> None:
        run.state["event_host"] = run.state["dest"]
        marker = await self.with_session(lambda s: storage_marker(s, run.state["source"]))
        facts = await self.driver(run.state["dest"], msg.Preflight(
            await self._spec(run), source_marker=marker))
        run.state["shared"] = (run.state["source"] == run.state["dest"]
                               or facts.shared_storage)

    async def _power_off(self, run: Run) -> None:
        def was_running(s: Session) -> tuple[bool, float]:
            inst = s.get(Instance, run.instance_id)
            assert inst is not None
            return inst.power_state == states.RUNNING, shutdown_timeout(inst, self.settings)
        if "was_running" not in run.state:
            running, timeout = await self.with_session(was_running)
            run.state["was_running"] = running
            run.state["shutdown_timeout"] = timeout
        run.state["event_host"] = run.state["source"]
        if run.state["was_running"]:
            timeout = float(run.state["shutdown_timeout"])
            result = await self.driver(
                run.state["source"], msg.PowerOff(
                    run.instance_id, timeout=timeout,
                    retry_interval=self.settings.compute.shutdown_retry_interval),
                rpc_timeout=timeout + self.settings.compute.rpc_timeout)
            if not result.clean:
                await self.with_session(lambda s: instances.event_finish(
                    s, run.instance_id, run.request_id, "compute_power_off_forced",
                    host=run.state["source"], details="The guest did not shut down in time "
                    "and was forced off before the move."))
            await self.with_session(lambda s: instances.update(
                s, run.instance_id, {"power_state": states.SHUTDOWN}))

    async def _power_on_source(self, run: Run) -> None:
        if run.state.get("was_running"):
            await self.driver(run.state["source"],
                              msg.PowerOn(await self._spec(run, new=False)))
            await self.with_session(lambda s: instances.update(
                s, run.instance_id, {"power_state": states.RUNNING}))

    async def _transfer(self, run: Run) -> None:
        if run.state.get("shared"):
            return  # same instances directory: nothing to copy
        disks = await self.driver(run.state["source"], msg.ExportDisks(run.instance_id))
        run.state["event_host"] = run.state["dest"]
        # The copy takes as long as the disks are big: the usual call timeout plus a
        # second per 10 MiB to copy (a destination that stops answering is still seen).
        size = sum(int(d.get("size") or 0) for d in disks if isinstance(d, dict))
        await self.driver(run.state["dest"], msg.ImportDisks(
            await self._spec(run), disks=disks, source=run.state["source"]),
            rpc_timeout=self.settings.compute.rpc_timeout + size / (10 << 20))

    async def _drop_copy(self, run: Run) -> None:
        if run.state.get("shared") or run.state.get("dest") == run.state.get("source"):
            return
        await self.driver(run.state["dest"], msg.Destroy(run.instance_id))

    async def _finish(self, run: Run) -> None:
        spec = await self._spec(run)
        run.state["event_host"] = run.state["dest"]
        if run.state.get("shared") and run.state["dest"] != run.state["source"]:
            # Same disks seen from both hosts: only the definition moves.
            await self.driver(run.state["source"],
                              msg.Destroy(run.instance_id, keep_disks=True))
        await self.driver(run.state["dest"], msg.FinishMigration(
            spec, resize_disk=True, power_on=bool(run.state.get("was_running"))))

        def moved(s: Session) -> None:
            inst = s.get(Instance, run.instance_id)
            mig = s.get(Migration, run.migration_id)
            assert inst is not None and mig is not None
            # The instance now holds the destination; the migration holds the source.
            claims.swap(s, inst.id, mig.uuid)
            new_flavor = inst.new_flavor or inst.flavor
            instances.save(s, inst.id, {
                "host": run.state["dest"], "node": run.state["dest_node"],
                "flavor": new_flavor, "flavor_id": (new_flavor or {}).get("id",
                                                                          inst.flavor_id),
                "vm_state": states.RESIZED,
                "power_state": states.RUNNING if run.state.get("was_running")
                else states.SHUTDOWN}, expected_task_state=run.task_state)
            bind_network(s, inst.id, run.state["dest"])
        await self.with_session(moved)

    steps = (
        Step("claim", _claim, Workflow.release_destination,
             task_state=states.RESIZE_PREP, status="pre-migrating",
             event="conductor_migrate_server"),
        Step("preflight", _preflight, None, status="pre-migrating",
             event="compute_prep_resize"),
        Step("power_off", _power_off, _power_on_source, task_state=states.RESIZE_MIGRATING,
             status="migrating", event="compute_resize_instance"),
        Step("transfer", _transfer, _drop_copy, task_state=states.RESIZE_MIGRATED,
             status="post-migrating", event="compute_copy_disks"),
        Step("finish", _finish, None, task_state=states.RESIZE_FINISH, status="finished",
             event="compute_finish_resize"),
    )

    # -- outcomes ------------------------------------------------------------------------
    async def completed(self, run: Run) -> None:
        def done(s: Session) -> None:
            instances.save(s, run.instance_id, {"task_state": None, "fault": None},
                           expected_task_state=run.task_state)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(done)
        window = self.settings.compute.resize_confirm_window
        if window > 0:
            log.info("%s will be confirmed automatically in %ss", run.instance_id, window)

    async def rolled_back(self, run: Run, failed: Step, message: str) -> None:
        def back(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            inst = s.get(Instance, run.instance_id)
            assert mig is not None and inst is not None
            claims.release(s, mig.uuid)
            mig.status = "error"
            instances.save(s, inst.id, {"task_state": None, "new_flavor": None,
                                        "host": run.state.get("source") or inst.host,
                                        "node": run.state.get("source_node") or inst.node,
                                        "power_state": states.RUNNING
                                        if run.state.get("was_running", True)
                                        and inst.vm_state == states.ACTIVE
                                        else inst.power_state},
                           expected_task_state=run.task_state)
            where = ("before the guest was touched" if failed.name in ("claim", "preflight")
                     else "and was rolled back; the server runs on its source again")
            instances.set_fault(s, inst.id, f"{self.kind.capitalize()} failed at "
                                f"{failed.name} {where}: {message}", 500, message)
            instances.finish_action(s, inst.id, run.request_id)
        await self.with_session(back)

    async def unrecoverable(self, run: Run, message: str) -> None:
        def broken(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            if mig is not None:
                mig.status = "error"
                # The move is over: the destination's claim goes (the undo that
                # would have released it never ran).
                claims.release(s, mig.uuid)
            instances.save(s, run.instance_id, {"vm_state": states.ERROR, "task_state": None},
                           expected_task_state=run.task_state)
            instances.set_fault(s, run.instance_id, message, 500, message)
            instances.finish_action(s, run.instance_id, run.request_id)
        await self.with_session(broken)

    # -- confirm and revert ------------------------------------------------------------------
    async def confirm(self, run: Run) -> None:
        """Remove the source copy (only now) and give back the source's resources."""
        source = run.state.get("source")
        shared = run.state.get("shared")
        if source and source != run.state.get("dest") and not shared:
            await self.driver(source, msg.Destroy(run.instance_id))

        def confirmed(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            inst = s.get(Instance, run.instance_id)
            assert mig is not None and inst is not None
            claims.release(s, mig.uuid)
            mig.status = "confirmed"
            running = inst.power_state == states.RUNNING
            instances.save(s, inst.id, {
                "vm_state": states.ACTIVE if running else states.STOPPED,
                "task_state": None, "old_flavor": None, "new_flavor": None},
                expected_task_state=states.RESIZE_CONFIRMING)
            instances.event_finish(s, inst.id, run.request_id, "compute_confirm_resize",
                                   host=source)
            instances.finish_action(s, inst.id, run.request_id)
        await self.with_session(confirmed)

    async def revert(self, run: Run) -> None:
        """Drop the destination copy and start the untouched source again."""
        dest, source = run.state.get("dest"), run.state.get("source")
        assert dest and source
        old = await self._spec(run, new=False)
        if dest != source:
            await self.driver(dest, msg.Destroy(run.instance_id,
                                                keep_disks=bool(run.state.get("shared"))))
        await self.driver(source, msg.FinishMigration(
            old, resize_disk=False, power_on=bool(run.state.get("was_running"))))

        def reverted(s: Session) -> None:
            mig = s.get(Migration, run.migration_id)
            inst = s.get(Instance, run.instance_id)
            assert mig is not None and inst is not None
            # Back to holding the source; the migration's (destination) claim goes.
            claims.swap(s, inst.id, mig.uuid)
            claims.release(s, mig.uuid)
            mig.status = "reverted"
            old_flavor = inst.old_flavor or inst.flavor
            running = bool(run.state.get("was_running"))
            instances.save(s, inst.id, {
                "host": source, "node": run.state.get("source_node"), "flavor": old_flavor,
                "flavor_id": (old_flavor or {}).get("id", inst.flavor_id),
                "vm_state": states.ACTIVE if running else states.STOPPED,
                "power_state": states.RUNNING if running else states.SHUTDOWN,
                "task_state": None, "old_flavor": None, "new_flavor": None},
                expected_task_state=states.RESIZE_REVERTING)
            bind_network(s, inst.id, source)
            instances.event_finish(s, inst.id, run.request_id, "compute_revert_resize",
                                   host=dest)
            instances.finish_action(s, inst.id, run.request_id)
        await self.with_session(reverted)


def start_migration(s: Session, inst: Instance, migration_type: str,
                    new_flavor: dict[str, Any] | None, requested_host: str | None,
                    user_id: str, project_id: str) -> Migration:
    """The migration row for a resize or cold migration (the workflow's record)."""
    mig = Migration(instance_id=inst.id, migration_type=migration_type,
                    status="pre-migrating", source_compute=inst.host, source_node=inst.node,
                    old_flavor_id=inst.flavor_id,
                    new_flavor_id=(new_flavor or inst.flavor or {}).get("id"),
                    state={"requested_host": requested_host} if requested_host else {},
                    user_id=user_id, project_id=project_id, updated_at=utcnow())
    s.add(mig)
    instances.update(s, inst.id, {"old_flavor": inst.flavor,
                                  "new_flavor": new_flavor or inst.flavor})
    s.flush()
    return mig
