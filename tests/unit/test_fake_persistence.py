"""The fake hypervisor keeps its guests in the host's state directory (issue 7).

A real hypervisor's VMs outlive the compute agent; so do the fake's: a new
FakeDriver on the same state directory finds every guest with its power state,
console and disks, and what was destroyed stays destroyed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gureum.compute import states
from gureum.virt.driver import GuestNotFound, GuestSpec
from gureum.virt.fake import FakeDriver


def spec(guest_id: str = "g1") -> GuestSpec:
    return GuestSpec(id=guest_id, name="instance-00000001", vcpus=1, memory_mb=64, root_gb=1,
                     hostname="vm1")


def restarted(state_dir: Path) -> FakeDriver:
    """The agent process died and a new one starts on the same host."""
    driver = FakeDriver(state_dir=state_dir)
    asyncio.run(driver.init_host("h1"))
    return driver


def test_guests_survive_a_restart_with_power_state_console_and_disks(tmp_path: Path) -> None:
    first = restarted(tmp_path)

    async def before() -> None:
        await first.spawn(spec("g1"))
        await first.spawn(spec("g2"))
        await first.power_off("g2", timeout=0, retry_interval=1)
        await first.rescue(spec("g1"), "")
    asyncio.run(before())

    second = restarted(tmp_path)

    async def after() -> None:
        assert sorted(await second.list_guests()) == ["g1", "g2"]
        assert (await second.guest_info("g1")).power_state == states.RUNNING
        assert (await second.guest_info("g2")).power_state == states.SHUTDOWN
        assert second.guests["g1"].rescued
        assert await second.console_output("g2") == "vm1 login:\n"
        await second.power_on(spec("g2"))  # `server start` after a restart works
        assert (await second.guest_info("g2")).power_state == states.RUNNING
    asyncio.run(after())
    assert (tmp_path / "instances" / "g1" / "disk").is_file()
    assert restarted(tmp_path).guests["g2"].power_state == states.RUNNING


def test_destroy_removes_the_definition_and_the_disks_unless_kept(tmp_path: Path) -> None:
    driver = restarted(tmp_path)

    async def go() -> None:
        await driver.spawn(spec("g1"))
        await driver.spawn(spec("g2"))
        await driver.destroy("g1")
        await driver.destroy("g2", keep_disks=True)
    asyncio.run(go())
    again = restarted(tmp_path)
    assert again.guests == {}
    assert not (tmp_path / "instances" / "g1").exists()
    assert (tmp_path / "instances" / "g2" / "disk").is_file()
    # A hard reboot rebuilds the definition on the kept disk.
    asyncio.run(again.reboot(spec("g2"), hard=True))
    assert restarted(tmp_path).guests["g2"].power_state == states.RUNNING


def test_definitions_are_written_whole(tmp_path: Path) -> None:
    driver = restarted(tmp_path)
    asyncio.run(driver.spawn(spec("g1")))
    files = sorted(p.name for p in (tmp_path / "guests").iterdir())
    assert files == ["g1.json"]  # no temporary file left behind
    saved = json.loads((tmp_path / "guests" / "g1.json").read_text())
    assert saved["power_state"] == states.RUNNING and saved["spec"]["id"] == "g1"


def test_an_unreadable_definition_is_a_missing_guest_not_a_crash(tmp_path: Path) -> None:
    driver = restarted(tmp_path)
    asyncio.run(driver.spawn(spec("g1")))
    (tmp_path / "guests" / "g1.json").write_text("{half a")
    again = restarted(tmp_path)
    with pytest.raises(GuestNotFound):
        asyncio.run(again.guest_info("g1"))


def test_a_guest_waiting_for_a_live_migration_is_not_kept(tmp_path: Path) -> None:
    driver = restarted(tmp_path)
    asyncio.run(driver.prepare_incoming(spec("g1"), block_migration=True))
    assert restarted(tmp_path).guests == {}


def test_without_a_state_directory_guests_live_in_memory(tmp_path: Path) -> None:
    driver = FakeDriver()

    async def go() -> None:
        await driver.init_host("h1")
        await driver.spawn(spec("g1"))
        assert await driver.list_guests() == ["g1"]
    asyncio.run(go())
    assert list(tmp_path.iterdir()) == []
