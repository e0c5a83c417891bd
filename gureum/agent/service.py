"""The compute agent: one per hypervisor host. Talks to the bus, never the database.

It drives its host's guests through a virt driver, reports heartbeats and
inventory to the conductor, and reports the outcome of every operation it is
asked to do; the conductor records them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import traceback
from typing import Any

from gureum.bus import BusError, Transport
from gureum.config import Settings
from gureum.virt import make_driver
from gureum.virt.driver import DriverError, GuestNotFound, GuestSpec, VirtDriver

log = logging.getLogger("gureum.agent")

BINARY = "gureum-compute"

# Driver operations the conductor may ask for (see virt/driver.py for what each means).
DRIVER_OPS = frozenset({
    "guest_info", "list_guests", "destroy", "power_off", "power_on", "reboot", "pause",
    "unpause", "suspend", "resume", "console_output", "snapshot", "rescue", "unrescue",
    "preflight", "export_disks", "import_disks", "finish_migration", "live_migrate",
    "prepare_incoming", "abort_incoming", "spawn", "abort_migration",
    "force_complete_migration",
})


class AgentEndpoint:
    """Methods the conductor calls on this host (topic "compute", server = host)."""

    def __init__(self, agent: ComputeAgent) -> None:
        self.agent = agent

    async def ping(self) -> dict[str, Any]:
        return {"host": self.agent.host, "driver": self.agent.driver.name}

    async def build_and_run_instance(self, spec: dict[str, Any], request_id: str,
                                     attempt: int = 1) -> None:
        self.agent.background(self.agent.build(GuestSpec.from_dict(spec), request_id))

    async def driver(self, op: str, spec: dict[str, Any] | None = None,
                     guest_id: str | None = None, **kwargs: Any) -> Any:
        """Run one virt driver operation (the conductor's workflows call this).

        ``spec`` becomes a GuestSpec for operations that take one; ``guest_id``
        is passed for those that take an id. Results are plain JSON values.
        """
        if op not in DRIVER_OPS:
            raise DriverError(f"Unknown driver operation {op!r}.")
        fn = getattr(self.agent.driver, op)
        args: list[Any] = []
        if spec is not None:
            args.append(GuestSpec.from_dict(spec))
        elif guest_id is not None:
            args.append(guest_id)
        try:
            result = await fn(*args, **kwargs)
        except GuestNotFound:
            target = spec["id"] if spec is not None else guest_id
            if target:
                self.agent.report_missing(target, op)
            raise
        if hasattr(result, "__dataclass_fields__"):
            return dataclasses.asdict(result)
        return result

    async def terminate_instance(self, instance_id: str) -> dict[str, Any]:
        await self.agent.driver.destroy(instance_id)
        return {"destroyed": instance_id}

    async def guest_power_state(self, instance_id: str) -> int | None:
        try:
            return (await self.agent.driver.guest_info(instance_id)).power_state
        except GuestNotFound:
            return None

    async def fake_inject(self, step: str, message: str = "injected failure",
                          times: int | None = 1) -> None:
        """Failure injection for tests and demos; only the fake driver has it."""
        inject = getattr(self.agent.driver, "inject", None)
        if inject is None:
            raise DriverError(f"The {self.agent.driver.name} driver has no failure injection.")
        inject(step, message, times)


class ComputeAgent:
    def __init__(self, settings: Settings, bus: Transport, host: str,
                 driver: VirtDriver | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.host = host
        self.driver = driver or make_driver(settings, host)
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reports = 0

    def background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        await self.driver.init_host(self.host)
        await self.bus.serve("compute", self.host, AgentEndpoint(self))
        await self.report()
        await self.reconcile()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"hb-{self.host}")

    async def report(self) -> None:
        """Heartbeat and inventory; a missed report is retried at the next interval."""
        timeout = self.settings.compute.report_interval
        try:
            await self.bus.call("conductor", "report_state",
                                {"host": self.host, "binary": BINARY, "topic": "compute"},
                                timeout=timeout)
            resources = await self.driver.host_resources()
            await self.bus.call("conductor", "update_resources",
                                {"host": self.host, "node": self.host,
                                 "resources": resources.to_dict()}, timeout=timeout)
            self.reports += 1
        except BusError as exc:
            log.warning("%s: report not delivered (%s); will retry", self.host, exc)

    async def reconcile(self) -> None:
        """Make the host agree with the database (S9, S13), once at start.

        A guest that belongs elsewhere now (evacuated, deleted while this host was
        down) is destroyed, never started: two running copies must not exist. Guests
        that should run but do not are started again when
        ``resume_guests_state_on_host_boot`` is set (a hard reboot, which rebuilds the
        definition from the database); otherwise their power state is reported and
        the server shows SHUTOFF.
        """
        try:
            expected = await self.bus.call("conductor", "guests_expected", {"host": self.host},
                                           timeout=self.settings.compute.rpc_timeout)
        except BusError as exc:
            log.warning("%s: could not reconcile at start: %s", self.host, exc)
            return
        wanted = {g["spec"]["id"]: g for g in expected["guests"]}
        keep = set(expected["keep"])
        present = set(await self.driver.list_guests())
        destroyed = []
        for guest_id in sorted(present - set(wanted) - keep):
            log.warning("%s: guest %s belongs to no instance on this host any more; "
                        "destroying it", self.host, guest_id)
            await self.driver.destroy(guest_id)
            destroyed.append(guest_id)
        observed: dict[str, int | None] = {}
        resume = self.settings.compute.resume_guests_state_on_host_boot
        for guest_id, g in wanted.items():
            try:
                power: int | None = (await self.driver.guest_info(guest_id)).power_state
            except GuestNotFound:
                power = None
            should_run = g["vm_state"] == "active" and g["task_state"] is None
            if should_run and power != 1 and resume:
                try:
                    await self.driver.reboot(GuestSpec.from_dict(g["spec"]), hard=True)
                    power = 1
                except DriverError as exc:
                    log.error("%s: could not restart %s: %s", self.host, guest_id, exc)
            observed[guest_id] = power
        await self._report_to_conductor("sync_power_states", {
            "host": self.host, "observed": observed, "destroyed": destroyed})

    def report_missing(self, guest_id: str, operation: str) -> None:
        """Tell the conductor a guest it asked about is not here (it records NOSTATE and a
        fault); in the background, so the caller gets its GuestNotFound at once."""
        self.background(self._report_to_conductor("guest_missing", {
            "host": self.host, "instance_id": guest_id, "operation": operation}))

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.compute.report_interval
        while True:
            await asyncio.sleep(interval)
            await self.report()

    async def build(self, spec: GuestSpec, request_id: str) -> None:
        ok, error, details, power_state = True, "", "", 1
        try:
            await self.driver.spawn(spec)
            power_state = (await self.driver.guest_info(spec.id)).power_state
        except DriverError as exc:
            ok, error = False, str(exc)
        except Exception as exc:  # a driver bug must still end the build
            log.exception("%s: spawn of %s failed", self.host, spec.id)
            ok, error, details = False, f"{type(exc).__name__}: {exc}", traceback.format_exc()
        await self._report_to_conductor("build_result", {
            "instance_id": spec.id, "host": self.host, "ok": ok, "error": error,
            "request_id": request_id, "power_state": power_state, "details": details})

    async def _report_to_conductor(self, method: str, args: dict[str, Any],
                                   attempts: int = 5) -> Any:
        """Deliver an outcome; retried, because losing it would leave a task_state stuck."""
        delay = 0.5
        for attempt in range(1, attempts + 1):
            try:
                return await self.bus.call("conductor", method, args,
                                           timeout=self.settings.compute.rpc_timeout)
            except BusError as exc:
                if attempt == attempts:
                    log.error("%s: could not report %s for %s: %s", self.host, method,
                              args.get("instance_id"), exc)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        return None

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            try:
                await self._heartbeat
            except asyncio.CancelledError:
                pass
        for task in list(self._tasks):
            task.cancel()
        await self.bus.unserve("compute", self.host)
        await self.driver.cleanup_host()
