"""The virt driver contract: what a hypervisor driver must do, and what holds after.

Every method is a coroutine. Each docstring says what is true after success
and after failure; ``virt/fake.py`` is the executable version of these words,
and ``tests/unit/test_virt_contract.py`` checks every driver against them.
Drivers know nothing of the database or the bus: they get plain values
(``GuestSpec``) and return plain values.

Failures are raised as ``DriverError`` subclasses with a message an operator
can act on; a driver never leaves a half-created guest behind on failure
unless the docstring says so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from gureum.compute import states


class DriverError(Exception):
    """A driver operation failed; the message says what and, if known, what to do."""

    step = "driver"


class GuestNotFound(DriverError):
    """No guest with that id on this host (an API answers 404, never 500)."""

    status = 404


class SpawnFailed(DriverError):
    step = "spawn"


class PreflightFailed(DriverError):
    """A destination cannot take the guest (space, directory, reachability)."""

    step = "preflight"


class MigrationFailed(DriverError):
    step = "migrate"


class NotSupported(DriverError):
    """The driver cannot do this at all (it does not declare the capability)."""


class VolumeAttachFailed(DriverError):
    """A volume could not be plugged into (or unplugged from) the guest."""

    step = "volume"


class InterfaceAttachFailed(DriverError):
    """A NIC could not be plugged into (or unplugged from) the guest."""

    step = "interface"


class ConsoleUnavailable(DriverError):
    """The guest is defined here but has no console to connect to right now (it is not
    running: stopped, suspended, still waiting for a live migration's state)."""

    status = 409


@dataclass(frozen=True)
class GuestSpec:
    """Everything needed to define a guest, rebuilt from the database every time."""

    id: str
    name: str  # instance-0000000N
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    image_id: str = ""
    image_path: str = ""  # a local file the driver may read (the agent fetched it)
    image_properties: dict[str, Any] = field(default_factory=dict)
    hostname: str = ""
    user_data: str | None = None
    key_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    network_info: list[dict[str, Any]] = field(default_factory=list)
    # The volumes attached to the guest (the compute block device mappings), each
    # {"volume_id", "device_name" ("/dev/vdb"), "boot_index" (0: the guest boots from it
    # and has no local root disk; None: a data disk), "connection_info" (as the volume
    # service gives it for this host: {"driver_volume_type": "file", "data": {"path",
    # "format", "volume_id"}}), "delete_on_termination"}. Every definition a driver makes
    # from the spec (spawn, power on, hard reboot, every move) plugs them.
    block_devices: list[dict[str, Any]] = field(default_factory=list)
    config_drive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def boots_from_volume(self) -> bool:
        """The guest's root disk is a volume (boot_index 0): it has no local root disk."""
        return any(str(b.get("boot_index")) == "0" for b in self.block_devices)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuestSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class GuestInfo:
    id: str
    power_state: int  # gureum.compute.states power_state numbers
    vcpus: int = 0
    memory_mb: int = 0


@dataclass(frozen=True)
class HostResources:
    """What the host offers, as the agent reports it to the conductor."""

    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int = 1000
    host_ip: str = "127.0.0.1"
    cpu_info: dict[str, Any] = field(default_factory=dict)
    # The name of this host's marker file in its instances directory (None: no
    # instances directory). A host that sees it there shares the directory.
    shared_storage_id: str | None = None
    # How this host plugs ports, when its driver plugs them itself (the VIF drivers):
    # {"agent_type": "Linux bridge agent", "vif_type": "bridge", "vif_details": {...}}.
    # Bindings to this host get that vif_type (network/bindings.py); None: the host
    # reports nothing and is bound as an Open vSwitch host would be.
    vif: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PowerOffResult:
    clean: bool  # the guest shut itself down within the timeout
    waited: float  # seconds spent waiting for it


@dataclass(frozen=True)
class VncConsole:
    """Where a guest's graphical console is served: a websocket (RFC 6455, subprotocol
    ``binary``) carrying the RFB (VNC) protocol, as QEMU's ``-vnc …,websocket=``
    serves it. Only a console proxy connects there; browsers never do."""

    host: str  # an address the console proxy can reach
    port: int  # the websocket's TCP port
    path: str | None = None  # the handshake's request path, when not "/"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.path or '/'}"


@dataclass(frozen=True)
class PreflightFacts:
    """What a destination's preflight tells the source."""

    host: str
    # The destination sees the source's marker file: they share the instances
    # directory, so the disks need not move (detected, never declared).
    shared_storage: bool = False


# What live_migrate may report (all optional): the downtime and total time in ms, and
# the bytes of memory and disk (Nova's migration record has the bytes).
MIGRATION_FIGURES: tuple[str, ...] = (
    "downtime_ms", "total_time_ms", "memory_total_bytes", "memory_processed_bytes",
    "memory_remaining_bytes", "disk_total_bytes", "disk_processed_bytes",
    "disk_remaining_bytes",
)


# What a driver may declare it can do (Nova's ComputeDriver.capabilities). The agent
# reports the map with its resources; the API answers 501/409 for what a host's
# driver lacks instead of recording a success that did nothing.
CAPABILITIES: tuple[str, ...] = (
    "supports_pause",  # pause / unpause
    "supports_suspend",  # suspend / resume
    "supports_rescue",  # rescue / unrescue
    "supports_snapshot",  # createImage, createBackup, shelve
    "supports_resize",  # resize and cold migration (export / import disks)
    "supports_live_migration",
    "supports_block_migration",  # live migration that copies the disks too
    "supports_evacuate",
    "supports_console_output",
    "supports_set_admin_password",  # changePassword
    "supports_trigger_crash_dump",  # trigger_crash_dump (an NMI)
    "supports_vnc_console",  # a graphical console in the browser (os-getVNCConsole)
)


class VirtDriver(ABC):
    """One hypervisor host's guests.

    Every method that names an existing guest (by id or by ``spec.id``) raises
    GuestNotFound when the guest is not defined on this host, and then changes
    nothing; the exceptions (destroy, a hard reboot, abort_*, force_complete_*)
    say so. Guests belong to the host, not to the driver object: they outlive it.
    """

    name = "abstract"
    # Each driver declares what it really does; a capability left out is False.
    capabilities: ClassVar[dict[str, bool]] = {}
    # Set by the agent: a driver that watches a live migration it sends calls it now and
    # then with (guest id, MIGRATION_FIGURES so far), for the migration record.
    migration_progress: Callable[[str, dict[str, Any]], None] | None = None

    def capability_report(self) -> dict[str, bool]:
        """Every known capability, True only where the driver declares it."""
        return {name: bool(self.capabilities.get(name, False)) for name in CAPABILITIES}

    @abstractmethod
    async def init_host(self, host: str) -> None:
        """Prepare the host. After: the driver can answer every other call, and the
        guests defined on the host before (by an earlier driver, before an agent
        restart) are found again with their power states."""

    async def cleanup_host(self) -> None:
        """Release what init_host took (sockets, tasks). Guests keep running."""
        return None

    @abstractmethod
    async def host_resources(self) -> HostResources:
        """What the host offers right now (positive vCPUs, memory and disk)."""

    @abstractmethod
    async def list_guests(self) -> list[str]:
        """Ids of every guest defined on this host, running or not (a guest still
        waiting for incoming live-migration state or disks is not listed)."""

    @abstractmethod
    async def guest_info(self, guest_id: str) -> GuestInfo:
        """The guest's power state. GuestNotFound if it is not on this host."""

    @abstractmethod
    async def spawn(self, spec: GuestSpec) -> None:
        """Create the guest's disks and definition and start it.

        After success: the guest is defined, listed and RUNNING.
        After failure (SpawnFailed): nothing of the guest remains on the host.
        """

    @abstractmethod
    async def destroy(self, guest_id: str, keep_disks: bool = False) -> None:
        """Stop the guest at once and undefine it; remove its disks unless keep_disks
        (a hard reboot can then define it again on them).

        Idempotent: destroying a guest that is not there succeeds.
        After: no process of the guest runs on this host and it is not listed.
        """

    @abstractmethod
    async def power_off(self, guest_id: str, timeout: float, retry_interval: float
                        ) -> PowerOffResult:
        """Ask the guest to shut down (ACPI), re-asking every retry_interval; force it
        off after timeout. timeout 0 forces off at once.

        After success: SHUTDOWN; ``clean`` says whether the guest shut itself down
        (False when it was forced); a guest already off is clean after 0 s.
        """

    @abstractmethod
    async def power_on(self, spec: GuestSpec) -> None:
        """Start a stopped guest. After success: RUNNING."""

    @abstractmethod
    async def reboot(self, spec: GuestSpec, hard: bool) -> None:
        """Soft: ask the guest to restart (GuestNotFound if it is not here). Hard:
        destroy the running process and start it again from a definition rebuilt
        from ``spec`` (a missing definition is recreated on the kept disks;
        GuestNotFound when the disks are gone too).
        After success: RUNNING, defined as ``spec`` says.
        """

    @abstractmethod
    async def pause(self, guest_id: str) -> None:
        """Freeze the vCPUs in memory. After: PAUSED."""

    @abstractmethod
    async def unpause(self, guest_id: str) -> None:
        """After: RUNNING."""

    @abstractmethod
    async def suspend(self, guest_id: str) -> None:
        """Save memory to disk and stop the process. After: SUSPENDED."""

    @abstractmethod
    async def resume(self, spec: GuestSpec) -> None:
        """Restore a suspended guest. After: RUNNING."""

    async def set_admin_password(self, guest_id: str, password: str) -> None:
        """Set the guest's administrator password (through an agent in the guest).

        Only a driver declaring ``supports_set_admin_password`` does; any other raises
        NotSupported and changes nothing (the API answers Nova's 501 before asking).
        """
        raise NotSupported(f"The {self.name} driver cannot set a guest's password.")

    async def trigger_crash_dump(self, guest_id: str) -> None:
        """Inject a non-maskable interrupt so the guest's kernel dumps and panics.

        Only a driver declaring ``supports_trigger_crash_dump`` does; any other raises
        NotSupported and changes nothing (the API answers Nova's 400 before asking).
        """
        raise NotSupported(f"The {self.name} driver cannot trigger a crash dump.")

    @abstractmethod
    async def console_output(self, guest_id: str, tail: int | None = None) -> str:
        """The serial console log (only its last ``tail`` lines when given)."""

    async def get_vnc_console(self, guest_id: str) -> VncConsole:
        """Where the guest's graphical console listens, for the console proxy.

        Only a driver declaring ``supports_vnc_console`` does; any other raises
        NotSupported (the API answers Nova's 501). GuestNotFound when the guest is not
        on this host; ConsoleUnavailable when it is but no process of it runs (stopped,
        suspended, waiting for incoming state). Changes nothing. The address stays the
        guest's for as long as its process runs; a new process (power on, hard reboot,
        resume, a migration) may listen elsewhere, so a proxy asks again before it
        connects.
        """
        raise NotSupported(f"The {self.name} driver has no graphical console.")

    # -- volumes ---------------------------------------------------------------------
    @abstractmethod
    async def attach_volume(self, guest_id: str, connection_info: dict[str, Any],
                            device_name: str) -> None:
        """Attach the volume ``connection_info`` describes (its ``data.volume_id``) as
        ``device_name`` (``/dev/vdb``; the guest's kernel may name it otherwise).

        After success: the volume is in the guest's definition (every later start,
        hard reboot and move plugs it) and, when the guest runs, plugged into it now
        (hot-plugged; the guest sees a new disk whose serial is the volume id's first
        20 characters). A stopped guest's attach only changes its definition.
        Attaching a volume that is attached already succeeds and changes nothing; a
        device name another volume of the guest has is VolumeAttachFailed.
        After failure (VolumeAttachFailed; GuestNotFound when the guest is not here):
        the guest is as before, the volume neither plugged nor in its definition.
        """

    @abstractmethod
    async def detach_volume(self, guest_id: str, volume_id: str) -> None:
        """Unplug the volume from the guest and take it out of the definition.

        After success: no process of the guest holds the volume open and no later
        definition plugs it; detaching a volume that is not attached succeeds. The
        volume the guest boots from (boot_index 0) is never detached
        (VolumeAttachFailed).
        After failure (VolumeAttachFailed, e.g. the guest did not release the disk in
        time; GuestNotFound): the volume stays attached and in the definition.
        """

    async def swap_volume(self, guest_id: str, old_volume_id: str,
                          new_connection_info: dict[str, Any]) -> None:
        """Put the volume ``new_connection_info`` describes in the place of the attached
        volume ``old_volume_id`` (Nova's swap volume): same device name, same place in
        the guest, the old volume's data copied onto the new one first (a running
        guest keeps running: QEMU mirrors the disk and pivots to the copy). The new
        volume is at least as large; a larger one shows as the disk growing.

        After success: the guest's disk is the new volume's (now, and in every later
        definition); no process of the guest holds the old volume open. Swapping
        again when the new volume is already in the old one's place succeeds and
        changes nothing.
        After failure (VolumeAttachFailed: the old volume is not attached, the new one
        is smaller or unreachable, the copy failed; GuestNotFound; NotSupported): the
        guest still has the old volume, as before.
        """
        raise NotSupported(f"The {self.name} driver cannot swap volumes.")

    async def extend_volume(self, guest_id: str, volume_id: str, new_size: int) -> None:
        """Grow the attached volume ``volume_id`` to ``new_size`` bytes (Block Storage's
        extend of an in-use volume; Nova's ``volume-extended`` event).

        After success: the volume's data is ``new_size`` bytes and a running guest
        sees its disk grow now (QEMU's block_resize); a stopped guest sees it at its
        next start. A volume already that large is left as it is.
        After failure (VolumeAttachFailed: not attached to the guest, or the
        hypervisor refused; GuestNotFound; NotSupported: a driver that cannot): the
        volume keeps its size.
        """
        raise NotSupported(f"The {self.name} driver cannot extend an attached volume.")

    # -- interfaces (Nova's os-interface) ---------------------------------------------
    @abstractmethod
    async def attach_interface(self, guest_id: str, vif: dict[str, Any]) -> None:
        """Add a NIC for the port ``vif`` describes (one ``network_info`` entry: its
        ``port_id``, ``mac_address``, ``network_id``, ``vif_type``/``vif_details`` as
        bound to this host, ``mtu``, ``device_index``).

        After success: the port is in the guest's definition (every later start, hard
        reboot and move plugs it) and, when the guest runs, a NIC with the port's MAC
        is plugged into it now (hot-plugged; its host side, a tap, plugged by the
        host's VIF driver). A stopped guest's attach only changes its definition.
        Attaching a port that is attached already succeeds and changes nothing.
        After failure (InterfaceAttachFailed; GuestNotFound when the guest is not
        here): the guest is as before, the port neither plugged nor in its definition
        and nothing of it left on the host.
        """

    @abstractmethod
    async def detach_interface(self, guest_id: str, port_id: str) -> None:
        """Unplug the port's NIC from the guest and take it out of the definition.

        After success: the guest has no NIC for the port, no later definition plugs
        it and its host side (tap) is gone; detaching a port that is not attached
        succeeds. After failure (InterfaceAttachFailed, e.g. the guest did not
        release the device in time; GuestNotFound): the NIC stays attached and in
        the definition. A detach asked while an attach of the same guest still runs
        (its caller gave up waiting) waits for it, so it undoes it.
        """

    @abstractmethod
    async def snapshot(self, guest_id: str, target_path: str) -> int:
        """Write a consistent copy of the root disk to target_path; return its size in
        bytes. After failure: no file at target_path was created."""

    @abstractmethod
    async def rescue(self, spec: GuestSpec, rescue_image_path: str) -> None:
        """Boot the rescue image with the original disk attached as second disk.

        After success: RUNNING from the rescue image; the original disk untouched.
        """

    @abstractmethod
    async def unrescue(self, spec: GuestSpec) -> None:
        """Back to the original disk. After success: RUNNING as before the rescue."""

    # -- moving guests between hosts (resize, cold and live migration, evacuation) --
    @abstractmethod
    async def check_shared_storage(self, marker: str) -> bool:
        """Whether another host's marker file (its HostResources.shared_storage_id) is
        in this host's instances directory, i.e. both see the same directory (Nova's
        shared storage test file). Changes nothing; an invalid marker is False."""

    @abstractmethod
    async def preflight(self, spec: GuestSpec, source_marker: str | None = None
                        ) -> PreflightFacts:
        """On a destination: can this host take the guest (space, directory)?

        Returns facts the source needs: whether this host shares the instances
        directory with the source (``source_marker`` is the source's marker, as in
        check_shared_storage). Raises PreflightFailed with the reason. Changes
        nothing, whatever the outcome.
        """

    @abstractmethod
    async def export_disks(self, guest_id: str) -> list[dict[str, Any]]:
        """On the source, guest SHUTDOWN: describe the disks to copy (path, size in
        bytes, format). Changes nothing."""

    @abstractmethod
    async def import_disks(self, spec: GuestSpec, disks: list[dict[str, Any]],
                           source: str) -> None:
        """On the destination: receive copies of the disks from ``source``. The guest
        is not listed until finish_migration defines it.

        After failure: no partial copy remains.
        """

    @abstractmethod
    async def finish_migration(self, spec: GuestSpec, resize_disk: bool,
                               power_on: bool) -> None:
        """On the destination: define the guest on the copied (or shared) disks, grow the
        root disk to spec.root_gb if resize_disk, start it if power_on.

        After success: listed, RUNNING if power_on else SHUTDOWN. MigrationFailed
        when the disks are not here (neither copied nor on shared storage).
        """

    @abstractmethod
    async def live_migrate(self, guest_id: str, dest_uri: str, block_migration: bool
                           ) -> dict[str, Any] | None:
        """On the source: move the running guest's memory (and disks when block_migration)
        to dest_uri. After success: the guest runs on the destination and is gone here.
        After failure (MigrationFailed): the guest still runs here, untouched.

        Returns what the hypervisor measured, when it measures (MIGRATION_FIGURES:
        ``downtime_ms``, the time the guest was paused for the switch-over; the bytes
        of memory and disk moved), or None.
        """

    @abstractmethod
    async def abort_migration(self, guest_id: str) -> None:
        """On the source: stop a live migration in progress. After: the guest runs here,
        untouched, and live_migrate raises MigrationFailed. A no-op if none is running.
        """

    @abstractmethod
    async def force_complete_migration(self, guest_id: str) -> None:
        """On the source: make a live migration that does not converge finish now
        (pause the guest for the final copy). A no-op if none is running.
        """

    @abstractmethod
    async def prepare_incoming(self, spec: GuestSpec, block_migration: bool) -> str:
        """On a live-migration destination: start an empty guest waiting for state
        (not listed until the state arrived). With block_migration its disks are made
        here, empty, to receive the source's; without, they must be here already
        (shared storage), or MigrationFailed and nothing changes.

        Returns the URI the source must migrate to.
        """

    @abstractmethod
    async def abort_incoming(self, guest_id: str) -> None:
        """On a live-migration destination: drop the guest if it is still waiting for
        state (rollback). A guest that already runs here is never touched; a no-op
        if there is none."""


def volume_id_of(connection_info: dict[str, Any]) -> str:
    """The volume a connection_info is for (VolumeAttachFailed when it does not say)."""
    data = connection_info.get("data") if isinstance(connection_info, dict) else None
    volume_id = data.get("volume_id") if isinstance(data, dict) else None
    if not isinstance(volume_id, str) or not volume_id:
        raise VolumeAttachFailed("The connection info names no volume (data.volume_id).")
    return volume_id


def power_state_name(value: int) -> str:
    return states.POWER_STATE_NAMES.get(value, str(value))
