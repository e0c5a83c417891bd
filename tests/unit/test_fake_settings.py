"""The fake driver's [compute] settings: how a `gureum up` cloud is told what to fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gureum.compute import states
from gureum.config import load_settings
from gureum.virt import instances_dir, make_driver
from gureum.virt.driver import GuestSpec
from gureum.virt.fake import FakeDriver, parse_delays, parse_ignore_acpi, parse_shared_storage


def test_ignore_acpi_names_hosts_and_guest_hostnames() -> None:
    assert parse_ignore_acpi("c02", "c02") == {"*"}
    assert parse_ignore_acpi("c02", "c01") == set()
    assert parse_ignore_acpi("*:vm1, c01:vm2", "c01") == {"vm1", "vm2"}
    assert parse_ignore_acpi("*:vm1, c01:vm2", "c03") == {"vm1"}
    assert parse_ignore_acpi("", "c01") == set()


def test_shared_storage_groups_name_one_directory_per_group() -> None:
    text = "c01,c02; c04,c03"
    assert parse_shared_storage(text, "c01") == parse_shared_storage(text, "c02") == "c01+c02"
    assert parse_shared_storage(text, "c03") == parse_shared_storage(text, "c04")
    assert parse_shared_storage(text, "c01") != parse_shared_storage(text, "c03")
    assert parse_shared_storage(text, "c05") is None
    assert parse_shared_storage("", "c01") is None


def test_make_driver_applies_the_settings(tmp_path: Path) -> None:
    settings = load_settings(None, {"compute": {
        "driver": "fake", "fake_ignore_acpi": "c02:stubborn",
        "fake_shared_storage": "c01,c02"}},
        environ={}, data_dir=tmp_path)
    c01, c02, c03 = (make_driver(settings, h) for h in ("c01", "c02", "c03"))
    assert isinstance(c02, FakeDriver) and c02.ignore_acpi == {"stubborn"}
    assert isinstance(c01, FakeDriver) and c01.ignore_acpi == set()
    assert isinstance(c03, FakeDriver)
    # c01 and c02 are given one instances directory, c03 its own …
    assert c01.instances_dir == c02.instances_dir == tmp_path / "shared" / "c01+c02" / \
        "instances"
    assert c03.instances_dir == tmp_path / "hosts" / "c03" / "instances"

    async def shared() -> list[bool]:
        for host, d in (("c01", c01), ("c02", c02), ("c03", c03)):
            await d.init_host(host)
        m1, m2, m3 = [(await d.host_resources()).shared_storage_id or ""
                      for d in (c01, c02, c03)]
        return [await c02.check_shared_storage(m1), await c01.check_shared_storage(m2),
                await c03.check_shared_storage(m1), await c01.check_shared_storage(m3)]
    # … and they find that out from each other's marker files.
    assert asyncio.run(shared()) == [True, True, False, False]


def test_instances_path_names_each_hosts_directory(tmp_path: Path) -> None:
    settings = load_settings(None, {"compute": {
        "instances_path": str(tmp_path / "nfs" / "{host}")}}, environ={}, data_dir=tmp_path)
    assert instances_dir(settings, "c07") == tmp_path / "nfs" / "c07"
    one = load_settings(None, {"compute": {"instances_path": str(tmp_path / "nfs")}},
                        environ={}, data_dir=tmp_path)
    assert instances_dir(one, "c01") == instances_dir(one, "c02") == tmp_path / "nfs"


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
