"""The fake driver: the contract in memory, with delays and failures on demand.

It is the executable specification of ``virt/driver.py`` and what lets a test
run a thousand hosts. Failures are injected per step, optionally only for the
next N calls: ``FakeDriver(failures={"spawn": "disk full"})`` or, at run time,
``driver.inject("spawn", "disk full", times=1)``. Delays per step simulate slow
hypervisors: ``FakeDriver(delays={"spawn": 0.5})``. A guest "shuts down
cleanly" unless ``ignore_acpi`` names it (its id, its hostname, or "*" for
every guest), in which case power_off re-sends the ACPI request every retry
interval, waits the full timeout and forces it off — the S1 story without a
real guest. Hosts given the same ``instances_dir`` share it, and find out
as real hosts do (S3): each writes a marker file there at start
(``.gureum-shared-<marker>``) and a host that sees another's marker shares its
directory.

A ``gureum up`` cloud sets all of these from ``[compute]`` settings (see
``make_driver``): ``fake_failures = "c02:preflight"``; ``fake_delays =
"live_migrate:20"`` or ``"c03:live_migrate:20"``; ``fake_ignore_acpi = "c02"``
or ``"*:vm1"`` (HOST or HOST:GUEST_HOSTNAME, HOST may be "*");
``fake_shared_storage = "c01,c02"`` (hosts sharing one instances directory;
groups separated by ";").

Guests outlive the agent, as a real hypervisor's running VMs outlive the
compute service: given a ``state_dir``, every guest's definition and run state
is a small JSON file there (``guests/<uuid>.json``, written atomically) and
its disks are files under the instances directory (``instances/<uuid>/disk``,
``state_dir/instances`` unless ``instances_dir`` says otherwise). A restarted
agent (``init_host``) finds them again. The definitions live outside the
instances directory because that directory may be shared between hosts while
a definition belongs to one host (during a live migration on shared storage
both hosts define the guest). Writes are not fsynced: the fake models the
agent process dying, not the machine. Without a ``state_dir`` (unit tests,
thousand-host simulations) guests live in memory only. A guest still waiting
for an incoming live migration is never written (it would not survive its
hypervisor's restart either).

Live migration between hosts in separate processes (``gureum compute`` each):
given a ``handoff_dir`` that the hosts share (``make_driver`` gives every host
``<parent of the hosts' state directories>/.fake-handoff``, so agents on one
machine, or sharing that directory, find each other), the destination's
``prepare_incoming`` leaves ``<handoff_dir>/<host>/<uuid>.waiting`` and
watches for the guest's state, as an incoming QEMU listens; the source's
``live_migrate`` leaves the state there as ``<uuid>.arrived`` (definition,
power state, console) and lets the guest go once the destination has claimed
it (a rename, the point of no return), or withdraws it and fails when the
destination does not within ``handoff_timeout``. A destination agent that
restarts takes in what arrived meanwhile. Without a ``handoff_dir`` the hosts
of one process find each other in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gureum.compute import states
from gureum.virt.driver import (
    DriverError,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    InterfaceAttachFailed,
    MigrationFailed,
    PowerOffResult,
    PreflightFacts,
    PreflightFailed,
    SpawnFailed,
    VirtDriver,
    VolumeAttachFailed,
    volume_id_of,
)

log = logging.getLogger("gureum.virt.fake")

MARKER_PREFIX = ".gureum-shared-"
HANDOFF_POLL = 0.02  # seconds between looks at the live-migration hand-over directory
_MARKER = re.compile(r"[0-9a-f]{32}")

_ERRORS: dict[str, type[DriverError]] = {
    "spawn": SpawnFailed, "preflight": PreflightFailed, "live_migrate": MigrationFailed,
    "import_disks": MigrationFailed, "finish_migration": MigrationFailed,
    "attach_volume": VolumeAttachFailed, "detach_volume": VolumeAttachFailed,
    "extend_volume": VolumeAttachFailed, "swap_volume": VolumeAttachFailed,
    "attach_interface": InterfaceAttachFailed, "detach_interface": InterfaceAttachFailed,
}


@dataclass
class FakeGuest:
    spec: GuestSpec
    power_state: int = states.RUNNING
    disks: list[str] = field(default_factory=list)
    rescued: bool = False
    console: list[str] = field(default_factory=list)
    incoming: bool = False
    made_disks: bool = False  # an incoming guest that created its disks drops them on abort

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "power_state": self.power_state,
                "disks": list(self.disks), "rescued": self.rescued,
                "console": list(self.console)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FakeGuest:
        return cls(GuestSpec.from_dict(data["spec"]), int(data["power_state"]),
                   [str(d) for d in data.get("disks", [])], bool(data.get("rescued")),
                   [str(line) for line in data.get("console", [])])


@dataclass
class _Migration:
    done: asyncio.Event = field(default_factory=asyncio.Event)
    aborted: bool = False


@dataclass
class _Injected:
    message: str
    times: int | None  # None: every call


class FakeDriver(VirtDriver):
    name = "fake"
    # What the fake really does; it has no guest agent to set a password through, no
    # NMI to send and no screen to show, so it does not claim those.
    capabilities: ClassVar[dict[str, bool]] = {
        "supports_pause": True, "supports_suspend": True, "supports_rescue": True,
        "supports_snapshot": True, "supports_resize": True,
        "supports_live_migration": True, "supports_block_migration": True,
        "supports_evacuate": True, "supports_console_output": True,
        "supports_set_admin_password": False, "supports_trigger_crash_dump": False,
        "supports_vnc_console": False,
    }

    def __init__(self, vcpus: int = 16, memory_mb: int = 32768, local_gb: int = 500,
                 delays: dict[str, float] | None = None,
                 failures: dict[str, str] | None = None,
                 ignore_acpi: set[str] | None = None,
                 state_dir: str | Path | None = None,
                 instances_dir: str | Path | None = None,
                 handoff_dir: str | Path | None = None,
                 handoff_timeout: float = 30.0) -> None:
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.local_gb = local_gb
        self.delays = dict(delays or {})
        self._failures: dict[str, _Injected] = {
            step: _Injected(msg, None) for step, msg in (failures or {}).items()}
        self.marker: str | None = None  # this host's marker file in the instances dir
        self.ignore_acpi = set(ignore_acpi or ())
        self.guests: dict[str, FakeGuest] = {}
        self.host = ""
        self.calls: list[tuple[str, str]] = []  # (step, guest id): what was asked, in order
        self._migrations: dict[str, _Migration] = {}
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.instances_dir = (Path(instances_dir) if instances_dir is not None
                              else self.state_dir / "instances" if self.state_dir else None)
        self.handoff_dir = Path(handoff_dir) if handoff_dir is not None else None
        self.handoff_timeout = handoff_timeout
        self._waiting: set[str] = set()  # guests waiting here for a live migration
        self._watcher: asyncio.Task[None] | None = None
        # A guest's NIC changes run one at a time, as the QEMU driver's per-guest lock
        # makes them: an unplug asked while a (slow) plug runs waits for it, then undoes it.
        self._nic_locks: dict[str, asyncio.Lock] = {}

    # -- test controls ---------------------------------------------------------------
    def inject(self, step: str, message: str, times: int | None = 1) -> None:
        """Make the next ``times`` calls of ``step`` fail (None: every call)."""
        self._failures[step] = _Injected(message, times)

    def clear_failures(self) -> None:
        self._failures.clear()

    async def _step(self, step: str, guest_id: str = "", with_delay: bool = True) -> None:
        self.calls.append((step, guest_id))
        delay = self.delays.get(step, 0.0) if with_delay else 0.0
        if delay:
            await asyncio.sleep(delay)
        injected = self._failures.get(step)
        if injected is None:
            return
        if injected.times is not None:
            injected.times -= 1
            if injected.times <= 0:
                del self._failures[step]
        raise _ERRORS.get(step, DriverError)(f"{injected.message} (injected into {step} "
                                             f"on {self.host or 'fake host'})")

    def simulate_host_reboot(self) -> None:
        """The host went down and came back: no guest process runs any more."""
        for guest in self.guests.values():
            guest.power_state = states.SHUTDOWN
            self._save(guest)

    def lose_definition(self, guest_id: str) -> None:
        """The guest's definition is gone (its disks stay), as after a lost domain file."""
        self.guests.pop(guest_id, None)
        self._undefine(guest_id)

    # -- what is on the host's disk ----------------------------------------------------
    def _definition(self, guest_id: str) -> Path | None:
        return self.state_dir / "guests" / f"{guest_id}.json" if self.state_dir else None

    def _save(self, guest: FakeGuest) -> None:
        """Write the guest's definition and state (atomically: a reader never sees half)."""
        path = self._definition(guest.spec.id)
        if path is None or guest.incoming:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(guest.to_dict(), sort_keys=True))
        os.replace(tmp, path)

    def _undefine(self, guest_id: str) -> None:
        path = self._definition(guest_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def _load(self) -> dict[str, FakeGuest]:
        found: dict[str, FakeGuest] = {}
        if self.state_dir is None:
            return found
        for path in sorted((self.state_dir / "guests").glob("*.json")):
            try:
                guest = FakeGuest.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("%s: unreadable guest definition %s (%s); ignoring it",
                            self.host, path, exc)
                continue
            found[guest.spec.id] = guest
        return found

    def _disk_dir(self, guest_id: str) -> Path | None:
        return self.instances_dir / guest_id if self.instances_dir else None

    def _make_disks(self, spec: GuestSpec) -> list[str]:
        """The guest's root disk: a small file standing for the qcow2 overlay."""
        where = self._disk_dir(spec.id)
        if where is None:
            return [f"{spec.id}/disk"]
        where.mkdir(parents=True, exist_ok=True)
        disk = where / "disk"
        if not disk.exists():
            disk.write_text(f"fake disk of {spec.id}: {spec.root_gb} GB from image "
                            f"{spec.image_id or '-'}\n")
        return [str(disk)]

    def _has_disks(self, guest_id: str) -> bool:
        where = self._disk_dir(guest_id)
        return where is None or (where / "disk").is_file()  # memory only: nothing to check

    @staticmethod
    def _write_marker(state_dir: Path, instances_dir: Path) -> str:
        """This host's marker in its instances directory (the id is kept in state_dir,
        so it stays the same across restarts)."""
        keep = state_dir / "storage-marker"
        try:
            marker = keep.read_text().strip()
        except FileNotFoundError:
            marker = ""
        if not _MARKER.fullmatch(marker):
            marker = uuid.uuid4().hex
            keep.write_text(marker + "\n")
        (instances_dir / f"{MARKER_PREFIX}{marker}").write_text(
            f"gureum shared storage marker of the host whose state is in {state_dir}\n")
        return marker

    def _remove_disks(self, guest_id: str) -> None:
        where = self._disk_dir(guest_id)
        if where is not None:
            shutil.rmtree(where, ignore_errors=True)

    def ignores_acpi(self, guest: FakeGuest) -> bool:
        names = {"*", guest.spec.id, guest.spec.hostname} - {""}
        return bool(names & self.ignore_acpi)

    def _guest(self, guest_id: str) -> FakeGuest:
        self._receive()
        guest = self.guests.get(guest_id)
        if guest is None:
            raise GuestNotFound(f"Guest {guest_id} is not on host {self.host}.")
        return guest

    # -- live migration between processes (see the module docstring) -------------------
    def _mailbox(self, host: str) -> Path:
        assert self.handoff_dir is not None
        return self.handoff_dir / host

    def _receive(self, always: bool = False) -> None:
        """Take in the guests whose state arrived (see ``_hand_over``): from then on they
        are this host's, defined and running. ``always``: also when nothing is known to
        be waiting (at start: arrivals while the agent was away)."""
        if self.handoff_dir is None or not (self._waiting or always):
            return
        box = self._mailbox(self.host)
        for path in sorted(box.glob("*.arrived")):
            try:  # the point of no return; the source may withdraw it until then
                os.rename(path, path.with_suffix(".claimed"))
            except FileNotFoundError:
                continue
        for claimed in sorted(box.glob("*.claimed")):
            self._take(claimed)

    def _take(self, claimed: Path) -> None:
        guest_id = claimed.name.removesuffix(".claimed")
        try:
            moved = FakeGuest.from_dict(json.loads(claimed.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s: unreadable live-migration hand-over %s (%s); set aside",
                      self.host, claimed, exc)
            os.replace(claimed, claimed.with_suffix(".unreadable"))
            return
        guest = self.guests.get(guest_id)
        if guest is None or not guest.incoming:  # this agent restarted since prepare
            guest = FakeGuest(moved.spec, moved.power_state, self._make_disks(moved.spec))
            self.guests[guest_id] = guest
        guest.console = moved.console
        guest.rescued = moved.rescued
        guest.incoming = False
        self._set_power(guest, moved.power_state)  # defined here now
        self._waiting.discard(guest_id)
        claimed.with_suffix(".waiting").unlink(missing_ok=True)
        claimed.unlink()

    def _watch(self) -> None:
        """While a guest waits for its state, look for it often, as an incoming QEMU
        listens: the destination holds the guest as soon as the source lets go."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_loop())

    async def _watch_loop(self) -> None:
        while self._waiting:
            await asyncio.sleep(HANDOFF_POLL)
            try:
                self._receive()
            except OSError as exc:  # e.g. the directory is briefly unavailable
                log.warning("%s: live-migration hand-over: %s", self.host, exc)

    async def _hand_over(self, guest: FakeGuest, dest_uri: str) -> bool:
        """On the source: give the guest to the destination waiting at ``dest_uri``;
        False if nothing waits there. Between processes the source leaves the state
        as ``<uuid>.arrived`` and waits for the destination to claim it (renamed
        ``.claimed``: then the guest is the destination's); one that does not within
        ``handoff_timeout`` is withdrawn (MigrationFailed), as a live migration whose
        destination dies fails and leaves the guest on its source."""
        if self.handoff_dir is None:
            target = _LIVE_TARGETS.pop(dest_uri, None)
            if target is None:
                return False
            incoming = target.guests[guest.spec.id]
            incoming.console = guest.console
            incoming.incoming = False
            target._set_power(incoming, guest.power_state)
            return True
        host, _, guest_id = dest_uri.removeprefix("fake://").partition("/")
        waiting = self._mailbox(host) / f"{guest_id}.waiting"
        if guest_id != guest.spec.id or not waiting.is_file():
            return False
        arrived = waiting.with_suffix(".arrived")
        tmp = waiting.with_name(f".{guest_id}.arrived.tmp")
        tmp.write_text(json.dumps(guest.to_dict(), sort_keys=True))
        os.replace(tmp, arrived)
        deadline = time.monotonic() + self.handoff_timeout
        while arrived.exists():
            if time.monotonic() >= deadline:
                try:
                    arrived.unlink()
                except FileNotFoundError:
                    break  # claimed at the last moment
                raise MigrationFailed(f"{host} did not take {guest_id} within "
                                      f"{self.handoff_timeout:g}s; it keeps running on "
                                      f"{self.host}.")
            await asyncio.sleep(HANDOFF_POLL)
        return True

    # -- the contract ------------------------------------------------------------------
    async def init_host(self, host: str) -> None:
        self.host = host
        if self.state_dir is not None:
            (self.state_dir / "guests").mkdir(parents=True, exist_ok=True)
            if self.instances_dir is not None:
                self.instances_dir.mkdir(parents=True, exist_ok=True)
                self.marker = self._write_marker(self.state_dir, self.instances_dir)
            # The hypervisor kept running while the agent was away: its guests are here.
            self.guests = self._load()
        if self.handoff_dir is not None:
            box = self._mailbox(host)
            box.mkdir(parents=True, exist_ok=True)
            for stale in box.glob("*.waiting"):  # the empty guests died with the agent
                stale.unlink(missing_ok=True)
            self._receive(always=True)  # migrations that finished while it was away

    async def cleanup_host(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def host_resources(self) -> HostResources:
        return HostResources(self.vcpus, self.memory_mb, self.local_gb, "fake", 1000,
                             "127.0.0.1", {"arch": "x86_64", "model": "fake"},
                             self.marker)

    async def list_guests(self) -> list[str]:
        self._receive()
        return [gid for gid, g in self.guests.items() if not g.incoming]

    async def guest_info(self, guest_id: str) -> GuestInfo:
        g = self._guest(guest_id)
        return GuestInfo(guest_id, g.power_state, g.spec.vcpus, g.spec.memory_mb)

    async def spawn(self, spec: GuestSpec) -> None:
        await self._step("spawn", spec.id)
        guest = FakeGuest(spec, states.RUNNING, self._make_disks(spec),
                          console=[f"{spec.hostname or spec.name} login:"])
        self.guests[spec.id] = guest
        self._save(guest)

    async def destroy(self, guest_id: str, keep_disks: bool = False) -> None:
        await self._step("destroy", guest_id)
        self._receive()
        self._waiting.discard(guest_id)
        self.guests.pop(guest_id, None)
        self._undefine(guest_id)
        if not keep_disks:
            self._remove_disks(guest_id)

    async def power_off(self, guest_id: str, timeout: float, retry_interval: float
                        ) -> PowerOffResult:
        g = self._guest(guest_id)
        await self._step("power_off", guest_id)
        if g.power_state == states.SHUTDOWN:
            return PowerOffResult(True, 0.0)
        started = time.monotonic()
        clean = timeout > 0
        if self.ignores_acpi(g) and timeout > 0:
            # The guest ignores every ACPI request: re-send it until the timeout, then force.
            deadline = started + timeout
            while (left := deadline - time.monotonic()) > 0:
                self.calls.append(("acpi_power_down", guest_id))
                await asyncio.sleep(min(left, retry_interval) if retry_interval > 0 else left)
            clean = False
        elif timeout > 0:
            self.calls.append(("acpi_power_down", guest_id))
        self._set_power(g, states.SHUTDOWN)
        return PowerOffResult(clean, time.monotonic() - started)

    def _set_power(self, g: FakeGuest, power_state: int, **changes: Any) -> None:
        g.power_state = power_state
        for name, value in changes.items():
            setattr(g, name, value)
        self._save(g)

    def _boot(self, g: FakeGuest) -> None:
        """A (re)start prints a login prompt on the console, as a booting guest would."""
        g.console.append(f"{g.spec.hostname or g.spec.name} login:")
        self._save(g)

    async def power_on(self, spec: GuestSpec) -> None:
        g = self._guest(spec.id)
        await self._step("power_on", spec.id)
        self._set_power(g, states.RUNNING, spec=spec)  # defined anew from the spec
        self._boot(g)

    async def reboot(self, spec: GuestSpec, hard: bool) -> None:
        await self._step("reboot_hard" if hard else "reboot", spec.id)
        self._receive()
        g = self.guests.get(spec.id)
        if g is None:
            if not hard:
                raise GuestNotFound(f"Guest {spec.id} is not on host {self.host}.")
            # A hard reboot recreates a missing definition from the spec, on its disks.
            if not self._has_disks(spec.id):
                raise GuestNotFound(f"Guest {spec.id} is not on host {self.host}, nor are "
                                    "its disks.")
            g = self.guests[spec.id] = FakeGuest(spec, states.RUNNING, self._make_disks(spec))
        self._set_power(g, states.RUNNING, spec=spec)
        self._boot(g)

    async def pause(self, guest_id: str) -> None:
        g = self._guest(guest_id)
        await self._step("pause", guest_id)
        self._set_power(g, states.POWER_PAUSED)

    async def unpause(self, guest_id: str) -> None:
        g = self._guest(guest_id)
        await self._step("unpause", guest_id)
        self._set_power(g, states.RUNNING)

    async def suspend(self, guest_id: str) -> None:
        g = self._guest(guest_id)
        await self._step("suspend", guest_id)
        self._set_power(g, states.POWER_SUSPENDED)

    async def resume(self, spec: GuestSpec) -> None:
        g = self._guest(spec.id)
        await self._step("resume", spec.id)
        self._set_power(g, states.RUNNING)

    async def console_output(self, guest_id: str, tail: int | None = None) -> str:
        g = self._guest(guest_id)
        lines = g.console[-tail:] if tail else g.console
        return "\n".join(lines) + ("\n" if lines else "")

    async def attach_volume(self, guest_id: str, connection_info: dict[str, Any],
                            device_name: str) -> None:
        g = self._guest(guest_id)
        volume_id = volume_id_of(connection_info)
        await self._step("attach_volume", guest_id)
        if any(b.get("volume_id") == volume_id for b in g.spec.block_devices):
            return
        if any(b.get("device_name") == device_name for b in g.spec.block_devices):
            raise VolumeAttachFailed(f"Device {device_name} of guest {guest_id} is in use "
                                     "by another volume.")
        device = {"volume_id": volume_id, "device_name": device_name, "boot_index": None,
                  "connection_info": connection_info}
        g.spec = dataclasses.replace(g.spec, block_devices=[*g.spec.block_devices, device])
        if g.power_state == states.RUNNING:
            g.console.append(f"virtio_blk: new disk {device_name} "
                             f"(serial {volume_id[:20]})")
        self._save(g)

    async def swap_volume(self, guest_id: str, old_volume_id: str,
                          new_connection_info: dict[str, Any]) -> None:
        g = self._guest(guest_id)
        new_id = volume_id_of(new_connection_info)
        await self._step("swap_volume", guest_id)
        devices = [dict(b) for b in g.spec.block_devices]
        old = next((b for b in devices if b.get("volume_id") == old_volume_id), None)
        if old is None:
            if any(b.get("volume_id") == new_id for b in devices):
                return  # swapped already
            raise VolumeAttachFailed(f"Volume {old_volume_id} is not attached to guest "
                                     f"{guest_id}.")
        _copy_volume(old.get("connection_info") or {}, new_connection_info)
        old.update({"volume_id": new_id, "connection_info": new_connection_info})
        g.spec = dataclasses.replace(g.spec, block_devices=devices)
        if g.power_state == states.RUNNING:
            g.console.append(f"virtio_blk: disk {old.get('device_name')} now on volume "
                             f"{new_id} (was {old_volume_id})")
        self._save(g)

    async def extend_volume(self, guest_id: str, volume_id: str, new_size: int) -> None:
        g = self._guest(guest_id)
        await self._step("extend_volume", guest_id)
        devices = [dict(b) for b in g.spec.block_devices]
        found = next((b for b in devices if b.get("volume_id") == volume_id), None)
        if found is None:
            raise VolumeAttachFailed(f"Volume {volume_id} is not attached to guest "
                                     f"{guest_id}.")
        if int(found.get("size") or 0) >= new_size:
            return
        found["size"] = new_size
        g.spec = dataclasses.replace(g.spec, block_devices=devices)
        if g.power_state == states.RUNNING:
            g.console.append(f"virtio_blk: disk {found.get('device_name')} resized to "
                             f"{new_size} bytes")
        self._save(g)

    async def detach_volume(self, guest_id: str, volume_id: str) -> None:
        g = self._guest(guest_id)
        await self._step("detach_volume", guest_id)
        if any(b.get("volume_id") == volume_id and str(b.get("boot_index")) == "0"
               for b in g.spec.block_devices):
            raise VolumeAttachFailed(f"Volume {volume_id} is the disk guest {guest_id} boots "
                                     "from; it cannot be detached.")
        kept = [b for b in g.spec.block_devices if b.get("volume_id") != volume_id]
        if len(kept) != len(g.spec.block_devices):
            g.spec = dataclasses.replace(g.spec, block_devices=kept)
            self._save(g)

    def volumes(self, guest_id: str) -> dict[str, str]:
        """The guest's attached volumes: volume id → device name (for tests)."""
        return {str(b["volume_id"]): str(b.get("device_name") or "")
                for b in self._guest(guest_id).spec.block_devices}

    async def attach_interface(self, guest_id: str, vif: dict[str, Any]) -> None:
        async with self._nic_locks.setdefault(guest_id, asyncio.Lock()):
            await self._attach_interface(guest_id, vif)

    async def _attach_interface(self, guest_id: str, vif: dict[str, Any]) -> None:
        g = self._guest(guest_id)
        port_id, mac = vif.get("port_id"), vif.get("mac_address")
        if not isinstance(port_id, str) or not port_id or not isinstance(mac, str) or not mac:
            raise InterfaceAttachFailed("The interface names no port_id and mac_address.")
        await self._step("attach_interface", guest_id)
        g = self._guest(guest_id)
        if any(p.get("port_id") == port_id for p in g.spec.network_info):
            return
        g.spec = dataclasses.replace(g.spec, network_info=[*g.spec.network_info, dict(vif)])
        if g.power_state == states.RUNNING:
            g.console.append(f"virtio_net: new NIC {mac.lower()}")
        self._save(g)

    async def detach_interface(self, guest_id: str, port_id: str) -> None:
        async with self._nic_locks.setdefault(guest_id, asyncio.Lock()):
            self._guest(guest_id)
            await self._step("detach_interface", guest_id)
            self._detach_interface(guest_id, port_id)

    def _detach_interface(self, guest_id: str, port_id: str) -> None:
        g = self._guest(guest_id)
        kept = [p for p in g.spec.network_info if p.get("port_id") != port_id]
        if len(kept) != len(g.spec.network_info):
            g.spec = dataclasses.replace(g.spec, network_info=kept)
            self._save(g)

    def interfaces(self, guest_id: str) -> dict[str, str]:
        """The guest's NICs: port id → MAC (for tests)."""
        return {str(p.get("port_id")): str(p.get("mac_address") or "").lower()
                for p in self._guest(guest_id).spec.network_info}

    async def snapshot(self, guest_id: str, target_path: str) -> int:
        g = self._guest(guest_id)
        await self._step("snapshot", guest_id)
        data = f"fake snapshot of {g.spec.id}\n".encode()
        with open(target_path, "wb") as fh:
            fh.write(data)
        return len(data)

    async def rescue(self, spec: GuestSpec, rescue_image_path: str) -> None:
        g = self._guest(spec.id)
        await self._step("rescue", spec.id)
        self._set_power(g, states.RUNNING, rescued=True)

    async def unrescue(self, spec: GuestSpec) -> None:
        g = self._guest(spec.id)
        await self._step("unrescue", spec.id)
        self._set_power(g, states.RUNNING, rescued=False)

    async def check_shared_storage(self, marker: str) -> bool:
        if self.instances_dir is None or not _MARKER.fullmatch(marker):
            return False
        return (self.instances_dir / f"{MARKER_PREFIX}{marker}").is_file()

    async def preflight(self, spec: GuestSpec, source_marker: str | None = None
                        ) -> PreflightFacts:
        await self._step("preflight", spec.id)
        if spec.root_gb > self.local_gb:
            raise PreflightFailed(f"Host {self.host} has {self.local_gb} GB of disk; the "
                                  f"guest needs {spec.root_gb} GB.")
        shared = bool(source_marker) and await self.check_shared_storage(source_marker or "")
        return PreflightFacts(self.host, shared)

    async def export_disks(self, guest_id: str) -> list[dict[str, Any]]:
        g = self._guest(guest_id)
        await self._step("export_disks", guest_id)
        return [{"path": d, "size": g.spec.root_gb << 30, "format": "qcow2"} for d in g.disks]

    async def import_disks(self, spec: GuestSpec, disks: list[dict[str, Any]],
                           source: str) -> None:
        await self._step("import_disks", spec.id)
        self.guests[spec.id] = FakeGuest(spec, states.SHUTDOWN, self._make_disks(spec),
                                         incoming=True)

    async def finish_migration(self, spec: GuestSpec, resize_disk: bool,
                               power_on: bool) -> None:
        await self._step("finish_migration", spec.id)
        self._receive()
        g = self.guests.get(spec.id)
        if g is None:  # shared storage (or an agent restarted since the copy): disks are here
            if not self._has_disks(spec.id):
                raise MigrationFailed(f"The disks of {spec.id} are not on {self.host}: "
                                      "they were neither copied nor on shared storage.")
            g = self.guests[spec.id] = FakeGuest(spec, states.SHUTDOWN,
                                                 self._make_disks(spec))
        g.incoming = False
        self._set_power(g, states.RUNNING if power_on else states.SHUTDOWN, spec=spec)
        if power_on:
            self._boot(g)

    async def live_migrate(self, guest_id: str, dest_uri: str, block_migration: bool
                           ) -> dict[str, Any] | None:
        self._guest(guest_id)
        started = time.monotonic()
        # The copy takes fake_delays["live_migrate"] seconds unless forced or aborted.
        control = self._migrations[guest_id] = _Migration()
        try:
            delay = self.delays.get("live_migrate", 0.0)
            if delay:
                waiter = asyncio.create_task(control.done.wait())
                try:
                    while not waiter.done() and (
                            left := started + delay - time.monotonic()) > 0:
                        self._report_progress(guest_id, time.monotonic() - started, delay)
                        await asyncio.wait({waiter}, timeout=min(left, 0.5))
                finally:
                    waiter.cancel()
            if control.aborted:
                raise MigrationFailed(f"Live migration of {guest_id} was aborted; the guest "
                                      f"keeps running on {self.host}.")
            await self._step("live_migrate", guest_id, with_delay=False)
        finally:
            self._migrations.pop(guest_id, None)
        guest = self._guest(guest_id)
        switch = time.monotonic()
        if not await self._hand_over(guest, dest_uri):
            raise MigrationFailed(f"Nothing is waiting for {guest_id} at {dest_uri}.")
        done = time.monotonic()
        del self.guests[guest_id]
        self._undefine(guest_id)
        if block_migration:
            self._remove_disks(guest_id)  # the destination has its own copy now
        # What the fake measured: the hand-over (the guest belonged to neither host).
        return {"downtime_ms": round((done - switch) * 1000),
                "total_time_ms": round((done - started) * 1000)}

    def _report_progress(self, guest_id: str, elapsed: float, delay: float) -> None:
        """The simulated copy's progress: the guest's memory, moved at an even pace."""
        if self.migration_progress is None:
            return
        total = self.guests[guest_id].spec.memory_mb << 20
        done = min(total, int(total * elapsed / delay))
        self.migration_progress(guest_id, {"memory_total_bytes": total,
                                           "memory_processed_bytes": done,
                                           "memory_remaining_bytes": total - done})

    async def abort_migration(self, guest_id: str) -> None:
        control = self._migrations.get(guest_id)
        if control is not None:
            control.aborted = True
            control.done.set()

    async def force_complete_migration(self, guest_id: str) -> None:
        control = self._migrations.get(guest_id)
        if control is not None:
            control.done.set()

    async def prepare_incoming(self, spec: GuestSpec, block_migration: bool) -> str:
        await self._step("prepare_incoming", spec.id)
        self._receive()
        where = self._disk_dir(spec.id)
        if not block_migration and where is not None and not (where / "disk").is_file():
            raise MigrationFailed(f"The disk of {spec.id} is not on {self.host}: the hosts do "
                                  "not share the instances directory; a block migration is "
                                  "needed.")
        made = where is not None and not where.exists()  # not there already (shared storage)
        self.guests[spec.id] = FakeGuest(spec, states.POWER_PAUSED, self._make_disks(spec),
                                         incoming=True, made_disks=made)
        uri = f"fake://{self.host}/{spec.id}"
        if self.handoff_dir is None:
            _LIVE_TARGETS[uri] = self
        else:
            self._waiting.add(spec.id)
            box = self._mailbox(self.host)
            box.mkdir(parents=True, exist_ok=True)
            (box / f"{spec.id}.waiting").write_text(uri + "\n")
            self._watch()
        return uri

    async def abort_incoming(self, guest_id: str) -> None:
        await self._step("abort_incoming", guest_id)
        self._receive()  # a guest whose state arrived already runs here: never touched
        if self.handoff_dir is not None:
            (self._mailbox(self.host) / f"{guest_id}.waiting").unlink(missing_ok=True)
            self._waiting.discard(guest_id)
        g = self.guests.get(guest_id)
        if g is not None and g.incoming:
            del self.guests[guest_id]
            if g.made_disks:
                self._remove_disks(guest_id)
        for uri, drv in list(_LIVE_TARGETS.items()):
            if drv is self and uri.endswith("/" + guest_id):
                del _LIVE_TARGETS[uri]


# Without a handoff_dir, the fake hosts of one process find each other's waiting guests
# here (the "network").
_LIVE_TARGETS: dict[str, FakeDriver] = {}


def parse_injections(text: str, host: str) -> dict[str, str]:
    """Settings text "c02:spawn,*:preflight" → failures for this host ({"spawn": …})."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        where, _, step = item.partition(":")
        if not step:
            where, step = "*", where
        if where in ("*", host):
            out[step] = f"{step} fails on {host} (compute.fake_failures)"
    return out


def parse_ignore_acpi(text: str, host: str) -> set[str]:
    """Settings text "c02,*:vm1" → the guests on this host that ignore ACPI.

    Each item is HOST (every guest there) or HOST:GUEST_HOSTNAME; HOST may be "*".
    """
    out: set[str] = set()
    for item in filter(None, (p.strip() for p in text.split(","))):
        where, _, guest = item.partition(":")
        if where in ("*", host):
            out.add(guest.strip() or "*")
    return out


def parse_shared_storage(text: str, host: str) -> str | None:
    """Settings text "c01,c02;c03,c04" → the name of the instances directory this host
    shares with the others of its group (None: its own).

    Hosts in one group (comma-separated; groups separated by ";") are given one
    instances directory; that they share it is then detected, by marker files.
    """
    for group in filter(None, (g.strip() for g in text.split(";"))):
        hosts = sorted(filter(None, (h.strip() for h in group.split(","))))
        if host in hosts:
            return "+".join(hosts)
    return None


def parse_delays(text: str, host: str = "") -> dict[str, float]:
    """Settings text "spawn:0.5,c03:live_migrate:20" → this host's delays per step.

    An item is STEP:SECONDS (every host) or HOST:STEP:SECONDS (that host only).
    """
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) == 3:
            where, step, seconds = parts
            if where not in ("*", host):
                continue
        else:
            step, seconds = parts[0], (parts[1] if len(parts) > 1 else "")
        out[step] = float(seconds or 0)
    return out


def _copy_volume(old_info: dict[str, Any], new_info: dict[str, Any]) -> None:
    """The old volume's bytes onto the new one, when both are raw files here (as a real
    driver's copy would leave them); a smaller new volume is VolumeAttachFailed. (Other
    formats' sizes are in their headers: the fake neither reads nor copies those.)"""
    old_data, new_data = old_info.get("data") or {}, new_info.get("data") or {}
    old_path = Path(str(old_data.get("path") or ""))
    new_path = Path(str(new_data.get("path") or ""))
    if not old_path.name or not new_path.name or not old_path.is_file() \
            or not new_path.is_file() or {old_data.get("format") or "raw",
                                          new_data.get("format") or "raw"} != {"raw"}:
        return
    if new_path.stat().st_size < old_path.stat().st_size:
        raise VolumeAttachFailed(f"Volume {volume_id_of(new_info)} is smaller than volume "
                                 f"{volume_id_of(old_info)}.")
    with old_path.open("rb") as src, new_path.open("r+b") as dst:
        shutil.copyfileobj(src, dst)
