"""The fake driver's [compute] settings: how a `gureum up` cloud is told what to fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gureum.compute import states
from gureum.config import load_settings
from gureum.virt import make_driver
from gureum.virt.driver import GuestSpec
from gureum.virt.fake import FakeDriver, parse_delays, parse_ignore_acpi, parse_shared_storage


def test_ignore_acpi_names_hosts_and_guest_hostnames() -> None:
    assert parse_ignore_acpi("c02", "c02") == {"*"}
    assert parse_ignore_acpi("c02", "c01") == set()
    assert parse_ignore_acpi("*:vm1, c01:vm2", "c01") == {"vm1", "vm2"}
    assert parse_ignore_acpi("*:vm1, c01:vm2", "c03") == {"vm1"}
    assert parse_ignore_acpi("", "c01") == set()


def test_shared_storage_groups_report_one_id_per_group() -> None:
    text = "c01,c02; c04,c03"
    assert parse_shared_storage(text, "c01") == parse_shared_storage(text, "c02")
    assert parse_shared_storage(text, "c03") == parse_shared_storage(text, "c04")
    assert parse_shared_storage(text, "c01") != parse_shared_storage(text, "c03")
    assert parse_shared_storage(text, "c05") is None
    assert parse_shared_storage("", "c01") is None


def test_make_driver_applies_the_settings(tmp_path: Path) -> None:
    settings = load_settings(None, {"compute": {
        "fake_ignore_acpi": "c02:stubborn", "fake_shared_storage": "c01,c02"}},
        environ={}, data_dir=tmp_path)
    c01, c02, c03 = (make_driver(settings, h) for h in ("c01", "c02", "c03"))
    assert isinstance(c02, FakeDriver) and c02.ignore_acpi == {"stubborn"}
    assert isinstance(c01, FakeDriver) and c01.ignore_acpi == set()

    async def shared() -> tuple[str | None, ...]:
        return tuple([(await d.host_resources()).shared_storage_id for d in (c01, c02, c03)])
    a, b, c = asyncio.run(shared())
    assert a == b and a is not None and c is None


def test_a_guest_ignoring_acpi_is_asked_again_every_retry_interval() -> None:
    driver = FakeDriver(ignore_acpi={"stubborn"})
    spec = GuestSpec(id="g1", name="instance-00000001", vcpus=1, memory_mb=64, root_gb=1,
                     hostname="stubborn")

    async def go() -> None:
        await driver.init_host("h1")
        await driver.spawn(spec)
        result = await driver.power_off("g1", timeout=0.2, retry_interval=0.05)
        assert not result.clean and result.waited >= 0.2
        assert (await driver.guest_info("g1")).power_state == states.SHUTDOWN
    asyncio.run(go())
    asked = [c for c in driver.calls if c == ("acpi_power_down", "g1")]
    assert 3 <= len(asked) <= 5


def test_delays_for_every_host_or_one() -> None:
    text = "spawn:0.5, c03:live_migrate:20, *:power_off:1"
    assert parse_delays(text, "c03") == {"spawn": 0.5, "live_migrate": 20.0, "power_off": 1.0}
    assert parse_delays(text, "c01") == {"spawn": 0.5, "power_off": 1.0}
    assert parse_delays("spawn", "c01") == {"spawn": 0.0}
