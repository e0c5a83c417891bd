"""Virt drivers: the contract (driver.py), the fake (fake.py), QEMU (qemu/)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gureum.config import Settings
from gureum.errors import ConfigError
from gureum.virt.driver import VirtDriver

if TYPE_CHECKING:
    from gureum.virt.qemu.migration import MigrationOptions


def driver_classes() -> dict[str, type[VirtDriver]]:
    """Every driver gureum ships, by the name ``[compute] driver`` takes (for the
    generated API coverage table: what the drivers declare they do)."""
    from gureum.virt.fake import FakeDriver
    from gureum.virt.qemu import QemuDriver

    return {"fake": FakeDriver, "qemu": QemuDriver}


QEMU_BINARY = "qemu-system-x86_64"
QEMU_PACKAGES = "qemu-system-x86 qemu-utils"


DriverName = Literal["fake", "qemu"]


def auto_driver() -> tuple[DriverName, str | None]:
    """What ``[compute] driver = "auto"`` means here, and why not qemu when it is not."""
    if shutil.which(QEMU_BINARY) is None:
        return "fake", (f"{QEMU_BINARY} is not installed: using the fake driver (install "
                        f"QEMU with `apt-get install {QEMU_PACKAGES}` or scripts/bootstrap)")
    if "qemu" not in driver_classes():
        return "fake", "this gureum has no QEMU driver yet: using the fake driver"
    return "qemu", None


def resolve_driver(name: str) -> str:
    """The driver a ``[compute] driver`` value names (``auto`` resolved)."""
    return auto_driver()[0] if name == "auto" else name


def migration_options(settings: Settings) -> MigrationOptions:
    """The QEMU driver's MigrationOptions from ``[compute]`` migration_* settings."""
    from gureum.virt.qemu.migration import MigrationOptions
    from gureum.virt.qemu.transfer import parse_port_range

    conf = settings.compute
    try:
        ports = parse_port_range(conf.migration_port_range)
    except ValueError as exc:
        raise ConfigError(f"[compute] migration_port_range: {exc}") from None
    return MigrationOptions(address=conf.migration_address, ports=ports,
                            bandwidth_mib=conf.live_migration_bandwidth,
                            downtime_ms=conf.live_migration_downtime,
                            completion_timeout=conf.live_migration_completion_timeout)


def make_driver(settings: Settings, host: str) -> VirtDriver:
    conf = settings.compute
    driver = resolve_driver(conf.driver)
    if driver == "fake":
        from gureum.virt.fake import (
            FakeDriver,
            parse_delays,
            parse_ignore_acpi,
            parse_injections,
        )

        return FakeDriver(vcpus=conf.fake_vcpus, memory_mb=conf.fake_memory_mb,
                          local_gb=conf.fake_disk_gb,
                          delays=parse_delays(conf.fake_delays, host),
                          failures=parse_injections(conf.fake_failures, host),
                          ignore_acpi=parse_ignore_acpi(conf.fake_ignore_acpi, host),
                          state_dir=settings.host_state_dir(host),
                          instances_dir=instances_dir(settings, host),
                          # Shared by the hosts of one machine, in one process or many.
                          handoff_dir=settings.host_state_dir(host).parent / ".fake-handoff")
    if driver == "qemu":
        from gureum.virt.driver import DriverError
        from gureum.virt.qemu import QemuDriver
        from gureum.virt.qemu.process import find_binary

        try:
            find_binary()
            find_binary("qemu-img")
        except DriverError as exc:
            raise ConfigError(str(exc)) from None
        return QemuDriver(settings.host_state_dir(host), instances_dir(settings, host),
                          virt_type=conf.virt_type,
                          image_cache_max_age=conf.image_cache_max_age,
                          image_cache_interval=conf.image_cache_interval,
                          vif_mechanism=conf.vif_mechanism,
                          vnc_listen=settings.vnc.server_listen,
                          migration=migration_options(settings))
    raise ConfigError(f"Unknown virt driver {driver!r}; use 'fake' or 'qemu'.")


def instances_dir(settings: Settings, host: str) -> Path:
    """Where a host keeps its guests' disks: ``[compute] instances_path`` ("{host}" is
    replaced by the host's name; empty: ``<state_dir>/instances``). Hosts in one
    ``fake_shared_storage`` group get one directory (``<data_dir>/shared/<group>``),
    as hosts mounting one NFS export would; they detect it with marker files."""
    from gureum.virt.fake import parse_shared_storage

    conf = settings.compute
    group = parse_shared_storage(conf.fake_shared_storage, host)
    if group is not None:
        return settings.data_dir / "shared" / group / "instances"
    if conf.instances_path:
        return Path(conf.instances_path.replace("{host}", host)).expanduser()
    return settings.host_state_dir(host) / "instances"
