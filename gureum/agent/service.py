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

from gureum.agent import images, messages
from gureum.bus import Admission, BusError, Transport
from gureum.config import Settings
from gureum.errors import ConfigError
from gureum.virt import make_driver
from gureum.virt.driver import (
    DriverError,
    GuestNotFound,
    GuestSpec,
    MigrationFailed,
    VirtDriver,
)

log = logging.getLogger("gureum.agent")

BINARY = "gureum-compute"

class AgentEndpoint:
    """What the bus reaches on this host (topic "compute", server = host): one method,
    ``run``, taking the typed messages of ``gureum/agent/messages.py``."""

    def __init__(self, agent: ComputeAgent) -> None:
        self.agent = agent

    async def run(self, version: Any = None, message: Any = None, args: Any = None) -> Any:
        """Check the call (version, type, fields), run it, return its result as JSON."""
        msg = self._with_images(messages.decode(version, message, args))
        handler = getattr(self, f"_{msg.name}", None)
        if handler is not None:
            return await handler(msg)
        return await self._driver_call(msg)

    def _with_images(self, msg: messages.Message[Any]) -> messages.Message[Any]:
        """Fill in where this host reads the images a spec names (see agent/images.py)."""
        spec = getattr(msg, "spec", None)
        if isinstance(spec, GuestSpec):
            changes: dict[str, Any] = {"spec": images.prepare(self.agent.settings, spec)}
            msg = dataclasses.replace(msg, **changes)
        if isinstance(msg, messages.Rescue):
            msg = dataclasses.replace(msg, rescue_image_path=images.rescue_image(
                self.agent.settings, msg.rescue_image_path))
        return msg

    async def _driver_call(self, msg: messages.Message[Any]) -> Any:
        """A message named after a VirtDriver method: its fields are the arguments."""
        kwargs = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
        try:
            result = await getattr(self.agent.driver, msg.name)(**kwargs)
        except GuestNotFound:
            spec = kwargs.get("spec")
            target = spec.id if isinstance(spec, GuestSpec) else kwargs.get("guest_id")
            if isinstance(target, str):
                self.agent.report_missing(target, msg.name)
            raise
        return messages.result_to_wire(result)

    async def _build(self, msg: messages.Build) -> None:
        # Awaited (the conductor casts it): the spawn holds its place in the bound.
        await self.agent.build(msg.spec, msg.request_id)

    async def _power_state(self, msg: messages.GetPowerState) -> int | None:
        try:
            return (await self.agent.driver.guest_info(msg.guest_id)).power_state
        except GuestNotFound:
            return None

    async def _ping(self, msg: messages.Ping) -> dict[str, Any]:
        return {"host": self.agent.host, "driver": self.agent.driver.name,
                "protocol": messages.VERSION_TEXT}

    async def _abort_migration(self, msg: messages.AbortMigration) -> None:
        """Abort a live migration in progress, or one still waiting for its turn (the
        live-migration bound): that one fails as soon as it starts."""
        await self.agent.driver.abort_migration(msg.guest_id)
        if self.agent.live_migration_waiting(msg.guest_id):
            self.agent.aborted_before_start.add(msg.guest_id)

    async def _live_migrate(self, msg: messages.LiveMigrate) -> Any:
        if msg.guest_id in self.agent.aborted_before_start:
            self.agent.aborted_before_start.discard(msg.guest_id)
            raise MigrationFailed(f"Live migration of {msg.guest_id} was aborted before it "
                                  f"started; the guest keeps running on {self.agent.host}.")
        return await self._driver_call(msg)  # what the hypervisor measured

    async def _fake_inject(self, msg: messages.FakeInject) -> None:
        """Failure injection for tests: only the fake driver, only in its test mode."""
        inject = getattr(self.agent.driver, "inject", None)
        if inject is None:
            raise DriverError(f"The {self.agent.driver.name} driver has no failure injection.")
        if not self.agent.settings.compute.fake_test_mode:
            raise messages.BadMessage("Failure injection is for tests only; it needs "
                                      "[compute] fake_test_mode = true on this host.")
        inject(msg.step, msg.message, msg.times)


def admission(settings: Settings) -> Admission:
    """The agent's bound on calls running at once, per lane (see messages.py)."""
    conf = settings.compute
    for name in ("max_concurrent_calls", "max_concurrent_live_migrations"):
        if getattr(conf, name) < 1:
            raise ConfigError(f"[compute] {name} must be at least 1, not "
                              f"{getattr(conf, name)}.")

    def lane_of(envelope: dict[str, Any]) -> str:
        args = envelope.get("args")
        name = args.get("message") if isinstance(args, dict) else None
        cls = messages.MESSAGES.get(name) if isinstance(name, str) else None
        return cls.lane if cls is not None else messages.CONTROL  # refused at once
    return Admission({messages.CONTROL: conf.max_concurrent_calls,
                      messages.OPERATION: conf.max_concurrent_calls,
                      messages.LIVE_MIGRATION: conf.max_concurrent_live_migrations},
                     lane_of)


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
        self.reconciled = False  # retried with the heartbeat until the conductor answers
        self.admission = admission(settings)
        self.aborted_before_start: set[str] = set()  # live migrations still waiting
        self.driver.migration_progress = self.migration_progress

    def background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        await self.driver.init_host(self.host)
        await self.bus.serve("compute", self.host, AgentEndpoint(self), self.admission)
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
            resources = (await self.driver.host_resources()).to_dict()
            resources["capabilities"] = self.driver.capability_report()
            await self.bus.call("conductor", "update_resources",
                                {"host": self.host, "node": self.host,
                                 "resources": resources}, timeout=timeout)
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
        present = set(await self.driver.list_guests())
        try:
            expected = await self.bus.call("conductor", "guests_expected",
                                           {"host": self.host, "present": sorted(present)},
                                           timeout=self.settings.compute.rpc_timeout)
        except BusError as exc:
            # Started before the conductor (each role its own process): tried again
            # with the next heartbeat.
            log.warning("%s: could not reconcile yet: %s", self.host, exc)
            return
        self.reconciled = True
        wanted = {g["spec"]["id"]: g for g in expected["guests"]}
        keep = set(expected["keep"])
        elsewhere: dict[str, str | None] = expected.get("elsewhere", {})
        destroyed = []
        for guest_id in sorted(present - set(wanted) - keep):
            # Its disks stay when the host it lives on now sees them too (shared storage).
            marker = elsewhere.get(guest_id)
            shared = bool(marker) and await self.driver.check_shared_storage(marker or "")
            log.warning("%s: guest %s belongs to no instance on this host any more; "
                        "destroying it%s", self.host, guest_id,
                        " (its disks are shared: kept)" if shared else "")
            await self.driver.destroy(guest_id, keep_disks=shared)
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
                    spec = images.prepare(self.settings, GuestSpec.from_dict(g["spec"]))
                    await self.driver.reboot(spec, hard=True)
                    power = 1
                except DriverError as exc:
                    log.error("%s: could not restart %s: %s", self.host, guest_id, exc)
            observed[guest_id] = power
        await self._report_to_conductor("sync_power_states", {
            "host": self.host, "observed": observed, "destroyed": destroyed})

    def live_migration_waiting(self, guest_id: str) -> bool:
        """Whether a live migration of the guest waits for its turn here."""
        for envelope in self.admission.waiting.get(messages.LIVE_MIGRATION, ()):
            call = envelope.get("args") or {}
            if (call.get("args") or {}).get("guest_id") == guest_id:
                return True
        return False

    def migration_progress(self, guest_id: str, figures: dict[str, Any]) -> None:
        """A live migration's figures so far, for its record (once: the next comes soon)."""
        self.background(self._report_to_conductor("live_migration_progress", {
            "host": self.host, "instance_id": guest_id, "figures": figures}, attempts=1))

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
            if not self.reconciled:
                try:
                    await self.reconcile()
                except Exception:  # the heartbeat must go on; tried again next time
                    log.exception("%s: reconcile failed", self.host)

    async def build(self, spec: GuestSpec, request_id: str) -> None:
        """Spawn, then report the outcome in the background: the report may lead the
        conductor to call this agent again (a guest deleted while spawning is
        destroyed), which must not wait for the place this build holds in the bound."""
        ok, error, details, power_state = True, "", "", 1
        try:
            await self.driver.spawn(spec)
            power_state = (await self.driver.guest_info(spec.id)).power_state
        except DriverError as exc:
            ok, error = False, str(exc)
        except Exception as exc:  # a driver bug must still end the build
            log.exception("%s: spawn of %s failed", self.host, spec.id)
            ok, error, details = False, f"{type(exc).__name__}: {exc}", traceback.format_exc()
        self.background(self._report_to_conductor("build_result", {
            "instance_id": spec.id, "host": self.host, "ok": ok, "error": error,
            "request_id": request_id, "power_state": power_state, "details": details}))

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
