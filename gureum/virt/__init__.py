"""Virt drivers: the contract (driver.py), the fake (fake.py), QEMU (qemu/)."""

from __future__ import annotations

from gureum.config import Settings
from gureum.errors import ConfigError
from gureum.virt.driver import VirtDriver


def make_driver(settings: Settings, host: str) -> VirtDriver:
    conf = settings.compute
    if conf.driver == "fake":
        from gureum.virt.fake import (
            FakeDriver,
            parse_delays,
            parse_ignore_acpi,
            parse_injections,
            parse_shared_storage,
        )

        return FakeDriver(vcpus=conf.fake_vcpus, memory_mb=conf.fake_memory_mb,
                          local_gb=conf.fake_disk_gb,
                          delays=parse_delays(conf.fake_delays, host),
                          failures=parse_injections(conf.fake_failures, host),
                          shared_storage_id=parse_shared_storage(conf.fake_shared_storage,
                                                                 host),
                          ignore_acpi=parse_ignore_acpi(conf.fake_ignore_acpi, host),
                          state_dir=settings.host_state_dir(host))
    raise ConfigError(f"Unknown virt driver {conf.driver!r}; use 'fake' or 'qemu'.")
