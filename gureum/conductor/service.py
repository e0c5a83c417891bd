"""The conductor: owns multi-host workflows and records what agents report.

Agents never touch the database; they report over the bus and the conductor
writes. Methods of ``ConductorEndpoint`` are what the bus can reach (topic
"conductor"); each opens its own short transaction in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.bus import Transport
from gureum.compute import states
from gureum.compute.guests import guest_spec
from gureum.compute.models import ComputeNode, ComputeService, Instance
from gureum.conductor.actions import ActionRunner
from gureum.conductor.build import BuildWorkflow
from gureum.conductor.interfaces import InterfaceRunner
from gureum.conductor.lifecycle import LifecycleRunner
from gureum.conductor.network import NetworkConductor
from gureum.conductor.volumes import VolumeRunner
from gureum.config import Settings
from gureum.db import Database, utcnow
from gureum.network import service as netsvc
from gureum.scheduler.select import COMPUTE_BINARY
from gureum.volume.manager import VolumeManager
from gureum.workflows.drain import HostOperationRunner
from gureum.workflows.manager import WorkflowManager

log = logging.getLogger("gureum.conductor")


class ConductorEndpoint:
    """Methods agents and the API call over the bus (topic "conductor")."""

    def __init__(self, settings: Settings, db: Database, build: BuildWorkflow,
                 actions: ActionRunner, workflows: WorkflowManager) -> None:
        self.settings = settings
        self.db = db
        self.build = build
        self.actions = actions
        self.workflows = workflows
        self.lifecycle = LifecycleRunner(settings, db, build.bus)
        self.volumes: VolumeManager | None = None
        self.server_volumes = VolumeRunner(settings, db, build.bus)
        self.server_interfaces = InterfaceRunner(settings, db, build.bus)
        self.host_operations: HostOperationRunner | None = None  # the Conductor's

    # -- heartbeats and inventory --------------------------------------------------
    async def report_state(self, host: str, binary: str, topic: str = "compute"
                           ) -> dict[str, Any]:
        return await asyncio.to_thread(self._report_state, host, binary, topic)

    def _report_state(self, host: str, binary: str, topic: str) -> dict[str, Any]:
        with self.db.session() as s:
            svc = s.scalar(select(ComputeService).where(ComputeService.host == host,
                                                        ComputeService.binary == binary))
            if svc is None:
                svc = ComputeService(host=host, binary=binary, topic=topic)
                s.add(svc)
                log.info("new %s service on host %s", binary, host)
            svc.last_seen_up = utcnow()
            svc.report_count = (svc.report_count or 0) + 1
            s.flush()
            return {"uuid": svc.uuid, "disabled": svc.disabled, "forced_down": svc.forced_down}

    async def update_resources(self, host: str, node: str, resources: dict[str, Any]) -> None:
        await asyncio.to_thread(self._update_resources, host, node, resources)

    def _update_resources(self, host: str, node: str, r: dict[str, Any]) -> None:
        conf = self.settings.compute
        with self.db.session() as s:
            row = s.scalar(select(ComputeNode).where(ComputeNode.hypervisor_hostname == node))
            if row is None:
                row = ComputeNode(host=host, hypervisor_hostname=node,
                                  cpu_allocation_ratio=conf.cpu_allocation_ratio,
                                  ram_allocation_ratio=conf.ram_allocation_ratio,
                                  disk_allocation_ratio=conf.disk_allocation_ratio,
                                  reserved_memory_mb=conf.reserved_host_memory_mb,
                                  reserved_disk_gb=conf.reserved_host_disk_gb,
                                  vcpus_used=0, memory_mb_used=0, local_gb_used=0)
                s.add(row)
            row.host = host
            row.vcpus = int(r["vcpus"])
            row.memory_mb = int(r["memory_mb"])
            row.local_gb = int(r["local_gb"])
            row.hypervisor_type = str(r.get("hypervisor_type", "fake"))
            row.hypervisor_version = int(r.get("hypervisor_version", 1000))
            row.host_ip = str(r.get("host_ip", "127.0.0.1"))
            row.cpu_info = dict(r.get("cpu_info") or {})
            row.shared_storage_id = r.get("shared_storage_id")
            caps = r.get("capabilities")
            if isinstance(caps, dict):  # what the host's driver really does (virt/driver.py)
                row.capabilities = {str(k): bool(v) for k, v in caps.items()}
            vif = r.get("vif")
            if isinstance(vif, dict):  # how the host plugs ports: its ports' bindings
                netsvc.report_host_vif(s, host, COMPUTE_BINARY, vif)

    async def guests_expected(self, host: str, present: list[str] | None = None
                              ) -> dict[str, Any]:
        """What the database says should be on a host (for the agent's reconcile).

        ``guests``: instances placed on the host. ``keep``: instances whose move
        involves the host (a resize source waiting for confirm, a destination being
        prepared); their copies must stay even though the instance points elsewhere.
        ``elsewhere``: of the ``present`` guests, those whose instance lives on another
        host now (evacuated), with that host's storage marker, so the agent keeps
        disks it shares with it while destroying its stale copy.
        """
        return await asyncio.to_thread(self._guests_expected, host, present or [])

    def _guests_expected(self, host: str, present: list[str]) -> dict[str, Any]:
        from gureum.compute.models import Migration

        with self.db.session(write=False) as s:
            rows = s.scalars(select(Instance).where(Instance.host == host,
                                                    Instance.deleted.is_(False)))
            guests = [{"spec": guest_spec(i).to_dict(), "vm_state": i.vm_state,
                       "task_state": i.task_state, "power_state": i.power_state}
                      for i in rows]
            keep = [m.instance_id for m in s.scalars(select(Migration).where(
                Migration.status.not_in(states.MIGRATION_TERMINAL),
                (Migration.source_compute == host) | (Migration.dest_compute == host)))]
            elsewhere = {i.id: node.shared_storage_id for i, node in s.execute(
                select(Instance, ComputeNode).join(ComputeNode,
                                                   ComputeNode.host == Instance.host)
                .where(Instance.id.in_(present), Instance.host != host,
                       Instance.deleted.is_(False)))}
            return {"guests": guests, "keep": keep, "elsewhere": elsewhere}

    async def sync_power_states(self, host: str, observed: dict[str, int | None],
                                destroyed: list[str]) -> None:
        """Record what a (re)started agent found; finish evacuations from that host."""
        await asyncio.to_thread(self._sync_power_states, host, observed, destroyed)

    def _sync_power_states(self, host: str, observed: dict[str, int | None],
                           destroyed: list[str]) -> None:
        from gureum.compute import instances
        from gureum.compute.models import Migration

        with self.db.session() as s:
            for instance_id, power in observed.items():
                inst = s.get(Instance, instance_id)
                if inst is None or inst.deleted or inst.host != host or inst.task_state:
                    continue
                if power is None:  # the guest is not there: a state to reconcile (Nova's)
                    _record_missing(s, instance_id, host, "the compute agent's start")
                    continue
                values: dict[str, Any] = {"power_state": power}
                if inst.vm_state == states.ACTIVE and power == states.SHUTDOWN:
                    values["vm_state"] = states.STOPPED  # the guest is off: say so (S9)
                try:
                    instances.save(s, inst.id, values, expected_task_state=None,
                                   expected_vm_state=inst.vm_state)
                except instances.StateConflict:
                    continue  # an action started meanwhile; it reports its own outcome
            for mig in s.scalars(select(Migration).where(
                    Migration.source_compute == host, Migration.migration_type == "evacuation",
                    Migration.status == "done")):
                mig.status = "completed"
            if destroyed:
                log.info("%s destroyed stale guests %s at start", host, destroyed)

    async def guest_missing(self, host: str, instance_id: str, operation: str) -> None:
        """An agent found no guest for an instance it was asked about (GuestNotFound)."""
        await asyncio.to_thread(self._guest_missing, host, instance_id, operation)

    def _guest_missing(self, host: str, instance_id: str, operation: str) -> None:
        from gureum.compute.models import Migration

        with self.db.session() as s:
            moving = s.scalar(select(Migration.id).where(
                Migration.instance_id == instance_id,
                Migration.status.not_in(states.MIGRATION_TERMINAL)).limit(1))
            if moving is None:  # a guest in the middle of a move may be on either host
                _record_missing(s, instance_id, host, operation)

    async def live_migration_progress(self, host: str, instance_id: str,
                                      figures: dict[str, Any]) -> None:
        """A source agent's figures of a live migration under way: into its record, as
        Nova's driver updates it (``GET /servers/{id}/migrations/{id}`` shows them)."""
        await asyncio.to_thread(self._live_migration_progress, host, instance_id, figures)

    def _live_migration_progress(self, host: str, instance_id: str,
                                 figures: dict[str, Any]) -> None:
        from gureum.compute.migrations import LIVE_IN_PROGRESS
        from gureum.compute.models import Migration

        with self.db.session() as s:
            mig = s.scalar(select(Migration).where(
                Migration.instance_id == instance_id, Migration.source_compute == host,
                Migration.migration_type == "live-migration",
                Migration.status.in_(LIVE_IN_PROGRESS)).order_by(Migration.id.desc())
                .limit(1))
            if mig is None:
                return
            for name in ("memory_total_bytes", "memory_processed_bytes",
                         "memory_remaining_bytes", "disk_total_bytes",
                         "disk_processed_bytes", "disk_remaining_bytes"):
                value = figures.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    setattr(mig, name, value)

    # -- the outbox: work the API handed over after its transaction committed -------------
    async def dispatch_outbox(self, ids: list[int]) -> list[str]:
        """Take each row (whoever deletes it owns its work) and start that work.

        Returns the instances whose work was started."""
        started: list[str] = []
        for message_id in ids:
            taken = await asyncio.to_thread(self._take, int(message_id))
            if taken is None:
                continue  # another conductor (or the sweep) has it
            method, args = taken
            try:
                await getattr(self, method)(**args)
            except Exception:  # a bad row must not stop the others
                log.exception("outbox row %s (%s) failed to start", message_id, method)
                continue
            started += list(args.get("instance_ids") or [])
            if args.get("instance_id"):
                started.append(str(args["instance_id"]))
        return started

    def _take(self, message_id: int) -> tuple[str, dict[str, Any]] | None:
        with self.db.session() as s:
            taken = outbox.take(s, message_id)
        if taken is not None and taken[0] not in outbox.METHODS:
            log.error("outbox row %s names an unknown method %r; dropped", message_id,
                      taken[0])
            return None
        return taken

    # -- servers -----------------------------------------------------------------------
    async def build_instances(self, instance_ids: list[str], request_id: str) -> None:
        await self.build.build_instances(instance_ids, request_id)

    async def delete_instance(self, instance_id: str, request_id: str) -> None:
        await self.build.delete_instance(instance_id, request_id)

    async def run_action(self, instance_id: str, action: str, request_id: str,
                         params: dict[str, Any] | None = None) -> None:
        self.build._spawn_task(self.actions.run(instance_id, action, request_id, params))

    async def snapshot(self, instance_id: str, image_id: str, request_id: str,
                       backup: dict[str, Any] | None = None) -> None:
        self.build._spawn_task(self.lifecycle.snapshot(instance_id, image_id, request_id,
                                                       backup))

    async def shelve(self, instance_id: str, image_id: str, request_id: str) -> None:
        self.build._spawn_task(self.lifecycle.shelve(instance_id, image_id, request_id))

    async def unshelve(self, instance_id: str, request_id: str,
                       availability_zone: str | None = None, host: str | None = None
                       ) -> None:
        self.build._spawn_task(self.lifecycle.unshelve(instance_id, request_id,
                                                       availability_zone, host))

    async def rebuild(self, instance_id: str, request_id: str) -> None:
        self.build._spawn_task(self.lifecycle.rebuild(instance_id, request_id))

    async def attach_volume(self, instance_id: str, volume_id: str, request_id: str) -> None:
        self.build._spawn_task(self.server_volumes.attach(instance_id, volume_id, request_id))

    async def detach_volume(self, instance_id: str, volume_id: str, request_id: str) -> None:
        self.build._spawn_task(self.server_volumes.detach(instance_id, volume_id, request_id))

    async def interface_work(self, instance_id: str, port_id: str) -> None:
        """Unplug a deleted port's NIC, or finish an attach or detach (compute/interfaces)."""
        self.build._spawn_task(self.server_interfaces.run(instance_id, port_id))

    async def swap_volume(self, instance_id: str, volume_id: str, request_id: str) -> None:
        self.build._spawn_task(self.server_volumes.swap(instance_id, volume_id, request_id))

    async def begin_workflow(self, migration_id: int, request_id: str) -> None:
        """Start a resize, cold/live migration or evacuation recorded in a migration row."""
        await self.workflows.begin(migration_id, request_id)

    async def finish_resize(self, instance_id: str, request_id: str, confirm: bool) -> None:
        await self.workflows.finish_resize(instance_id, request_id, confirm)

    async def host_operation(self, operation_id: int) -> None:
        """Run (or go on with) a drain or restore of a host (gureum/workflows/drain.py)."""
        if self.host_operations is not None:
            self.host_operations.start(int(operation_id))

    # -- volumes -----------------------------------------------------------------------
    async def volume_work(self, kind: str, ident: str, request_id: str = "") -> None:
        """Do what a volume's or snapshot's transitional status asks (gureum/volume/manager)."""
        if self.volumes is not None:
            await self.volumes.work(kind, ident, request_id)

    async def build_result(self, instance_id: str, host: str, ok: bool, error: str = "",
                           request_id: str = "", power_state: int = 1, details: str = ""
                           ) -> dict[str, Any]:
        return await self.build.build_result(instance_id, host, ok, error, request_id,
                                             power_state, details)


def _record_missing(s: Session, instance_id: str, host: str, found_by: str) -> None:
    """Power state NOSTATE and a fault, as Nova records a guest its driver cannot find;
    vm_state stays (a hard reboot rebuilds the guest from the database)."""
    from gureum.compute import instances
    from gureum.db import compare_and_swap

    if compare_and_swap(s, Instance, instance_id, {"host": host, "deleted": False},
                        {"power_state": states.NOSTATE, "updated_at": utcnow()}):
        log.warning("the guest of %s is missing from %s (found by %s)", instance_id, host,
                    found_by)
        instances.set_fault(s, instance_id, "The server's guest is missing from its host; "
                            "a hard reboot rebuilds it.", 500,
                            f"No guest {instance_id} on host {host} (found by {found_by}).")


class Conductor:
    def __init__(self, settings: Settings, db: Database, bus: Transport,
                 name: str | None = None) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.name = name or socket.gethostname()
        self._heartbeat: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.build = BuildWorkflow(settings, db, bus)
        self.actions = ActionRunner(settings, db, bus)
        self.workflows = WorkflowManager(settings, db, bus)
        self.endpoint = ConductorEndpoint(settings, db, self.build, self.actions,
                                          self.workflows)
        self.endpoint.server_interfaces.rename(self.name)
        self.volumes = VolumeManager(settings, db, self.name, bus)
        self.host_operations = HostOperationRunner(settings, db, self.endpoint.dispatch_outbox,
                                                   self.name)
        self.endpoint.host_operations = self.host_operations
        self.endpoint.volumes = self.volumes
        self.network = NetworkConductor(settings, db, bus, self.name)

    async def start(self, recover: bool = True) -> None:
        """Serve the bus and heartbeat; then (unless the caller does it later, once the
        agents it starts are listening) take up what a previous conductor left."""
        await self.bus.serve("conductor", self.name, self.endpoint)
        await self.network.start()
        await self.endpoint.report_state(self.name, "gureum-conductor", "conductor")
        await asyncio.to_thread(self.volumes.report_services)
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="conductor-hb")
        if recover:
            await self.recover()

    async def _sweep_loop(self) -> None:
        """Work whose hand-over message was lost is started a moment later anyway; volume
        work whose conductor died is taken over once its lease has expired."""
        conf = self.settings.conductor
        next_take_over = 0.0
        while True:
            await asyncio.sleep(conf.outbox_sweep_interval)
            try:
                ids = await asyncio.to_thread(self._due, conf.outbox_grace)
                if ids:
                    log.warning("starting %d hand-over(s) whose message was lost", len(ids))
                    await self.endpoint.dispatch_outbox(ids)
                await self._interfaces_due()
            except Exception:  # the database may be briefly unavailable; try next time
                log.exception("outbox sweep failed")
            if time.monotonic() >= next_take_over:
                next_take_over = time.monotonic() + conf.work_lease / 3
                try:
                    await self.volumes.take_over()
                    await self.host_operations.resume_all()
                except Exception:
                    log.exception("looking for work to take over failed")

    async def _interfaces_due(self, resume: bool = False) -> None:
        """NIC changes nobody holds: left by a dead process, or waiting for their host;
        at start (``resume``) also those this conductor held before it stopped."""
        runner = self.endpoint.server_interfaces
        for instance_id, port_id in await asyncio.to_thread(runner.pending, resume):
            self.build._spawn_task(runner.run(instance_id, port_id, resume))

    def _due(self, grace: float) -> list[int]:
        with self.db.session(write=False) as s:
            return outbox.due(s, grace)

    async def _heartbeat_loop(self) -> None:
        """The conductor reports itself like any service, so os-services shows it up."""
        while True:
            await asyncio.sleep(self.settings.compute.report_interval)
            try:
                await self.endpoint.report_state(self.name, "gureum-conductor", "conductor")
                await asyncio.to_thread(self.volumes.report_services)
            except Exception:  # the database may be briefly unavailable; try next time
                log.exception("conductor heartbeat failed")

    async def recover(self) -> None:
        """Finish what a previous conductor left in flight (no task_state stays stuck).

        Hand-overs still in the outbox go first (they carry the newest work); work
        that was taken before the restart is found from the instances' task_states.
        """
        with self.db.session(write=False) as s:
            pending = outbox.pending(s)
        started = set(await self.endpoint.dispatch_outbox(pending)) if pending else set()
        for instance_id, action, request_id in await asyncio.to_thread(
                self.actions.in_flight):
            if instance_id in started:
                continue
            log.info("resuming %s of %s after a restart", action, instance_id)
            self.build._spawn_task(self.actions.run(instance_id, action, request_id,
                                                    resuming=True))
        for kind, instance_id, volume_id in await asyncio.to_thread(
                self.endpoint.server_volumes.in_flight):
            if instance_id not in started:  # plugging is idempotent: asked again
                run = getattr(self.endpoint.server_volumes, kind)
                self.build._spawn_task(run(instance_id, volume_id, "req-recovered"))
        await self._interfaces_due(resume=True)
        await self.build.recover(skip=started)
        await self.volumes.recover()
        await self.workflows.start()
        await self.host_operations.resume_all()
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="conductor-outbox")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self.bus.unserve("conductor", self.name)
        await self.network.stop()
        await self.workflows.stop()
        await self.host_operations.stop()
        await self.build.stop()
        await self.volumes.stop()
