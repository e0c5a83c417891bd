"""The virt contract, checked against every driver (the fake now; QEMU later).

Each test states one sentence of virt/driver.py's docstrings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from gureum.compute import states
from gureum.virt.driver import GuestNotFound, GuestSpec, SpawnFailed, VirtDriver
from gureum.virt.fake import FakeDriver

DRIVERS: dict[str, Callable[[Path], VirtDriver]] = {
    "fake": lambda tmp: FakeDriver(),
}


def spec(guest_id: str = "g1") -> GuestSpec:
    return GuestSpec(id=guest_id, name="instance-00000001", vcpus=1, memory_mb=64, root_gb=1)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> VirtDriver:
    d = DRIVERS[request.param](tmp_path)
    run(d.init_host("h1"))
    return d


def test_spawn_runs_and_destroy_removes(driver: VirtDriver) -> None:
    async def go() -> None:
        await driver.spawn(spec())
        assert (await driver.guest_info("g1")).power_state == states.RUNNING
        assert await driver.list_guests() == ["g1"]
        await driver.destroy("g1")
        assert await driver.list_guests() == []
        await driver.destroy("g1")  # idempotent
        with pytest.raises(GuestNotFound):
            await driver.guest_info("g1")
    run(go())


def test_failed_spawn_leaves_nothing(driver: VirtDriver) -> None:
    if not isinstance(driver, FakeDriver):
        pytest.skip("failure injection is the fake driver's")

    async def go() -> None:
        driver.inject("spawn", "disk full")
        with pytest.raises(SpawnFailed, match="disk full"):
            await driver.spawn(spec())
        assert await driver.list_guests() == []
        await driver.spawn(spec())  # only the next call failed
    run(go())


def test_power_cycle(driver: VirtDriver) -> None:
    async def go() -> None:
        await driver.spawn(spec())
        result = await driver.power_off("g1", timeout=5, retry_interval=1)
        assert result.clean
        assert (await driver.guest_info("g1")).power_state == states.SHUTDOWN
        await driver.power_on(spec())
        await driver.pause("g1")
        assert (await driver.guest_info("g1")).power_state == states.POWER_PAUSED
        await driver.unpause("g1")
        await driver.suspend("g1")
        assert (await driver.guest_info("g1")).power_state == states.POWER_SUSPENDED
        await driver.resume(spec())
        assert (await driver.guest_info("g1")).power_state == states.RUNNING
    run(go())


def test_hard_reboot_recreates_a_lost_definition(driver: VirtDriver) -> None:
    async def go() -> None:
        await driver.spawn(spec())
        await driver.destroy("g1", keep_disks=True)
        await driver.reboot(spec(), hard=True)
        assert (await driver.guest_info("g1")).power_state == states.RUNNING
    run(go())


def test_guest_ignoring_acpi_is_forced_off_after_timeout() -> None:
    driver = FakeDriver(ignore_acpi={"g1"})

    async def go() -> None:
        await driver.init_host("h1")
        await driver.spawn(spec())
        result = await driver.power_off("g1", timeout=0.05, retry_interval=0.01)
        assert not result.clean and result.waited >= 0.05
        assert (await driver.guest_info("g1")).power_state == states.SHUTDOWN
    run(go())


def test_live_migration_between_two_fake_hosts() -> None:
    src, dst = FakeDriver(), FakeDriver()

    async def go() -> None:
        await src.init_host("a")
        await dst.init_host("b")
        await src.spawn(spec())
        uri = await dst.prepare_incoming(spec(), block_migration=True)
        await src.live_migrate("g1", uri, block_migration=True)
        assert await src.list_guests() == []
        assert (await dst.guest_info("g1")).power_state == states.RUNNING
    run(go())
