"""The QEMU driver: real guests, one ``qemu-system-x86_64`` process each.

See ``gureum/virt/qemu/__init__.py`` for the host layout and the choices made
(power states, cache mode, guests outliving the agent).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from gureum.compute import states
from gureum.virt import network_data
from gureum.virt.driver import (
    ConsoleUnavailable,
    DriverError,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    InterfaceAttachFailed,
    PowerOffResult,
    PreflightFacts,
    PreflightFailed,
    SpawnFailed,
    VirtDriver,
    VncConsole,
)
from gureum.virt.qemu import cmdline, disks, domain, interfaces, process, vif, volumes
from gureum.virt.qemu.domain import GuestFiles
from gureum.virt.qemu.migration import MigrationOptions
from gureum.virt.qemu.monitor import Monitor, MonitorError, MonitorGone
from gureum.virt.qemu.moving import Mover

log = logging.getLogger("gureum.virt.qemu")
nics = vif  # the VIF registry, where a parameter is named ``vif`` (the contract's)

MARKER_PREFIX = ".gureum-shared-"
_MARKER = re.compile(r"[0-9a-f]{32}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
GiB = 1 << 30

# QMP query-status → power state. "inmigrate" is a QEMU waiting for incoming state.
_STATUS = {
    "running": states.RUNNING, "paused": states.POWER_PAUSED,
    "suspended": states.POWER_PAUSED, "debug": states.POWER_PAUSED,
    "prelaunch": states.POWER_PAUSED, "inmigrate": states.POWER_PAUSED,
    "postmigrate": states.POWER_PAUSED, "finish-migrate": states.POWER_PAUSED,
    "restore-vm": states.POWER_PAUSED, "save-vm": states.POWER_PAUSED,
    "io-error": states.POWER_PAUSED, "colo": states.POWER_PAUSED,
    "watchdog": states.CRASHED, "guest-panicked": states.CRASHED,
    "internal-error": states.CRASHED, "shutdown": states.SHUTDOWN,
}


def direct_io_works(directory: Path) -> bool:
    """Whether files in ``directory`` can be opened with O_DIRECT (cache=none needs it;
    tmpfs, for one, refuses)."""
    probe = directory / f".odirect-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_RDWR | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    else:
        os.close(fd)
        return True
    finally:
        probe.unlink(missing_ok=True)


class QemuDriver(VirtDriver):
    name = "qemu"
    capabilities: ClassVar[dict[str, bool]] = {
        "supports_pause": True, "supports_suspend": True, "supports_rescue": True,
        "supports_snapshot": True, "supports_console_output": True,
        # Moving guests: virt/qemu/moving.py (transfer channel, QMP live migration).
        "supports_resize": True, "supports_live_migration": True,
        "supports_block_migration": True, "supports_evacuate": True,
        "supports_set_admin_password": False, "supports_trigger_crash_dump": False,
        "supports_vnc_console": True,
    }

    def __init__(self, state_dir: str | Path, instances_dir: str | Path | None = None, *,
                 virt_type: str = "qemu", machine: str = "q35",
                 binary: str = "qemu-system-x86_64", vnc_listen: str = "127.0.0.1",
                 image_cache_max_age: float = 86400.0,
                 image_cache_interval: float = 2400.0,
                 soft_reboot_timeout: float = 120.0,
                 boot_retry_interval: float = 2.0,
                 vif_mechanism: str = "auto",
                 migration: MigrationOptions | None = None,
                 volume_detach_timeout: float = 30.0,
                 volume_swap_timeout: float = 600.0) -> None:
        if virt_type not in ("qemu", "kvm"):
            raise DriverError(f"virt_type must be 'qemu' (TCG) or 'kvm', not {virt_type!r}.")
        self.state_dir = Path(state_dir)
        self.instances_dir = (Path(instances_dir) if instances_dir is not None
                              else self.state_dir / "instances")
        self.virt_type = virt_type
        self.machine = machine
        self.binary_name = binary
        self.binary = ""
        self.vnc_listen = vnc_listen
        self.image_cache_max_age = image_cache_max_age
        self.image_cache_interval = image_cache_interval
        self.soft_reboot_timeout = soft_reboot_timeout
        self.boot_retry_interval = boot_retry_interval
        self.cache_mode = "none"
        self.host = ""
        self.marker: str | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitor_locks: dict[str, asyncio.Lock] = {}
        self._cleaner: asyncio.Task[None] | None = None
        self.vif_mechanism = vif_mechanism
        self.vifs = vif.Vifs("", "user")  # this host's, once init_host names it
        self.mover = Mover(self, migration)  # moving guests between hosts
        self.volume_detach_timeout = volume_detach_timeout
        self.volume_swap_timeout = volume_swap_timeout  # the mirror's copy of the disk
        self._direct_io: dict[Path, bool] = {}  # volume directories: O_DIRECT works?

    def _vifs(self, host: str) -> vif.Vifs:
        """This host's VIF drivers ("auto": a Linux bridge when it can make taps)."""
        if self.vif_mechanism == "bridge" and not vif.BridgeVif.usable():
            raise DriverError("vif_mechanism = bridge needs root, the `ip` tool (Debian's "
                              "iproute2) and /dev/net/tun; use \"user\" or \"auto\".")
        try:
            return vif.Vifs(host, None if self.vif_mechanism == "auto" else
                            self.vif_mechanism)
        except vif.VifError as exc:
            raise DriverError(str(exc)) from exc

    # -- files and processes ---------------------------------------------------------
    def files(self, guest_id: str) -> GuestFiles:
        if not _ID.fullmatch(guest_id):
            raise GuestNotFound(f"Guest {guest_id!r} is not on host {self.host}.")
        return GuestFiles(guest_id, self.state_dir / "guests" / guest_id,
                          self.instances_dir / guest_id)

    def monitor(self, guest_id: str) -> Monitor:
        """The guest's QMP monitor (this driver's calls on one guest take turns)."""
        lock = self._monitor_locks.setdefault(guest_id, asyncio.Lock())
        return Monitor(self.files(guest_id).qmp, guest_id, lock=lock)

    def _lock(self, guest_id: str) -> asyncio.Lock:
        return self._locks.setdefault(guest_id, asyncio.Lock())

    def _domain(self, guest_id: str) -> dict[str, Any]:
        """The guest's definition; GuestNotFound when it is not defined here."""
        found = domain.load(self.files(guest_id))
        if found is None or found.get("incoming"):
            raise GuestNotFound(f"Guest {guest_id} is not on host {self.host}.")
        return found

    def process_id(self, guest_id: str) -> int | None:
        """The pid of the guest's running QEMU on this host, or None."""
        return self._pid(guest_id)

    def _pid(self, guest_id: str) -> int | None:
        return process.find(self.files(guest_id).pidfile, cmdline.qemu_uuid(guest_id))

    def _forget_process(self, files: GuestFiles) -> None:
        """Remove what a QEMU that is gone left behind (its socket, its pid file)."""
        files.qmp.unlink(missing_ok=True)
        files.pidfile.unlink(missing_ok=True)

    async def _stop_process(self, guest_id: str) -> None:
        """Stop the guest's QEMU at once (QMP quit, then signals)."""
        pid = self._pid(guest_id)
        if pid is not None:
            with contextlib.suppress(DriverError):
                await self.monitor(guest_id).execute("quit", timeout=5)
            if not await process.wait_gone(pid, cmdline.qemu_uuid(guest_id), 5):
                await process.kill(pid, cmdline.qemu_uuid(guest_id))
        self._forget_process(self.files(guest_id))

    def _vnc_taken(self, except_id: str) -> set[int]:
        taken: set[int] = set()
        for path in (self.state_dir / "guests").glob("*/domain.json"):
            if path.parent.name == except_id:
                continue
            found = domain.load(self.files(path.parent.name))
            if found and found.get("vnc") and self._pid(path.parent.name) is not None:
                taken.add(int(found["vnc"]["display"]))
        return taken

    async def _launch(self, dom: dict[str, Any], incoming: str | None = None) -> None:
        """Start the guest's QEMU from its definition (a free VNC display is chosen, and
        chosen again when another process took it first)."""
        files = self.files(dom["uuid"])
        files.run.mkdir(parents=True, exist_ok=True)
        self._forget_process(files)
        start = 0
        for attempt in range(5):
            vnc = dom.get("vnc")
            if not vnc or not domain.port_free(vnc["listen"], int(vnc["port"])) or \
                    int(vnc["display"]) in self._vnc_taken(dom["uuid"]):
                try:
                    dom["vnc"] = domain.pick_vnc(self.vnc_listen,
                                                 self._vnc_taken(dom["uuid"]), start)
                except OSError as exc:
                    raise DriverError(str(exc)) from exc
            domain.save(files, dom)
            try:
                await process.launch(cmdline.argv(dom, self.binary, incoming), files.run,
                                     files.pidfile)
                return
            except DriverError as exc:
                if "Address already in use" not in str(exc) or attempt == 4:
                    raise
                start = int(dom["vnc"]["display"]) + 1
                dom["vnc"] = None

    async def _cache_boot_files(self, spec: GuestSpec) -> dict[str, str | None]:
        """Kernel and ramdisk images (image properties kernel_id/ramdisk_id, files the
        agent fetched: spec.extra kernel_path/ramdisk_path) in the image cache."""
        props = spec.image_properties or {}
        boot: dict[str, str | None] = {"kernel": None, "initrd": None, "cmdline": None}
        for key, prop, extra in (("kernel", "kernel_id", "kernel_path"),
                                 ("initrd", "ramdisk_id", "ramdisk_path")):
            image_id = props.get(prop)
            if image_id:
                base, _ = await disks.cache_image(self.instances_dir, str(image_id),
                                                  str(spec.extra.get(extra) or ""))
                boot[key] = str(base)
        if boot["kernel"]:
            boot["cmdline"] = str(props.get("os_command_line") or domain.DEFAULT_CMDLINE)
        return boot

    async def _define(self, spec: GuestSpec, rescue: bool = False,
                      keep: dict[str, Any] | None = None,
                      mark: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build and save the definition from the spec (kernel/ramdisk cached); ``mark``
        is saved with it (an incoming live migration's)."""
        files = self.files(spec.id)
        boot = await self._cache_boot_files(spec)
        try:  # the host side of each port (idempotent: every definition plugs again)
            nics = await asyncio.to_thread(self.vifs.plug_all, spec.id, spec.network_info)
        except vif.VifError as exc:
            raise DriverError(f"Plugging the NICs of {spec.id} on {self.host} failed: "
                              f"{exc}") from exc
        vols = [v for b in spec.block_devices
                if (v := volumes.entry(b, self._volume_direct(b))) is not None]
        dom = domain.build(spec, files, virt_type=self.virt_type, machine=self.machine,
                           cache=self.cache_mode, boot=boot, rescue_base=rescue,
                           vnc=(keep or {}).get("vnc"), nics=nics, volumes=vols)
        dom.update(mark or {})
        before = (domain.load(files) or {}).get("nics", [])
        domain.save(files, dom)
        await asyncio.to_thread(vif.unplug_stale, spec.id, before, nics, self.host)
        return dom

    def _volume_direct(self, block_device: dict[str, Any]) -> bool:
        """Whether a volume's file can be opened with O_DIRECT (cache.direct)."""
        path = ((block_device.get("connection_info") or {}).get("data") or {}).get("path")
        if not path:
            return True
        where = Path(str(path)).parent
        if where not in self._direct_io:
            self._direct_io[where] = where.is_dir() and direct_io_works(where)
        return self._direct_io[where]

    async def _make_disks(self, spec: GuestSpec) -> None:
        files = self.files(spec.id)
        files.data.mkdir(parents=True, exist_ok=True)
        # A guest booting from a volume has no local root disk: the volume is its vda.
        if not files.disk.exists() and not spec.boots_from_volume:
            base: Path | None = None
            fmt = "raw"
            if spec.image_id:
                base, fmt = await disks.cache_image(self.instances_dir, spec.image_id,
                                                    spec.image_path)
            part = files.disk.with_name(".disk.part")
            await disks.create_overlay(part, base, fmt, spec.root_gb)
            os.replace(part, files.disk)
        await self._make_config_drive(spec)

    async def _make_config_drive(self, spec: GuestSpec) -> None:
        """The config drive, written anew from the spec (at every spawn, start, hard
        reboot and move, as Nova's: its network_data.json says which ports the guest
        has now, after interfaces were attached or detached)."""
        if spec.config_drive:
            await disks.make_config_drive(self.files(spec.id).config_drive,
                                          self._meta_data(spec), _decoded(spec.user_data),
                                          network_data.network_data(spec.network_info))

    @staticmethod
    def _meta_data(spec: GuestSpec) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "uuid": spec.id, "name": spec.hostname or spec.name,
            "hostname": spec.hostname or spec.name, "availability_zone": "nova",
            "launch_index": 0, "meta": dict(spec.metadata), "files": [],
            # Device role tagging (Nova's meta_data.json "devices"): each tagged NIC by
            # its MAC. Its PCI address is the firmware's to give (behind a root port).
            "devices": [{"type": "nic", "bus": "pci", "mac": str(p["mac_address"]),
                         "tags": [str(p["tag"])]}
                        for p in spec.network_info if p.get("tag") and p.get("mac_address")],
        }
        if spec.key_data:
            meta["public_keys"] = {"default": spec.key_data}
        return meta

    def _power_state(self, guest_id: str, status: str | None) -> int:
        if status is None:
            files = self.files(guest_id)
            return states.POWER_SUSPENDED if files.suspend_state.exists() else states.SHUTDOWN
        return _STATUS.get(status, states.NOSTATE)

    async def _status(self, guest_id: str) -> str | None:
        """QEMU's run status of the guest, None when no QEMU runs for it."""
        if self._pid(guest_id) is None:
            return None
        try:
            result = await self.monitor(guest_id).execute("query-status")
        except MonitorGone:
            return None if self._pid(guest_id) is None else "unknown"
        return str(result["status"]) if isinstance(result, dict) else "unknown"

    async def _running_pid(self, guest_id: str) -> int:
        self._domain(guest_id)
        pid = self._pid(guest_id)
        if pid is None:
            raise DriverError(f"Guest {guest_id} is not running on host {self.host}.")
        return pid

    async def _wait_status(self, guest_id: str, wanted: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status = await self._status(guest_id)
            if status in wanted:
                return status or ""
            if status is None:
                raise DriverError(f"The QEMU of guest {guest_id} exited.")
            if time.monotonic() >= deadline:
                raise DriverError(f"Guest {guest_id} stayed {status!r} for {timeout:g}s "
                                  f"(expected {' or '.join(sorted(wanted))}).")
            await asyncio.sleep(0.1)

    # -- the host --------------------------------------------------------------------
    async def init_host(self, host: str) -> None:
        self.host = host
        self.vifs = self._vifs(host)
        self.binary = process.find_binary(self.binary_name)
        disks.qemu_img()
        (self.state_dir / "guests").mkdir(parents=True, exist_ok=True)
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        self.marker = _write_marker(self.state_dir, self.instances_dir)
        self.cache_mode = "none" if direct_io_works(self.instances_dir) else "writeback"
        if self.cache_mode != "none":
            log.warning("%s: %s does not support O_DIRECT; guests' disks use "
                        "cache=writeback (not safe for live migration on shared storage)",
                        host, self.instances_dir)
        # QEMU kept running while the agent was away: find its guests again.
        for guest_id in await self.list_guests():
            files = self.files(guest_id)
            if self._pid(guest_id) is None:
                self._forget_process(files)  # stays SHUTDOWN (or SUSPENDED)
                continue
            try:
                await self.monitor(guest_id).execute("query-status")
            except DriverError as exc:
                log.warning("%s: guest %s runs but its monitor does not answer: %s",
                            host, guest_id, exc)
        await self.mover.start()  # guests that arrived by live migration meanwhile
        if self.image_cache_interval > 0 and (self._cleaner is None or self._cleaner.done()):
            self._cleaner = asyncio.get_running_loop().create_task(self._clean_loop())

    async def cleanup_host(self) -> None:
        await self.mover.close()
        if self._cleaner is not None:
            self._cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleaner
            self._cleaner = None

    async def _clean_loop(self) -> None:
        while True:
            await asyncio.sleep(self.image_cache_interval)
            await self.clean_image_cache()

    async def clean_image_cache(self) -> list[str]:
        """Remove cached bases no guest used for image_cache_max_age seconds (S14).

        A base a disk is made on is in use as long as that disk exists (any host's, on
        shared storage). Kernels and ramdisks are no disk's base: this host marks those
        its guests boot as used now (their mtime), so a host sharing ``instances/``
        does not remove them either while this host's cleaner runs.
        """
        for path in await self.list_guests():
            dom = domain.load(self.files(path)) or {}
            for key in ("kernel", "initrd"):
                used = (dom.get("boot") or {}).get(key)
                if used:
                    with contextlib.suppress(OSError):
                        os.utime(used)
        try:
            removed = await asyncio.get_running_loop().run_in_executor(
                None, disks.clean_image_cache, self.instances_dir, self.image_cache_max_age)
        except OSError as exc:
            log.warning("%s: image cache cleaning failed: %s", self.host, exc)
            return []
        for image_id in removed:
            log.info("%s: removed unused cached image %s", self.host, image_id)
        return removed

    async def host_resources(self) -> HostResources:
        usage = shutil.disk_usage(self.instances_dir)
        return HostResources(
            vcpus=os.cpu_count() or 1, memory_mb=_host_memory_mb(),
            local_gb=max(1, usage.total // GiB), hypervisor_type="QEMU",
            hypervisor_version=await _qemu_version(self.binary or self.binary_name),
            host_ip="127.0.0.1",
            cpu_info={"arch": "x86_64", "model": "max" if self.virt_type == "qemu" else "host",
                      "vendor": "QEMU", "virt_type": self.virt_type},
            shared_storage_id=self.marker, vif=self.vifs.report())

    async def list_guests(self) -> list[str]:
        await self.mover.receive()  # live-migrated guests whose state has arrived
        found = []
        for path in sorted((self.state_dir / "guests").glob("*/domain.json")):
            dom = domain.load(self.files(path.parent.name))
            if dom is not None and not dom.get("incoming"):
                found.append(path.parent.name)
        return found

    async def guest_info(self, guest_id: str) -> GuestInfo:
        await self.mover.receive(guest_id)
        dom = self._domain(guest_id)
        power = self._power_state(guest_id, await self._status(guest_id))
        return GuestInfo(guest_id, power, int(dom["vcpus"]), int(dom["memory_mb"]))

    # -- a guest's life ----------------------------------------------------------------
    async def spawn(self, spec: GuestSpec) -> None:
        files = self.files(spec.id)
        async with self._lock(spec.id):
            if domain.load(files) is not None:
                raise SpawnFailed(f"Guest {spec.id} is already defined on host {self.host}.")
            had_data = files.data.exists()
            try:
                await self._make_disks(spec)
                dom = await self._define(spec)
                await self._launch(dom)
            except BaseException as exc:
                await self._undo_spawn(files, had_data)
                if isinstance(exc, DriverError | OSError | ValueError):
                    if not isinstance(exc, DriverError):
                        log.exception("%s: spawn of %s failed", self.host, spec.id)
                    raise SpawnFailed(f"Spawning {spec.id} on {self.host} failed: "
                                      f"{_describe(exc)}") from exc
                raise

    async def _undo_spawn(self, files: GuestFiles, had_data: bool) -> None:
        with contextlib.suppress(DriverError):
            await self._stop_process(files.guest_id)
        plugged = (domain.load(files) or {}).get("nics", [])
        await asyncio.to_thread(vif.unplug_all, files.guest_id, plugged, self.host)
        shutil.rmtree(files.run, ignore_errors=True)
        if not had_data:
            shutil.rmtree(files.data, ignore_errors=True)

    async def destroy(self, guest_id: str, keep_disks: bool = False) -> None:
        files = self.files(guest_id)
        dom = domain.load(files)
        await self._stop_process(guest_id)
        await asyncio.to_thread(vif.unplug_all, guest_id, (dom or {}).get("nics", []),
                                self.host)
        shutil.rmtree(files.run, ignore_errors=True)
        if keep_disks:
            files.rescue_disk.unlink(missing_ok=True)
            files.suspend_state.unlink(missing_ok=True)
        else:
            shutil.rmtree(files.data, ignore_errors=True)
        self._locks.pop(guest_id, None)
        self._monitor_locks.pop(guest_id, None)

    async def power_off(self, guest_id: str, timeout: float, retry_interval: float
                        ) -> PowerOffResult:
        self._domain(guest_id)
        async with self._lock(guest_id):
            return await self._power_off(guest_id, timeout, retry_interval)

    async def _power_off(self, guest_id: str, timeout: float, retry_interval: float
                         ) -> PowerOffResult:
        started = time.monotonic()
        pid = self._pid(guest_id)
        if pid is None:
            self._forget_process(self.files(guest_id))
            return PowerOffResult(True, 0.0)
        if timeout > 0:
            deadline = started + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    await self.monitor(guest_id).execute("system_powerdown")
                except MonitorGone:
                    pass  # it went away already
                wait = min(left, retry_interval) if retry_interval > 0 else left
                if await process.wait_gone(pid, cmdline.qemu_uuid(guest_id), wait):
                    self._forget_process(self.files(guest_id))
                    return PowerOffResult(True, time.monotonic() - started)
        log.info("%s: guest %s did not power off within %gs; forcing it off", self.host,
                 guest_id, timeout)
        await self._stop_process(guest_id)
        return PowerOffResult(False, time.monotonic() - started)

    async def power_on(self, spec: GuestSpec) -> None:
        old = self._domain(spec.id)
        async with self._lock(spec.id):
            if self._pid(spec.id) is not None:
                return
            if self.files(spec.id).suspend_state.exists():
                await self._resume(spec.id)
                return
            await self._make_config_drive(spec)
            dom = await self._define(spec, rescue=bool(old.get("rescue")), keep=old)
            await self._launch(dom)

    async def reboot(self, spec: GuestSpec, hard: bool) -> None:
        files = self.files(spec.id)
        async with self._lock(spec.id):
            old = domain.load(files)
            if old is None or old.get("incoming"):
                if not hard:
                    raise GuestNotFound(f"Guest {spec.id} is not on host {self.host}.")
                if not (files.disk.is_file() or (spec.boots_from_volume
                                                 and files.data.is_dir())):
                    raise GuestNotFound(f"Guest {spec.id} is not on host {self.host}, nor "
                                        "are its disks.")
                old = None
            if hard:
                await self._stop_process(spec.id)
                files.suspend_state.unlink(missing_ok=True)
            elif self._pid(spec.id) is not None:
                # Soft: the guest shuts itself down (ACPI), then starts again; a guest
                # that does not within the timeout is forced (Nova falls back to hard).
                await self._power_off(spec.id, self.soft_reboot_timeout,
                                      self.boot_retry_interval)
            if old is not None and old.get("rescue") and not hard:
                dom = old
            else:
                files.rescue_disk.unlink(missing_ok=True)
                if hard:
                    await self._make_config_drive(spec)
                dom = await self._define(spec, keep=old)
            await self._launch(dom)

    async def pause(self, guest_id: str) -> None:
        async with self._lock(guest_id):
            await self._running_pid(guest_id)
            await self.monitor(guest_id).execute("stop")

    async def unpause(self, guest_id: str) -> None:
        async with self._lock(guest_id):
            await self._running_pid(guest_id)
            await self.monitor(guest_id).execute("cont")

    async def suspend(self, guest_id: str) -> None:
        """The guest's memory goes to ``suspend.state`` (a QEMU migration into a file),
        then its QEMU exits; SUSPENDED is that file with no process."""
        async with self._lock(guest_id):
            pid = await self._running_pid(guest_id)
            files = self.files(guest_id)
            part = files.suspend_state.with_name(".suspend.state.part")
            mon = self.monitor(guest_id)
            try:
                async with mon.session() as s:
                    await s.execute("stop")
                    await s.execute("migrate-set-parameters",
                                    {"max-bandwidth": 10 << 30})
                    await s.execute("migrate", {"uri": cmdline.exec_uri("cat >",
                                                                        str(part))})
                    await _wait_migration(s, guest_id, timeout=300)
                    await s.execute("quit")
            except MonitorGone:
                pass
            except DriverError:
                part.unlink(missing_ok=True)
                with contextlib.suppress(DriverError):
                    await mon.execute("cont")
                raise
            if not await process.wait_gone(pid, cmdline.qemu_uuid(guest_id), 10):
                await process.kill(pid, cmdline.qemu_uuid(guest_id))
            self._forget_process(files)
            os.replace(part, files.suspend_state)

    async def resume(self, spec: GuestSpec) -> None:
        self._domain(spec.id)
        async with self._lock(spec.id):
            if self._pid(spec.id) is not None:
                await self.monitor(spec.id).execute("cont")
                return
            if not self.files(spec.id).suspend_state.exists():
                raise DriverError(f"Guest {spec.id} is not suspended on host {self.host}.")
            await self._resume(spec.id)

    async def _resume(self, guest_id: str) -> None:
        """Start QEMU on the saved definition, loading the memory from suspend.state."""
        files = self.files(guest_id)
        dom = self._domain(guest_id)
        await self._launch(dom, incoming=cmdline.exec_uri("cat", str(files.suspend_state)))
        try:
            # The memory was saved from a stopped guest: it arrives paused.
            if await self._wait_status(guest_id, {"running", "paused"}, 300) == "paused":
                await self.monitor(guest_id).execute("cont")
        except DriverError:
            await self._stop_process(guest_id)
            raise
        files.suspend_state.unlink(missing_ok=True)

    # -- volumes: gureum/virt/qemu/volumes.py ------------------------------------------
    async def attach_volume(self, guest_id: str, connection_info: dict[str, Any],
                            device_name: str) -> None:
        await self.mover.receive(guest_id)  # just arrived by live migration: ours now
        async with self._lock(guest_id):
            await volumes.attach(self, guest_id, connection_info, device_name)

    async def detach_volume(self, guest_id: str, volume_id: str) -> None:
        await self.mover.receive(guest_id)
        async with self._lock(guest_id):
            await volumes.detach(self, guest_id, volume_id)

    async def extend_volume(self, guest_id: str, volume_id: str, new_size: int) -> None:
        await self.mover.receive(guest_id)
        async with self._lock(guest_id):
            await volumes.extend(self, guest_id, volume_id, new_size)

    async def swap_volume(self, guest_id: str, old_volume_id: str,
                          new_connection_info: dict[str, Any]) -> None:
        await self.mover.receive(guest_id)
        async with self._lock(guest_id):
            await volumes.swap(self, guest_id, old_volume_id, new_connection_info)

    # -- interfaces: gureum/virt/qemu/interfaces.py -----------------------------------
    async def attach_interface(self, guest_id: str, vif: dict[str, Any]) -> None:
        await self.mover.receive(guest_id)  # just arrived by live migration: ours now
        async with self._lock(guest_id):
            dom = self._domain(guest_id)
            files = self.files(guest_id)
            present = list(dom.get("nics") or [])
            port_id = vif.get("port_id")
            if any(n.get("port_id") == port_id for n in present):
                return
            if files.suspend_state.exists():
                raise InterfaceAttachFailed(f"Guest {guest_id} is suspended: its saved state "
                                            "cannot take a new NIC.")
            # A slot is taken by a NIC on its root port, and (its netdev id) by one on the
            # root bus with that number.
            taken = {n.get("slot") for n in present} | {
                int(str(n.get("id"))[3:]) for n in present
                if str(n.get("id", "")).startswith("net") and str(n.get("id"))[3:].isdigit()}
            slot = nics.slot_of(vif)
            if slot is None or slot in taken:
                slot = next((i for i in range(nics.NIC_PORTS) if i not in taken), None)
            if slot is None:
                raise InterfaceAttachFailed(f"Guest {guest_id} has no free NIC slot (at most "
                                            f"{nics.NIC_PORTS}).")
            try:
                nic = await asyncio.to_thread(self.vifs.plug, guest_id,
                                              {**vif, "device_index": slot}, slot)
            except (nics.VifError, OSError) as exc:
                raise InterfaceAttachFailed(f"Plugging port {port_id} on {self.host} "
                                            f"failed: {exc}") from exc
            try:
                if self._pid(guest_id) is not None:
                    await interfaces.hot_plug(self.monitor(guest_id), nic)
            except BaseException:
                await asyncio.to_thread(nics.unplug_all, guest_id, [nic], self.host)
                raise
            dom["nics"] = [*present, nic]
            spec = dict(dom.get("spec") or {})
            spec["network_info"] = [*(p for p in spec.get("network_info") or []
                                      if p.get("port_id") != port_id),
                                    {**vif, "device_index": slot}]
            dom["spec"] = spec
            domain.save(files, dom)

    async def detach_interface(self, guest_id: str, port_id: str) -> None:
        await self.mover.receive(guest_id)  # just arrived by live migration: ours now
        async with self._lock(guest_id):
            dom = self._domain(guest_id)
            files = self.files(guest_id)
            nic = next((n for n in dom.get("nics") or [] if n.get("port_id") == port_id),
                       None)
            if nic is None:
                return
            if files.suspend_state.exists():
                raise InterfaceAttachFailed(f"Guest {guest_id} is suspended: its saved state "
                                            "holds the NIC.")
            if self._pid(guest_id) is not None:
                await interfaces.hot_unplug(self.monitor(guest_id), nic,
                                            self.volume_detach_timeout)
            dom["nics"] = [n for n in dom["nics"] if n.get("port_id") != port_id]
            spec = dict(dom.get("spec") or {})
            spec["network_info"] = [p for p in spec.get("network_info") or []
                                    if p.get("port_id") != port_id]
            dom["spec"] = spec
            domain.save(files, dom)
            await asyncio.to_thread(vif.unplug_all, guest_id, [nic], self.host)

    async def plugged_nics(self, guest_id: str) -> dict[str, str]:
        """The running guest's NICs as QEMU has them: device id → MAC (for tests)."""
        return await interfaces.plugged(self.monitor(guest_id))

    async def get_vnc_console(self, guest_id: str) -> VncConsole:
        """QEMU's own VNC websocket (``-vnc <listen>:<display>,websocket=<port>``), as the
        definition recorded it when the running process was started."""
        vnc = self._domain(guest_id).get("vnc")
        if not vnc or self._pid(guest_id) is None:
            raise ConsoleUnavailable(f"Guest {guest_id} is not running on host {self.host}: "
                                     "it has no console now.")
        listen = str(vnc["listen"])
        # A wildcard listens on every address; loopback is one of them.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen, listen)
        return VncConsole(host, int(vnc["websocket"]))

    async def console_output(self, guest_id: str, tail: int | None = None) -> str:
        self._domain(guest_id)
        path = self.files(guest_id).console
        try:
            with path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - (1 << 20)))  # the last MiB at most
                data = fh.read()
        except FileNotFoundError:
            return ""
        text = data.decode("utf-8", errors="replace")
        if tail:
            text = "".join(text.splitlines(keepends=True)[-tail:])
        return text

    async def snapshot(self, guest_id: str, target_path: str) -> int:
        """qemu-img convert of the root disk; a running guest is paused meanwhile (QEMU
        flushes its disks when it stops the vCPUs), so the copy is consistent."""
        async with self._lock(guest_id):
            self._domain(guest_id)
            files = self.files(guest_id)
            target = Path(target_path)
            part = target.with_name(f".{target.name}.part")
            paused = False
            status = await self._status(guest_id)
            try:
                if status == "running":
                    await self.monitor(guest_id).execute("stop")
                    paused = True
                await disks.run(disks.qemu_img(), "convert", "-U", "-f", "qcow2", "-O",
                                "qcow2", str(files.disk), str(part))
                os.replace(part, target)
            finally:
                part.unlink(missing_ok=True)
                if paused:
                    with contextlib.suppress(MonitorGone):
                        await self.monitor(guest_id).execute("cont")
            return target.stat().st_size

    async def rescue(self, spec: GuestSpec, rescue_image_path: str) -> None:
        """The rescue image (or the guest's own image when none is given) boots from an
        overlay ``disk.rescue``; the guest's disk is attached as second disk."""
        old = self._domain(spec.id)
        files = self.files(spec.id)
        async with self._lock(spec.id):
            await self._stop_process(spec.id)
            files.rescue_disk.unlink(missing_ok=True)
            base: Path | None = None
            fmt = "raw"
            if rescue_image_path:
                image_id = f"rescue-{_file_id(rescue_image_path)}"
                base, fmt = await disks.cache_image(self.instances_dir, image_id,
                                                    rescue_image_path)
            elif spec.image_id:
                base, fmt = await disks.cache_image(self.instances_dir, spec.image_id,
                                                    spec.image_path)
            await disks.create_overlay(files.rescue_disk, base, fmt, spec.root_gb)
            dom = await self._define(spec, rescue=True, keep=old)
            await self._launch(dom)

    async def unrescue(self, spec: GuestSpec) -> None:
        old = self._domain(spec.id)
        files = self.files(spec.id)
        async with self._lock(spec.id):
            await self._stop_process(spec.id)
            files.rescue_disk.unlink(missing_ok=True)
            dom = await self._define(spec, keep=old)
            await self._launch(dom)

    # -- shared storage (S3): marker files, as the fake driver does --------------------
    async def check_shared_storage(self, marker: str) -> bool:
        if not _MARKER.fullmatch(marker):
            return False
        return (self.instances_dir / f"{MARKER_PREFIX}{marker}").is_file()

    async def preflight(self, spec: GuestSpec, source_marker: str | None = None
                        ) -> PreflightFacts:
        usage = shutil.disk_usage(self.instances_dir)
        if spec.root_gb * GiB > usage.total:
            raise PreflightFailed(f"Host {self.host} has {usage.total // GiB} GB of disk; "
                                  f"the guest needs {spec.root_gb} GB.")
        shared = bool(source_marker) and await self.check_shared_storage(source_marker or "")
        return PreflightFacts(self.host, shared)

    # -- moving guests between hosts: virt/qemu/moving.py -------------------------------
    async def export_disks(self, guest_id: str) -> list[dict[str, Any]]:
        return await self.mover.export_disks(guest_id)

    async def import_disks(self, spec: GuestSpec, disks: list[dict[str, Any]],
                           source: str) -> None:
        await self.mover.import_disks(spec, disks, source)

    async def finish_migration(self, spec: GuestSpec, resize_disk: bool,
                               power_on: bool) -> None:
        await self.mover.finish_migration(spec, resize_disk, power_on)

    async def live_migrate(self, guest_id: str, dest_uri: str, block_migration: bool
                           ) -> dict[str, Any]:
        return await self.mover.live_migrate(guest_id, dest_uri, block_migration)

    async def abort_migration(self, guest_id: str) -> None:
        await self.mover.abort_migration(guest_id)

    async def force_complete_migration(self, guest_id: str) -> None:
        await self.mover.force_complete_migration(guest_id)

    async def prepare_incoming(self, spec: GuestSpec, block_migration: bool) -> str:
        return await self.mover.prepare_incoming(spec, block_migration)

    async def abort_incoming(self, guest_id: str) -> None:
        await self.mover.abort_incoming(guest_id)


async def _wait_migration(session: Any, guest_id: str, timeout: float) -> None:
    """Wait for an outgoing migration (a suspend's save) to complete."""
    deadline = time.monotonic() + timeout
    while True:
        info = await session.execute("query-migrate")
        status = info.get("status") if isinstance(info, dict) else None
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise DriverError(f"Saving the memory of {guest_id} failed: "
                              f"{info.get('error-desc', status)}")
        if time.monotonic() >= deadline:
            with contextlib.suppress(MonitorError):
                await session.execute("migrate_cancel")
            raise DriverError(f"Saving the memory of {guest_id} took more than "
                              f"{timeout:g}s.")
        await asyncio.sleep(0.05)


def _describe(exc: BaseException) -> str:
    """An exception as an operator reads it (some have no message of their own)."""
    text = str(exc)
    return text if isinstance(exc, DriverError) and text else f"{type(exc).__name__}: {text}"


def _decoded(user_data: str | None) -> str | None:
    """User data as the API keeps it (base64) → the text the guest reads."""
    if user_data is None:
        return None
    try:
        return base64.b64decode(user_data, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return user_data


def _file_id(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_dev:x}-{st.st_ino:x}-{int(st.st_mtime)}"


def _write_marker(state_dir: Path, instances_dir: Path) -> str:
    """This host's marker in its instances directory (the id is kept in state_dir, so it
    stays the same across restarts): hosts that see it share the directory (S3)."""
    keep = state_dir / "storage-marker"
    try:
        marker = keep.read_text().strip()
    except FileNotFoundError:
        marker = ""
    if not _MARKER.fullmatch(marker):
        marker = uuid.uuid4().hex
        state_dir.mkdir(parents=True, exist_ok=True)
        keep.write_text(marker + "\n")
    (instances_dir / f"{MARKER_PREFIX}{marker}").write_text(
        f"gureum shared storage marker of the host whose state is in {state_dir}\n")
    return marker


def _host_memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1024


_VERSIONS: dict[str, int] = {}


async def _qemu_version(binary: str) -> int:
    """QEMU's version as Nova reports it: 7.2.22 → 7002022."""
    if binary not in _VERSIONS:
        try:
            out = await disks.run(binary, "--version", timeout=30)
            m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
            _VERSIONS[binary] = (int(m.group(1)) * 1000000 + int(m.group(2)) * 1000
                                 + int(m.group(3))) if m else 1000
        except DriverError:
            return 1000
    return _VERSIONS[binary]
