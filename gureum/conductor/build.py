"""Booting and deleting servers: schedule, claim, wire the network, spawn, retry.

The boot workflow for one instance:

1. schedule: filter and weigh hosts, claim the best one (one atomic write),
   record host/node/AZ; task_state scheduling → networking.
2. network: allocate and bind ports on that host; networking → spawning.
3. spawn: cast a ``Build`` message (gureum/agent/messages.py) to the host's agent.
4. the agent reports back (``build_result``): ACTIVE, or — on failure — the
   claim is released, the host is excluded, and the instance goes back to
   step 1 until ``max_attempts`` hosts have failed; then ERROR with a fault.

Each transition is a compare-and-swap on task_state, so a delete arriving in
the middle wins cleanly: the next transition finds task_state "deleting" and
the workflow cleans up instead of continuing.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent import messages as msg
from gureum.agent import rpc as agent_rpc
from gureum.bus import BusError, Transport
from gureum.compute import instances, states
from gureum.compute import volumes as vols
from gureum.compute.guests import (
    allocate_network,
    bind_network,
    deallocate_network,
    guest_spec,
    unbind_network,
)
from gureum.compute.instances import StateConflict
from gureum.compute.models import ComputeService, Instance, Migration
from gureum.config import Settings
from gureum.db import Database, utcnow
from gureum.scheduler import claims
from gureum.scheduler.requests import request_spec
from gureum.scheduler.select import COMPUTE_BINARY, NoValidHost, select_and_claim, service_is_up
from gureum.virt.driver import GuestSpec
from gureum.workflows.engine import wait_for_hosts

log = logging.getLogger("gureum.conductor.build")

EV_SCHEDULE = "conductor_schedule_and_build_instances"
EV_BUILD = "compute__do_build_and_run_instance"
EV_DELETE = "compute_terminate_instance"
BOOT_VOLUME_TIMEOUT = 600.0  # seconds a build waits for the volumes made for it
BUILD_TASK_STATES = (states.SCHEDULING, states.NETWORKING, states.SPAWNING)


class BuildWorkflow:
    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.conf = settings.compute
        self.db = db
        self.bus = bus
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    # -- API → conductor -------------------------------------------------------------
    async def build_instances(self, instance_ids: list[str], request_id: str) -> None:
        for iid in instance_ids:
            self._spawn_task(self._build(iid, request_id))

    async def delete_instance(self, instance_id: str, request_id: str) -> None:
        self._spawn_task(self._delete(instance_id, request_id))

    # -- the boot workflow ------------------------------------------------------------
    async def _build(self, instance_id: str, request_id: str) -> None:
        try:
            placed = await asyncio.to_thread(self._schedule, instance_id, request_id)
            if placed is None:
                return
            if not await self._volumes_ready(instance_id, request_id):
                return
            spec = await asyncio.to_thread(self._network, instance_id, request_id)
            if spec is None:
                return
            host, guest, attempt = spec
            try:
                await agent_rpc.cast(self.bus, host, msg.Build(guest, request_id, attempt))
            except BusError as exc:
                await self.build_result(instance_id, host, False,
                                        f"Compute host {host} is not reachable: {exc}",
                                        request_id)
        except Exception:
            log.exception("build of %s failed unexpectedly", instance_id)
            await asyncio.to_thread(self._fail, instance_id, request_id,
                                    "Unexpected error while building the server.",
                                    traceback.format_exc())

    def _schedule(self, instance_id: str, request_id: str) -> bool | None:
        try:
            return self._schedule_in_tx(instance_id, request_id)
        except StateConflict:
            return None  # deleted or reset meanwhile: the claim was rolled back with it

    def _schedule_in_tx(self, instance_id: str, request_id: str) -> bool | None:
        with self.db.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted or inst.task_state != states.SCHEDULING:
                return None  # deleted meanwhile, or another worker has it
            instances.event_start(s, instance_id, request_id, EV_SCHEDULE)
            spec = request_spec(s, inst)
            try:
                chosen = select_and_claim(s, spec, self.conf)
            except NoValidHost as exc:
                self._set_error(s, inst, exc.message, request_id, EV_SCHEDULE,
                                details=exc.message, expected=states.SCHEDULING)
                return None
            instances.save(s, instance_id, {
                "host": chosen.host, "node": chosen.node,
                "availability_zone": chosen.availability_zone,
                "task_state": states.NETWORKING}, expected_task_state=states.SCHEDULING)
            instances.event_finish(s, instance_id, request_id, EV_SCHEDULE)
            return True

    def _network(self, instance_id: str, request_id: str
                 ) -> tuple[str, GuestSpec, int] | None:
        try:
            return self._network_in_tx(instance_id, request_id)
        except StateConflict:
            return None  # deleted or reset meanwhile: the ports were rolled back

    def _network_in_tx(self, instance_id: str, request_id: str
                       ) -> tuple[str, GuestSpec, int] | None:
        with self.db.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted or inst.task_state != states.NETWORKING:
                return None
            assert inst.host is not None
            vols.plug_boot_volumes(s, instance_id, inst.host)
            network_info = allocate_network(s, inst)
            instances.save(s, instance_id, {"task_state": states.SPAWNING,
                                            "network_info": network_info},
                           expected_task_state=states.NETWORKING)
            instances.event_start(s, instance_id, request_id, EV_BUILD, inst.host)
            s.refresh(inst)
            attempt = len((inst.system_metadata or {}).get("tried_hosts", [])) + 1
            return inst.host, guest_spec(inst), attempt

    async def _volumes_ready(self, instance_id: str, request_id: str) -> bool:
        """Wait until the volumes made for the server (from an image, blank) are
        available; a volume in error fails the build."""
        deadline = asyncio.get_running_loop().time() + BOOT_VOLUME_TIMEOUT
        while True:
            waiting = await asyncio.to_thread(self._read, vols.waiting_for, instance_id)
            pending = {v: st for v, st in waiting.items() if st != "available"}
            if not pending:
                return True
            broken = {v: st for v, st in pending.items() if st not in ("creating",
                                                                        "downloading")}
            late = asyncio.get_running_loop().time() >= deadline
            if broken or late:
                what = ", ".join(f"{v} ({st})" for v, st in (broken or pending).items())
                message = (f"Volume {what} of server {instance_id} could not be used for "
                           "its boot." if broken else
                           f"Volume {what} was not ready within {BOOT_VOLUME_TIMEOUT:g}s.")
                await asyncio.to_thread(self._fail, instance_id, request_id, message, message)
                return False
            await asyncio.sleep(0.25)

    def _read(self, fn: Any, *args: Any) -> Any:
        with self.db.session(write=False) as s:
            return fn(s, *args)

    # -- restart ----------------------------------------------------------------------
    async def recover(self, skip: set[str] | frozenset[str] = frozenset()) -> None:
        """Boots and deletes a previous conductor left half-done are taken up again
        (except ``skip``: instances whose work was just handed over again)."""
        rows = await asyncio.to_thread(self._in_flight)
        for instance_id, task_state, host, request_id in rows:
            if instance_id in skip:
                continue
            if task_state == states.DELETING:
                self._spawn_task(self._delete(instance_id, request_id, resuming=True))
            elif task_state == states.SPAWNING and host:
                self._spawn_task(self._check_spawned(instance_id, host, request_id))
            else:
                if task_state == states.NETWORKING:
                    await asyncio.to_thread(self._back_to_scheduling, instance_id)
                self._spawn_task(self._build(instance_id, request_id))

    def _in_flight(self) -> list[tuple[str, str, str | None, str]]:
        from gureum.compute.models import InstanceAction

        with self.db.session(write=False) as s:
            out = []
            for inst in s.scalars(select(Instance).where(
                    Instance.deleted.is_(False), Instance.task_state.in_(
                        [states.SCHEDULING, states.NETWORKING, states.SPAWNING,
                         states.DELETING]))):
                request_id = s.scalar(select(InstanceAction.request_id).where(
                    InstanceAction.instance_id == inst.id).order_by(
                    InstanceAction.id.desc()).limit(1)) or "req-recovered"
                out.append((inst.id, inst.task_state or "", inst.host, request_id))
            return out

    def _back_to_scheduling(self, instance_id: str) -> None:
        try:
            with self.db.session() as s:
                claims.release(s, instance_id)
                instances.save(s, instance_id, {"host": None, "node": None,
                                                "task_state": states.SCHEDULING},
                               expected_task_state=states.NETWORKING)
        except StateConflict:
            pass  # deleted or reset meanwhile; the build then finds nothing to do

    async def _check_spawned(self, instance_id: str, host: str, request_id: str) -> None:
        """After a restart in 'spawning': ask the host whether the guest came up
        (once its agent answers again: it may start after the conductor)."""
        await wait_for_hosts(self.bus, {host}, self.settings.conductor.resume_host_wait)
        try:
            power = await agent_rpc.call(self.bus, host, msg.GetPowerState(instance_id),
                                         self.conf.rpc_timeout)
        except BusError as exc:
            await self.build_result(instance_id, host, False,
                                    f"Compute host {host} did not answer after a conductor "
                                    f"restart: {exc}", request_id)
            return
        if power == states.RUNNING:
            await self.build_result(instance_id, host, True, "", request_id, power)
        else:
            await self.build_result(instance_id, host, False,
                                    "The guest was not running after a conductor restart.",
                                    request_id)

    # -- agent → conductor ---------------------------------------------------------------
    async def build_result(self, instance_id: str, host: str, ok: bool, error: str = "",
                           request_id: str = "", power_state: int = states.RUNNING,
                           details: str = "") -> dict[str, Any]:
        if ok:
            done = await asyncio.to_thread(self._built, instance_id, host, request_id,
                                           power_state)
            if not done:
                # Deleted (or moved) while spawning: the guest must not linger.
                await self._terminate_on(host, instance_id)
            return {"accepted": done}
        try:
            retry = await asyncio.to_thread(self._build_failed, instance_id, host, error,
                                            request_id, details)
        except StateConflict:
            retry = False  # deleted or reset meanwhile: theirs stands
        if retry:
            self._spawn_task(self._build(instance_id, request_id))
        return {"accepted": True, "retry": retry}

    def _built(self, instance_id: str, host: str, request_id: str, power_state: int) -> bool:
        try:
            with self.db.session() as s:
                instances.save(s, instance_id, {
                    "vm_state": states.ACTIVE, "task_state": None, "power_state": power_state,
                    "launched_at": utcnow(), "progress": 100, "fault": None},
                    expected_task_state=states.SPAWNING)
                instances.event_finish(s, instance_id, request_id, EV_BUILD, host=host)
                instances.finish_action(s, instance_id, request_id)
                bind_network(s, instance_id, host)
                return True
        except StateConflict:
            return False

    def _build_failed(self, instance_id: str, host: str, error: str, request_id: str,
                      details: str) -> bool:
        with self.db.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted or inst.task_state != states.SPAWNING:
                return False
            instances.event_finish(s, instance_id, request_id, EV_BUILD, "Error", host=host,
                                   details=error, traceback=details or None)
            claims.release(s, instance_id)
            unbind_network(s, instance_id)
            sysmeta = dict(inst.system_metadata or {})
            tried = [*sysmeta.get("tried_hosts", []), host]
            sysmeta["tried_hosts"] = tried
            forced = sysmeta.get("forced_destination") or sysmeta.get("requested_destination")
            if len(tried) < self.conf.max_attempts and not forced:
                instances.update(s, instance_id, {"system_metadata": sysmeta})
                instances.save(s, instance_id, {
                    "host": None, "node": None, "task_state": states.SCHEDULING},
                    expected_task_state=states.SPAWNING)
                log.info("build of %s failed on %s (%s); rescheduling", instance_id, host,
                         error)
                return True
            message = ("Exceeded maximum number of retries. Exhausted all hosts available "
                       f"for retrying build failures for instance {instance_id}."
                       if len(tried) > 1 else f"Build of instance {instance_id} failed on "
                       f"{host}: {error}")
            instances.update(s, instance_id, {"system_metadata": sysmeta})
            self._set_error(s, inst, message, request_id, None,
                            details=f"Last failure on {host}: {error}",
                            expected=states.SPAWNING)
            return False

    def _set_error(self, s: Session, inst: Instance, message: str, request_id: str,
                   event: str | None, details: str = "", *, expected: str | None) -> None:
        instances.save(s, inst.id, {"vm_state": states.ERROR, "task_state": None,
                                    "power_state": states.NOSTATE},
                       expected_task_state=expected)
        instances.set_fault(s, inst.id, message, 500, details)
        if event:
            instances.event_finish(s, inst.id, request_id, event, "Error", details=message)
        instances.finish_action(s, inst.id, request_id)

    def _fail(self, instance_id: str, request_id: str, message: str, details: str) -> None:
        try:
            with self.db.session() as s:
                inst = s.get(Instance, instance_id)
                if inst is not None and not inst.deleted and \
                        inst.task_state in BUILD_TASK_STATES:
                    claims.release(s, instance_id)
                    self._set_error(s, inst, message, request_id, None, details,
                                    expected=inst.task_state)
        except StateConflict:
            pass  # deleted or reset meanwhile: theirs stands

    # -- delete --------------------------------------------------------------------
    async def _delete(self, instance_id: str, request_id: str, resuming: bool = False
                      ) -> None:
        hosts = await asyncio.to_thread(self._delete_targets, instance_id)
        if resuming and hosts:  # after a restart the agents may not be listening yet
            away = await wait_for_hosts(self.bus, set(hosts),
                                        self.settings.conductor.resume_host_wait)
            hosts = [h for h in hosts if h not in away]
        for host in hosts:
            await self._terminate_on(host, instance_id)
        await asyncio.to_thread(self._finish_delete, instance_id, request_id,
                                hosts[0] if hosts else None)

    def _delete_targets(self, instance_id: str) -> list[str]:
        """The hosts to destroy copies on: the instance's, and both ends of a move that
        has not ended (a resize waiting for confirm keeps the source copy; Nova
        confirms it before deleting). A host whose agent is down is skipped."""
        with self.db.session(write=False) as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted:
                return []
            wanted = [inst.host] if inst.host else []
            for mig in s.scalars(select(Migration).where(
                    Migration.instance_id == instance_id,
                    Migration.status.not_in(states.MIGRATION_TERMINAL))):
                wanted += [h for h in (mig.source_compute, mig.dest_compute) if h]
            hosts: list[str] = []
            for host in dict.fromkeys(wanted):
                svc = s.scalar(select(ComputeService).where(
                    ComputeService.host == host, ComputeService.binary == COMPUTE_BINARY))
                if svc is None or not service_is_up(svc, self.conf.service_down_time):
                    # Nova's "local delete": the agent destroys the stale guest when it
                    # comes back (it reconciles against the database).
                    log.warning("deleting %s while its host %s is down", instance_id, host)
                    continue
                hosts.append(host)
            return hosts

    async def _terminate_on(self, host: str, instance_id: str) -> None:
        try:
            await agent_rpc.call(self.bus, host, msg.Destroy(instance_id), self.conf.rpc_timeout)
        except BusError as exc:
            log.warning("could not destroy %s on %s: %s", instance_id, host, exc)

    def _finish_delete(self, instance_id: str, request_id: str, host: str | None) -> None:
        try:
            with self.db.session() as s:
                inst = s.get(Instance, instance_id)
                if inst is None or inst.deleted:
                    return
                claims.release(s, instance_id)
                for mig in s.scalars(select(Migration).where(
                        Migration.instance_id == instance_id,
                        Migration.status.not_in(states.MIGRATION_TERMINAL))):
                    claims.release(s, mig.uuid)  # a move that never ended holds nothing now
                    mig.status = "error"
                deallocate_network(s, instance_id)
                # Its volumes go back to available (or go, delete_on_termination).
                doomed = vols.release(s, instance_id)
                vols.delete_volumes(s, doomed, inst.project_id, request_id)
                now = utcnow()
                instances.save(s, instance_id, {
                    "vm_state": states.DELETED, "task_state": None,
                    "power_state": states.NOSTATE, "deleted": True, "deleted_at": now,
                    "terminated_at": now}, expected_task_state=states.DELETING)
                instances.event_finish(s, instance_id, request_id, EV_DELETE, host=host)
                instances.finish_action(s, instance_id, request_id)
        except StateConflict as lost:  # an admin reset the state while it was deleting
            log.warning("delete of %s superseded: %s", instance_id, lost.message)
