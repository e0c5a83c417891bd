"""The virt contract, checked against every driver: one test per VirtDriver method.

Each test states what virt/driver.py's docstrings promise after success and
after failure. The suite runs once per entry of ``HARNESSES`` (the fake driver
now; the QEMU driver joins by adding its harness). A harness builds a driver on
a host's state directory and knows how to make the next call of a step fail or
run slowly on that driver; a driver that cannot do that skips those checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gureum.compute import states
from gureum.virt.driver import (
    CAPABILITIES,
    ConsoleUnavailable,
    GuestNotFound,
    GuestSpec,
    HostResources,
    InterfaceAttachFailed,
    MigrationFailed,
    NotSupported,
    PreflightFacts,
    PreflightFailed,
    SpawnFailed,
    VirtDriver,
    VncConsole,
    VolumeAttachFailed,
)
from gureum.virt.fake import FakeDriver
from tests.qemu import guest as test_guest


@dataclass
class Harness:
    """How the suite drives one kind of driver."""

    # A driver on a host's state directory; its instances directory if given (hosts
    # given the same one share it, as over NFS).
    make: Callable[[Path, Path | None], VirtDriver]
    fail_next: Callable[[VirtDriver, str, str], None] | None = None  # step, message
    slow: Callable[[VirtDriver, str, float], None] | None = None  # step, seconds
    # What the agent adds to every spec for this driver (a bootable image), given a
    # directory to build it in; and why the driver cannot run here (None: it can).
    spec_fields: Callable[[Path], dict[str, Any]] | None = None
    missing: Callable[[], str | None] | None = None
    # Ends whatever a test left running on the host's machine (real guest processes).
    reap: Callable[[Path], Any] | None = None


def _fake_fail(driver: VirtDriver, step: str, message: str) -> None:
    assert isinstance(driver, FakeDriver)
    driver.inject(step, message, times=1)


def _fake_slow(driver: VirtDriver, step: str, seconds: float) -> None:
    assert isinstance(driver, FakeDriver)
    driver.delays[step] = seconds


HARNESSES: dict[str, Harness] = {
    # As make_driver builds it: hosts hand live-migrated guests over through files, so
    # agents in separate processes find each other.
    "fake": Harness(lambda state, instances: FakeDriver(
        state_dir=state, instances_dir=instances, handoff_dir=state.parent / ".handoff"),
        _fake_fail, _fake_slow),
    # Without a hand-over directory the hosts of one process meet in memory.
    "fake-one-process": Harness(lambda state, instances: FakeDriver(
        state_dir=state, instances_dir=instances), _fake_fail, _fake_slow),
    # Real QEMU guests (TCG) booting the tiny test guest: the Debian kernel and a busybox
    # initramfs, given the way the agent gives a kernel/ramdisk image. No failure
    # injection: tests/qemu checks real failures.
    "qemu": Harness(lambda state, instances: _qemu_driver(state, instances),
                    slow=lambda driver, step, seconds: _qemu_slow(driver, step),
                    spec_fields=lambda where: test_guest.build(where).spec_fields(),
                    missing=test_guest.missing, reap=test_guest.kill_guests_under),
}


def _qemu_slow(driver: VirtDriver, step: str) -> None:
    """A live migration that does not converge: a trickle of bandwidth and a 1 ms
    downtime limit (the way a busy guest on a slow link behaves)."""
    if step != "live_migrate":
        pytest.skip(f"the qemu driver cannot slow down {step}")
    mover = driver.mover  # type: ignore[attr-defined]
    mover.options = dataclasses.replace(mover.options, bandwidth_mib=0.01, downtime_ms=1)


def _qemu_driver(state: Path, instances: Path | None) -> VirtDriver:
    from gureum.virt.qemu import QemuDriver

    return QemuDriver(state, instances, image_cache_interval=0, soft_reboot_timeout=60)


# What the harness of the running test adds to every spec (see Harness.spec_fields).
_SPEC_FIELDS: dict[str, Any] = {}


class Host:
    """One host of the test: its state directory and the driver running on it."""

    def __init__(self, harness: Harness, state: Path, name: str,
                 instances: Path | None = None) -> None:
        self.harness = harness
        self.state = state
        self.instances = instances
        self.name = name
        self.driver = harness.make(state, instances)

    async def start(self) -> VirtDriver:
        await self.driver.init_host(self.name)
        _STARTED.append(self.driver)
        return self.driver

    async def restart(self) -> VirtDriver:
        """The agent restarts: a new driver object on the same host."""
        await self.driver.cleanup_host()
        self.driver = self.harness.make(self.state, self.instances)
        return await self.start()

    def fail_next(self, step: str, message: str) -> None:
        if self.harness.fail_next is None:
            pytest.skip("this driver has no failure injection")
        self.harness.fail_next(self.driver, step, message)

    def slow(self, step: str, seconds: float) -> None:
        if self.harness.slow is None:
            pytest.skip("this driver cannot be slowed down")
        self.harness.slow(self.driver, step, seconds)


Hosts = Callable[..., Host]


@pytest.fixture(params=sorted(HARNESSES))
def drivers(request: pytest.FixtureRequest, tmp_path: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    """Hosts of one driver kind: drivers("h1"), drivers("h2", instances=shared_dir)…"""
    harness = HARNESSES[request.param]
    reason = harness.missing() if harness.missing else None
    if reason:
        pytest.skip(reason)
    _SPEC_FIELDS.clear()
    if harness.spec_fields is not None:
        _SPEC_FIELDS.update(harness.spec_fields(tmp_path_factory.getbasetemp() / "image"))
    yield lambda name, instances=None: Host(harness, tmp_path / name, name, instances)
    if harness.reap is not None:
        harness.reap(tmp_path)


def requires(host: Host, capability: str) -> None:
    """A feature the driver does not declare is not part of its contract."""
    if not host.driver.capability_report()[capability]:
        pytest.skip(f"the driver does not declare {capability}")


def spec(guest_id: str = "g1", root_gb: int = 1, memory_mb: int = 128,
         block_devices: list[dict[str, Any]] | None = None,
         network_info: list[dict[str, Any]] | None = None) -> GuestSpec:
    return GuestSpec(id=guest_id, name="instance-00000001", vcpus=1, memory_mb=memory_mb,
                     root_gb=root_gb, hostname="vm1", block_devices=block_devices or [],
                     network_info=network_info or [], **_SPEC_FIELDS)


# Drivers started by the running test: their agents stop when it ends (cleanup_host:
# what they listen on closes; their guests keep running until the harness reaps them).
_STARTED: list[VirtDriver] = []


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    async def then_stop() -> Any:
        try:
            return await coro
        finally:
            while _STARTED:
                await _STARTED.pop().cleanup_host()
    return asyncio.run(then_stop())


async def power(driver: VirtDriver, guest_id: str = "g1") -> int:
    return (await driver.guest_info(guest_id)).power_state


async def absent(driver: VirtDriver, guest_id: str = "g1") -> bool:
    try:
        await driver.guest_info(guest_id)
    except GuestNotFound:
        return guest_id not in await driver.list_guests()
    return False


async def running(host: Host, guest_id: str = "g1") -> VirtDriver:
    driver = await host.start()
    await driver.spawn(spec(guest_id))
    return driver


# -- the host ---------------------------------------------------------------------------

def test_init_host(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        await driver.spawn(spec("g2"))
        await driver.power_off("g2", timeout=0, retry_interval=1)
        again = await host.restart()
        assert sorted(await again.list_guests()) == ["g1", "g2"]
        assert await power(again, "g1") == states.RUNNING
        assert await power(again, "g2") == states.SHUTDOWN
    run(go())


def test_cleanup_host(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        await driver.cleanup_host()
        assert await power(await host.restart()) == states.RUNNING  # guests keep running
    run(go())


def test_host_resources(drivers: Hosts) -> None:
    async def go() -> None:
        driver = await drivers("h1").start()
        res = await driver.host_resources()
        assert isinstance(res, HostResources)
        assert res.vcpus > 0 and res.memory_mb > 0 and res.local_gb > 0
        assert res.hypervisor_type
    run(go())


def test_list_guests(drivers: Hosts) -> None:
    async def go() -> None:
        host = drivers("h1")
        driver = await running(host)
        if _declared(host, "supports_live_migration"):
            await driver.prepare_incoming(spec("waiting"), block_migration=True)
        if _declared(host, "supports_resize"):
            await driver.import_disks(spec("copied"), [], source="h0")
        assert await driver.list_guests() == ["g1"]  # nothing waiting is listed
    run(go())


def test_guest_info(drivers: Hosts) -> None:
    async def go() -> None:
        driver = await running(drivers("h1"))
        info = await driver.guest_info("g1")
        assert (info.id, info.power_state) == ("g1", states.RUNNING)
        with pytest.raises(GuestNotFound):
            await driver.guest_info("nope")
    run(go())


# -- a guest's life ------------------------------------------------------------------------

def test_spawn(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        assert await driver.list_guests() == ["g1"]
        assert await power(driver) == states.RUNNING
        host.fail_next("spawn", "disk full")
        with pytest.raises(SpawnFailed, match="disk full"):
            await driver.spawn(spec("g2"))
        assert await absent(driver, "g2")  # nothing of it remains
        assert await absent(await host.restart(), "g2")
    run(go())


def test_destroy(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        await driver.destroy("g1")
        assert await absent(driver)
        await driver.destroy("g1")  # idempotent
        await driver.spawn(spec("g2"))
        await driver.destroy("g2", keep_disks=True)
        assert await absent(driver, "g2")
        await driver.reboot(spec("g2"), hard=True)  # defined again on the kept disks
        assert await power(driver, "g2") == states.RUNNING
        assert await absent(await host.restart(), "g1")
    run(go())


def test_power_off(drivers: Hosts) -> None:
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.spawn(spec("g2"))
        # A real guest answers ACPI once it has booted: the request is re-sent until then.
        result = await driver.power_off("g1", timeout=60, retry_interval=1)
        assert result.clean and await power(driver) == states.SHUTDOWN
        again = await driver.power_off("g1", timeout=60, retry_interval=1)
        assert again.clean and again.waited == 0  # already off
        forced = await driver.power_off("g2", timeout=0, retry_interval=1)
        assert not forced.clean and await power(driver, "g2") == states.SHUTDOWN
        with pytest.raises(GuestNotFound):
            await driver.power_off("nope", timeout=0, retry_interval=1)
    run(go())


def test_power_on(drivers: Hosts) -> None:
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.power_off("g1", timeout=0, retry_interval=1)
        await driver.power_on(spec())
        assert await power(driver) == states.RUNNING
        with pytest.raises(GuestNotFound):
            await driver.power_on(spec("nope"))
        assert await absent(driver, "nope")
    run(go())


def test_reboot(drivers: Hosts) -> None:
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.reboot(spec(), hard=False)
        assert await power(driver) == states.RUNNING
        await driver.power_off("g1", timeout=0, retry_interval=1)
        await driver.reboot(spec(memory_mb=192), hard=True)
        info = await driver.guest_info("g1")
        assert info.power_state == states.RUNNING and info.memory_mb == 192  # as spec says
        with pytest.raises(GuestNotFound):
            await driver.reboot(spec("nope"), hard=False)
        assert await absent(driver, "nope")
        await driver.spawn(spec("lost"))
        await driver.destroy("lost", keep_disks=True)
        await driver.reboot(spec("lost"), hard=True)  # a missing definition is recreated
        assert await power(driver, "lost") == states.RUNNING
        with pytest.raises(GuestNotFound):  # … but not without its disks
            await driver.reboot(spec("nope"), hard=True)
        assert await absent(driver, "nope")
    run(go())


def test_pause(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_pause")
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.pause("g1")
        assert await power(driver) == states.POWER_PAUSED
        with pytest.raises(GuestNotFound):
            await driver.pause("nope")
    run(go())


def test_unpause(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_pause")
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.pause("g1")
        await driver.unpause("g1")
        assert await power(driver) == states.RUNNING
        with pytest.raises(GuestNotFound):
            await driver.unpause("nope")
    run(go())


def test_suspend(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_suspend")
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        await driver.suspend("g1")
        assert await power(driver) == states.POWER_SUSPENDED
        assert await power(await host.restart()) == states.POWER_SUSPENDED
        with pytest.raises(GuestNotFound):
            await host.driver.suspend("nope")
    run(go())


def test_resume(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_suspend")
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.suspend("g1")
        await driver.resume(spec())
        assert await power(driver) == states.RUNNING
        with pytest.raises(GuestNotFound):
            await driver.resume(spec("nope"))
    run(go())


def test_console_output(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_console_output")
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        for _ in range(600):  # a real guest prints once it boots
            if await driver.console_output("g1"):
                break
            await asyncio.sleep(0.1)
        last = await driver.console_output("g1", tail=1)
        whole = await driver.console_output("g1")  # a running guest may print meanwhile
        assert isinstance(whole, str) and whole
        assert len(last.splitlines()) == 1 and last in whole
        assert (await (await host.restart()).console_output("g1")).startswith(whole)
        with pytest.raises(GuestNotFound):
            await host.driver.console_output("nope")
    run(go())


# -- volumes --------------------------------------------------------------------------------

def volume(where: Path, volume_id: str) -> dict[str, Any]:
    """A 1 MiB raw volume file and its connection_info, as the file backend gives it."""
    path = where / f"volume-{volume_id}"
    with path.open("wb") as fh:
        fh.truncate(1 << 20)
    return {"driver_volume_type": "file",
            "data": {"path": str(path), "format": "raw", "volume_id": volume_id}}


async def volumes_of(driver: VirtDriver, guest_id: str = "g1") -> dict[str, str]:
    """The guest's volumes (id → device name), as its definition has them; on QEMU a
    running guest's process must have exactly those plugged."""
    if isinstance(driver, FakeDriver):
        return driver.volumes(guest_id)
    from gureum.virt.qemu import domain, volumes

    dom = domain.load(driver.files(guest_id)) or {}  # type: ignore[attr-defined]
    defined = {v["volume_id"]: v["device_name"] for v in dom.get("volumes", [])}
    if driver._pid(guest_id) is not None:  # type: ignore[attr-defined]
        devices = await volumes.plugged(driver.monitor(guest_id))  # type: ignore[attr-defined]
        assert {d for d in devices if d.startswith("dev-vol-")} == {
            v["device"] for v in dom.get("volumes", [])}
    return defined


V1 = "5a2f8c3e-0b6d-4e1f-9a7c-1d2e3f405162"
V2 = "6b3f9d4f-1c7e-4f20-8b8d-2e3f40516273"
V3 = "7c4fad50-2d8f-4031-9c9e-3f4051627384"


def test_attach_volume(drivers: Hosts, tmp_path: Path) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        v1, v2 = volume(tmp_path, V1), volume(tmp_path, V2)
        await driver.attach_volume("g1", v1, "/dev/vdb")  # hot-plugged into the running guest
        assert await volumes_of(driver) == {V1: "/dev/vdb"}
        await driver.attach_volume("g1", v1, "/dev/vdb")  # attached already: no change
        assert await volumes_of(driver) == {V1: "/dev/vdb"}
        await driver.power_off("g1", timeout=0, retry_interval=1)
        await driver.attach_volume("g1", v2, "/dev/vdc")  # a stopped guest: its definition
        assert await volumes_of(driver) == {V1: "/dev/vdb", V2: "/dev/vdc"}
        both = [{"volume_id": V1, "device_name": "/dev/vdb", "boot_index": None,
                 "connection_info": v1},
                {"volume_id": V2, "device_name": "/dev/vdc", "boot_index": None,
                 "connection_info": v2}]
        await driver.power_on(spec(block_devices=both))  # a start plugs them
        assert await volumes_of(driver) == {V1: "/dev/vdb", V2: "/dev/vdc"}
        third = {"volume_id": V3, "device_name": "/dev/vdb", "boot_index": None,
                 "connection_info": volume(tmp_path, V3)}
        await driver.spawn(spec("g2", block_devices=[third]))  # and so does a spawn
        assert await volumes_of(driver, "g2") == {V3: "/dev/vdb"}
        assert await volumes_of(await host.restart(), "g2") == {V3: "/dev/vdb"}
        with pytest.raises(GuestNotFound):
            await host.driver.attach_volume("nope", v1, "/dev/vdb")
        with pytest.raises(VolumeAttachFailed):  # the device name is taken
            await host.driver.attach_volume("g2", volume(tmp_path, "v4"), "/dev/vdb")
        host.fail_next("attach_volume", "no such device")
        with pytest.raises(VolumeAttachFailed):
            await host.driver.attach_volume("g2", volume(tmp_path, "v5"), "/dev/vdc")
        assert await volumes_of(host.driver, "g2") == {V3: "/dev/vdb"}  # as before
    run(go())


def test_detach_volume(drivers: Hosts, tmp_path: Path) -> None:
    host = drivers("h1")

    async def go() -> None:
        v1 = volume(tmp_path, V1)
        bd = {"volume_id": V1, "device_name": "/dev/vdb", "boot_index": None,
              "connection_info": v1}
        driver = await host.start()
        await driver.spawn(spec(block_devices=[bd]))
        if not isinstance(driver, FakeDriver):  # a real guest releases a disk once booted
            await _booted(driver)
        await driver.detach_volume("g1", V1)
        assert await volumes_of(driver) == {}
        await driver.detach_volume("g1", V1)  # not attached: nothing to do
        await driver.reboot(spec(), hard=True)
        assert await volumes_of(driver) == {}
        with pytest.raises(GuestNotFound):
            await driver.detach_volume("nope", V1)
        await driver.attach_volume("g1", v1, "/dev/vdb")
        host.fail_next("detach_volume", "guest did not release it")
        with pytest.raises(VolumeAttachFailed):
            await driver.detach_volume("g1", V1)
        assert await volumes_of(driver) == {V1: "/dev/vdb"}  # still attached
    run(go())


async def volume_size(driver: VirtDriver, guest_id: str, volume_id: str, path: Path) -> int:
    """The size the guest's volume has: the fake records it in the definition; QEMU's
    file is the truth."""
    if isinstance(driver, FakeDriver):
        g = driver.guests[guest_id]
        (device,) = [b for b in g.spec.block_devices if b.get("volume_id") == volume_id]
        return int(device.get("size") or path.stat().st_size)
    return path.stat().st_size


def test_extend_volume(drivers: Hosts, tmp_path: Path) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        v1 = volume(tmp_path, V1)
        path = Path(v1["data"]["path"])
        await driver.attach_volume("g1", v1, "/dev/vdb")
        await driver.extend_volume("g1", V1, 2 << 20)  # the running guest's disk grows
        assert await volume_size(driver, "g1", V1, path) == 2 << 20
        await driver.extend_volume("g1", V1, 1 << 20)  # never shrinks
        assert await volume_size(driver, "g1", V1, path) == 2 << 20
        await driver.power_off("g1", timeout=0, retry_interval=1)
        await driver.extend_volume("g1", V1, 3 << 20)  # a stopped guest's too
        assert await volume_size(driver, "g1", V1, path) == 3 << 20
        with pytest.raises(VolumeAttachFailed):  # not attached to this guest
            await driver.extend_volume("g1", V2, 4 << 20)
        with pytest.raises(GuestNotFound):
            await driver.extend_volume("nope", V1, 4 << 20)
        host.fail_next("extend_volume", "no room")
        with pytest.raises(VolumeAttachFailed):
            await driver.extend_volume("g1", V1, 4 << 20)
        assert await volume_size(driver, "g1", V1, path) == 3 << 20  # as before
    run(go())


def test_swap_volume(drivers: Hosts, tmp_path: Path) -> None:
    host = drivers("h1")
    marker = b"GUREUM-SWAP-DATA"

    def sized(volume_id: str, size: int) -> tuple[dict[str, Any], Path]:
        info = volume(tmp_path, volume_id)
        path = Path(info["data"]["path"])
        os.truncate(path, size)
        return info, path

    async def go() -> None:
        driver = await running(host)
        v1, p1 = sized(V1, 1 << 20)
        with p1.open("r+b") as fh:
            fh.seek(4096)
            fh.write(marker)
        v2, p2 = sized(V2, 2 << 20)
        await driver.attach_volume("g1", v1, "/dev/vdb")
        await driver.swap_volume("g1", V1, v2)  # a running guest: copied, then switched
        assert await volumes_of(driver) == {V2: "/dev/vdb"}
        assert p2.read_bytes()[4096:4096 + len(marker)] == marker
        assert p2.stat().st_size == 2 << 20  # the larger volume keeps its size
        await driver.swap_volume("g1", V1, v2)  # swapped already: no change
        assert await volumes_of(driver) == {V2: "/dev/vdb"}
        small, _ = sized(V3, 1 << 20)
        with pytest.raises(VolumeAttachFailed):  # smaller than the disk it replaces
            await driver.swap_volume("g1", V2, small)
        assert await volumes_of(driver) == {V2: "/dev/vdb"}
        await driver.power_off("g1", timeout=0, retry_interval=1)
        v3, p3 = sized(V3, 2 << 20)
        await driver.swap_volume("g1", V2, v3)  # a stopped guest: the file is copied
        assert p3.read_bytes()[4096:4096 + len(marker)] == marker
        assert await volumes_of(driver) == {V3: "/dev/vdb"}
        bd = {"volume_id": V3, "device_name": "/dev/vdb", "boot_index": None,
              "connection_info": v3}
        await driver.power_on(spec(block_devices=[bd]))
        assert await volumes_of(driver) == {V3: "/dev/vdb"}
        with pytest.raises(GuestNotFound):
            await driver.swap_volume("nope", V3, v1)
        with pytest.raises(VolumeAttachFailed):  # not attached to this guest
            await driver.swap_volume("g1", "not-attached", v1)
        host.fail_next("swap_volume", "copy failed")
        with pytest.raises(VolumeAttachFailed):
            await driver.swap_volume("g1", V3, sized("v4", 2 << 20)[0])
        assert await volumes_of(driver) == {V3: "/dev/vdb"}  # as before
    run(go())


def test_a_swapped_volume_follows_a_live_migration(drivers: Hosts, tmp_path: Path) -> None:
    """A swap on a paused guest, then the old volume attached again beside the new one
    (its disk's id must not still be taken), then a live migration: the destination
    defines the guest's disks from the spec (the new volume on /dev/vdb) and they must
    be the ones the running guest has, so the guest keeps its disks there."""
    requires(drivers("h1"), "supports_live_migration")
    nfs = tmp_path / "nfs"
    source, dest = drivers("h1", instances=nfs), drivers("h2", instances=nfs)

    async def go() -> None:
        v1, v2 = volume(tmp_path, V1), volume(tmp_path, V2)
        os.truncate(v2["data"]["path"], 2 << 20)
        bd1 = {"volume_id": V1, "device_name": "/dev/vdb", "boot_index": None,
               "connection_info": v1}
        src = await source.start()
        await src.spawn(spec(block_devices=[bd1]))
        if not isinstance(src, FakeDriver):
            await _booted(src)
        await src.pause("g1")
        await src.swap_volume("g1", V1, v2)
        assert await power(src) == states.POWER_PAUSED  # a paused guest stays paused
        await src.unpause("g1")
        await src.attach_volume("g1", v1, "/dev/vdc")
        assert await volumes_of(src) == {V2: "/dev/vdb", V1: "/dev/vdc"}
        dst = await dest.start()
        both = [{**bd1, "volume_id": V2, "connection_info": v2},
                {**bd1, "device_name": "/dev/vdc"}]
        uri = await dst.prepare_incoming(spec(block_devices=both), block_migration=False)
        await src.live_migrate("g1", uri, block_migration=False)
        assert await absent(src) and await power(dst) == states.RUNNING
        assert await volumes_of(dst) == {V2: "/dev/vdb", V1: "/dev/vdc"}
        if not isinstance(dst, FakeDriver):
            await _guest_keeps_its_disks(dst, {"vdb": v2, "vdc": v1})
        await dst.detach_volume("g1", V1)  # the destination's guest holds them now
        assert await volumes_of(dst) == {V2: "/dev/vdb"}
    run(go())


async def _guest_keeps_its_disks(driver: VirtDriver, files: dict[str, dict[str, Any]]
                                 ) -> None:
    """QMP's query-block on the destination shows each disk on its volume's file, and
    the guest, ticking on there, saw none of them go (GUREUM-DISK-GONE)."""
    from gureum.virt.qemu import volumes

    mon = driver.monitor("g1")  # type: ignore[attr-defined]
    on = {str(b.get("qdev")): str((b.get("inserted") or {}).get("file"))
          for b in await mon.execute("query-block") or []}
    for name, info in files.items():
        device = volumes.device_id("/dev/" + name)
        assert on[f"/machine/peripheral/{device}/virtio-backend"] == info["data"]["path"]
    text = await driver.console_output("g1")
    ticks = len(text.split("\n"))
    deadline = asyncio.get_running_loop().time() + 30
    while len((await driver.console_output("g1")).split("\n")) <= ticks + 2:
        assert asyncio.get_running_loop().time() < deadline, "the guest stopped ticking"
        await asyncio.sleep(0.5)
    text = await driver.console_output("g1")
    assert "GUREUM-DISK-GONE" not in text
    assert "GUREUM-DISK vdc " in text  # the old volume, plugged again beside the new


# -- interfaces -----------------------------------------------------------------------------

P1 = {"port_id": "1e0c3a52-8d8e-4f0e-9d0b-5a1b2c3d4e01", "mac_address": "fa:16:3e:00:00:01",
      "network_id": "0d2e7f10-aaaa-4bbb-8ccc-000000000001", "vif_type": "user",
      "vif_details": {}, "mtu": 1450, "device_index": 0}
P2 = {**P1, "port_id": "2f1d4b63-9e9f-4a1f-8e1c-6b2c3d4e5f02", "mac_address": "fa:16:3e:00:00:02",
      "device_index": 1}


async def nics_of(driver: VirtDriver, guest_id: str = "g1") -> dict[str, str]:
    """The guest's NICs (port id → MAC) as its definition has them; on QEMU a running
    guest's process must have exactly those plugged, with those MACs."""
    if isinstance(driver, FakeDriver):
        return driver.interfaces(guest_id)
    from gureum.virt.qemu import domain

    dom = domain.load(driver.files(guest_id)) or {}  # type: ignore[attr-defined]
    defined = {str(n["port_id"]): str(n["mac"]) for n in dom.get("nics", [])}
    if driver._pid(guest_id) is not None:  # type: ignore[attr-defined]
        running_nics = await driver.plugged_nics(guest_id)  # type: ignore[attr-defined]
        assert sorted(running_nics.values()) == sorted(defined.values())
    return defined


def test_attach_interface(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        await driver.attach_interface("g1", P1)  # hot-plugged into the running guest
        assert await nics_of(driver) == {P1["port_id"]: P1["mac_address"]}
        await driver.attach_interface("g1", P1)  # attached already: no change
        assert await nics_of(driver) == {P1["port_id"]: P1["mac_address"]}
        await driver.power_off("g1", timeout=0, retry_interval=1)
        await driver.attach_interface("g1", P2)  # a stopped guest: its definition
        both = {P1["port_id"]: P1["mac_address"], P2["port_id"]: P2["mac_address"]}
        assert await nics_of(driver) == both
        await driver.power_on(spec(network_info=[P1, P2]))  # a start plugs them
        assert await nics_of(driver) == both
        await driver.reboot(spec(network_info=[P1, P2]), hard=True)
        assert await nics_of(await host.restart()) == both
        with pytest.raises(GuestNotFound):
            await host.driver.attach_interface("nope", P1)
        if host.harness.fail_next is not None:
            host.fail_next("attach_interface", "no free slot")
            third = {**P1, "port_id": "p3", "mac_address": "fa:16:3e:00:00:03",
                     "device_index": 2}
            with pytest.raises(InterfaceAttachFailed):
                await host.driver.attach_interface("g1", third)
            assert await nics_of(host.driver) == both  # as before
    run(go())


def test_detach_interface(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await host.start()
        await driver.spawn(spec(network_info=[P1, P2]))
        if not isinstance(driver, FakeDriver):  # a real guest releases a device once booted
            await _booted(driver)
        await driver.detach_interface("g1", P2["port_id"])
        assert await nics_of(driver) == {P1["port_id"]: P1["mac_address"]}
        await driver.detach_interface("g1", P2["port_id"])  # not attached: nothing to do
        await driver.reboot(spec(network_info=[P1]), hard=True)
        assert await nics_of(driver) == {P1["port_id"]: P1["mac_address"]}
        with pytest.raises(GuestNotFound):
            await driver.detach_interface("nope", P1["port_id"])
        if host.harness.fail_next is not None:
            host.fail_next("detach_interface", "guest did not release it")
            with pytest.raises(InterfaceAttachFailed):
                await driver.detach_interface("g1", P1["port_id"])
            assert await nics_of(driver) == {P1["port_id"]: P1["mac_address"]}
    run(go())


async def _booted(driver: VirtDriver, guest_id: str = "g1", timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while test_guest.READY not in await driver.console_output(guest_id):
        assert asyncio.get_running_loop().time() < deadline, "the test guest did not boot"
        await asyncio.sleep(0.5)


def test_snapshot(drivers: Hosts, tmp_path: Path) -> None:
    requires(drivers("h1"), "supports_snapshot")
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        target = tmp_path / "snap"
        size = await driver.snapshot("g1", str(target))
        assert size > 0 and target.stat().st_size == size
        assert await power(driver) == states.RUNNING
        with pytest.raises(GuestNotFound):
            await driver.snapshot("nope", str(tmp_path / "none"))
        host.fail_next("snapshot", "no space")
        with pytest.raises(Exception, match="no space"):
            await driver.snapshot("g1", str(tmp_path / "failed"))
        assert not (tmp_path / "none").exists() and not (tmp_path / "failed").exists()
    run(go())


def test_rescue(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_rescue")
    async def go() -> None:
        driver = await running(drivers("h1"))
        disks = await driver.export_disks("g1")
        await driver.rescue(spec(), rescue_image_path="")
        assert await power(driver) == states.RUNNING
        assert await driver.export_disks("g1") == disks  # the original disk is untouched
        with pytest.raises(GuestNotFound):
            await driver.rescue(spec("nope"), rescue_image_path="")
    run(go())


def test_unrescue(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_rescue")
    async def go() -> None:
        driver = await running(drivers("h1"))
        disks = await driver.export_disks("g1")
        await driver.rescue(spec(), rescue_image_path="")
        await driver.unrescue(spec())
        assert await power(driver) == states.RUNNING
        assert await driver.export_disks("g1") == disks
        with pytest.raises(GuestNotFound):
            await driver.unrescue(spec("nope"))
    run(go())


# -- moving guests ---------------------------------------------------------------------------

def test_preflight(drivers: Hosts, tmp_path: Path) -> None:
    nfs = tmp_path / "nfs"

    async def go() -> None:
        source = await running(drivers("h0", instances=nfs))
        marker = (await source.host_resources()).shared_storage_id
        assert marker
        driver = await running(drivers("h1"))
        facts = await driver.preflight(spec("g2"), source_marker=marker)
        assert facts == PreflightFacts("h1", shared_storage=False)
        sharing = await drivers("h2", instances=nfs).start()
        assert (await sharing.preflight(spec("g2"), source_marker=marker)).shared_storage
        too_big = (await driver.host_resources()).local_gb + 1
        with pytest.raises(PreflightFailed, match="GB"):
            await driver.preflight(spec("g2", root_gb=too_big))
        assert await driver.list_guests() == ["g1"]  # nothing changed either way
        assert await sharing.list_guests() == []
    run(go())


def test_check_shared_storage(drivers: Hosts, tmp_path: Path) -> None:
    nfs = tmp_path / "nfs"
    a, b, c = drivers("a", instances=nfs), drivers("b", instances=nfs), drivers("c")

    async def go() -> None:
        da, db, dc = await a.start(), await b.start(), await c.start()
        ma, mb, mc = [(await d.host_resources()).shared_storage_id for d in (da, db, dc)]
        assert ma and mb and mc and len({ma, mb, mc}) == 3
        assert await db.check_shared_storage(ma) and await da.check_shared_storage(mb)
        assert not await dc.check_shared_storage(ma)
        assert not await da.check_shared_storage(mc)
        assert not await da.check_shared_storage("../../etc/passwd")
        again = await a.restart()  # the marker stays the host's across restarts
        assert (await again.host_resources()).shared_storage_id == ma
        assert await db.check_shared_storage(ma)
    run(go())


def test_export_disks(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_resize")
    async def go() -> None:
        driver = await running(drivers("h1"))
        await driver.power_off("g1", timeout=0, retry_interval=1)
        disks = await driver.export_disks("g1")
        assert disks and all({"path", "size", "format"} <= set(d) for d in disks)
        assert await power(driver) == states.SHUTDOWN
        with pytest.raises(GuestNotFound):
            await driver.export_disks("nope")
    run(go())


def test_import_disks(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_resize")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        src = await running(source)
        await src.power_off("g1", timeout=0, retry_interval=1)
        disks = await src.export_disks("g1")
        dst = await dest.start()
        await dst.import_disks(spec(), disks, source="h1")
        assert await dst.list_guests() == []  # not defined before finish_migration
        await dst.destroy("g1")
        dest.fail_next("import_disks", "copy broke")
        with pytest.raises(MigrationFailed, match="copy broke"):
            await dst.import_disks(spec(), disks, source="h1")
        assert await absent(dst)
        assert await absent(await dest.restart())
    run(go())


def test_finish_migration(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_resize")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        src = await running(source)
        await src.power_off("g1", timeout=0, retry_interval=1)
        dst = await dest.start()
        await dst.import_disks(spec(root_gb=2), await src.export_disks("g1"), source="h1")
        await dst.finish_migration(spec(root_gb=2), resize_disk=True, power_on=True)
        assert await dst.list_guests() == ["g1"] and await power(dst) == states.RUNNING
        await dst.import_disks(spec("g2"), [], source="h1")
        await dst.finish_migration(spec("g2"), resize_disk=False, power_on=False)
        assert await power(dst, "g2") == states.SHUTDOWN
        with pytest.raises(MigrationFailed):  # no disks here: neither copied nor shared
            await dst.finish_migration(spec("g3"), resize_disk=False, power_on=True)
        assert await absent(dst, "g3")
        assert sorted(await (await dest.restart()).list_guests()) == ["g1", "g2"]
    run(go())


def test_live_migrate(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_live_migration")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        src = await running(source)
        dst = await dest.start()
        gone = await dst.prepare_incoming(spec(), block_migration=True)
        await dst.abort_incoming("g1")
        with pytest.raises(MigrationFailed):  # nothing waits there any more
            await src.live_migrate("g1", gone, block_migration=True)
        assert await power(src) == states.RUNNING  # untouched
        uri = await dst.prepare_incoming(spec(), block_migration=True)
        await src.live_migrate("g1", uri, block_migration=True)
        assert await absent(src)
        assert await power(dst) == states.RUNNING and await dst.list_guests() == ["g1"]
        assert await absent(await source.restart())
        assert await power(await dest.restart()) == states.RUNNING
    run(go())


def test_volumes_follow_a_live_migration(drivers: Hosts, tmp_path: Path) -> None:
    """A guest's volumes (on storage both hosts reach) are opened by the destination,
    never copied: the attached ones as the spec says and one hot-plugged since."""
    requires(drivers("h1"), "supports_live_migration")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        v1, v2 = volume(tmp_path, V1), volume(tmp_path, V2)
        bd1 = {"volume_id": V1, "device_name": "/dev/vdb", "boot_index": None,
               "connection_info": v1}
        src = await source.start()
        await src.spawn(spec(block_devices=[bd1]))
        if not isinstance(src, FakeDriver):
            await _booted(src)
        await src.attach_volume("g1", v2, "/dev/vdc")
        dst = await dest.start()
        both = [bd1, {"volume_id": V2, "device_name": "/dev/vdc", "boot_index": None,
                      "connection_info": v2}]
        uri = await dst.prepare_incoming(spec(block_devices=both), block_migration=True)
        await src.live_migrate("g1", uri, block_migration=True)
        assert await absent(src)
        assert await volumes_of(dst) == {V1: "/dev/vdb", V2: "/dev/vdc"}
        await dst.detach_volume("g1", V1)  # the destination's guest holds them now
        assert await volumes_of(dst) == {V2: "/dev/vdc"}
    run(go())


def test_a_guest_booting_from_a_volume_live_migrates(drivers: Hosts, tmp_path: Path
                                                    ) -> None:
    """Its root disk is the volume: a block migration has no local disk to copy."""
    requires(drivers("h1"), "supports_live_migration")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        root = {"volume_id": V3, "device_name": "/dev/vda", "boot_index": 0,
                "connection_info": volume(tmp_path, V3)}
        src = await source.start()
        await src.spawn(spec(block_devices=[root]))
        assert await volumes_of(src) == {V3: "/dev/vda"}
        dst = await dest.start()
        uri = await dst.prepare_incoming(spec(block_devices=[root]), block_migration=True)
        await src.live_migrate("g1", uri, block_migration=True)
        assert await absent(src)
        assert await power(dst) == states.RUNNING
        assert await volumes_of(dst) == {V3: "/dev/vda"}
        with pytest.raises(VolumeAttachFailed):  # the disk it boots from stays
            await dst.detach_volume("g1", V3)
    run(go())


def test_abort_migration(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_live_migration")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        src = await running(source)
        dst = await dest.start()
        await src.abort_migration("g1")  # nothing running: a no-op
        source.slow("live_migrate", 30)
        uri = await dst.prepare_incoming(spec(), block_migration=True)
        moving = asyncio.ensure_future(src.live_migrate("g1", uri, block_migration=True))
        await asyncio.sleep(0.05)
        await src.abort_migration("g1")
        with pytest.raises(MigrationFailed):
            await asyncio.wait_for(moving, 5)
        assert await power(src) == states.RUNNING and await src.list_guests() == ["g1"]
        await dst.abort_incoming("g1")
        assert await absent(dst)
    run(go())


def test_force_complete_migration(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_live_migration")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        src = await running(source)
        dst = await dest.start()
        await src.force_complete_migration("g1")  # nothing running: a no-op
        assert await power(src) == states.RUNNING
        source.slow("live_migrate", 30)
        uri = await dst.prepare_incoming(spec(), block_migration=True)
        moving = asyncio.ensure_future(src.live_migrate("g1", uri, block_migration=True))
        await asyncio.sleep(0.05)
        await src.force_complete_migration("g1")
        await asyncio.wait_for(moving, 5)
        assert await absent(src) and await power(dst) == states.RUNNING
    run(go())


def test_prepare_incoming(drivers: Hosts, tmp_path: Path) -> None:
    requires(drivers("h1"), "supports_live_migration")
    nfs = tmp_path / "nfs"

    async def go() -> None:
        await running(drivers("h1", instances=nfs))  # the guest's disk is on nfs
        dst = await drivers("h2", instances=nfs).start()
        uri = await dst.prepare_incoming(spec(), block_migration=False)  # memory only
        assert isinstance(uri, str) and uri
        assert await dst.list_guests() == []  # waiting for the state
        apart = await drivers("h3").start()
        with pytest.raises(MigrationFailed):  # memory only, but the disk is not here
            await apart.prepare_incoming(spec(), block_migration=False)
        uri = await apart.prepare_incoming(spec(), block_migration=True)  # a disk of its own
        assert uri and await apart.list_guests() == []
    run(go())


def test_abort_incoming(drivers: Hosts) -> None:
    requires(drivers("h1"), "supports_live_migration")
    source, dest = drivers("h1"), drivers("h2")

    async def go() -> None:
        src = await running(source)
        dst = await dest.start()
        await dst.abort_incoming("g1")  # nothing there: a no-op
        uri = await dst.prepare_incoming(spec(), block_migration=True)
        await dst.abort_incoming("g1")
        with pytest.raises(MigrationFailed):  # nothing waits at the URI any more
            await src.live_migrate("g1", uri, block_migration=True)
        uri = await dst.prepare_incoming(spec(), block_migration=True)
        await src.live_migrate("g1", uri, block_migration=True)
        await dst.abort_incoming("g1")  # a guest that already runs is never touched
        assert await power(dst) == states.RUNNING
    run(go())


def _declared(host: Host, capability: str) -> bool:
    return host.driver.capability_report()[capability]


def test_set_admin_password(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        if not _declared(host, "supports_set_admin_password"):
            with pytest.raises(NotSupported):
                await driver.set_admin_password("g1", "s3cret")
            assert await power(driver) == states.RUNNING  # nothing changed
            return
        await driver.set_admin_password("g1", "s3cret")
        assert await power(driver) == states.RUNNING
        with pytest.raises(GuestNotFound):
            await driver.set_admin_password("nope", "s3cret")
    run(go())


def test_trigger_crash_dump(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        if not _declared(host, "supports_trigger_crash_dump"):
            with pytest.raises(NotSupported):
                await driver.trigger_crash_dump("g1")
            assert await power(driver) == states.RUNNING  # nothing changed
            return
        await driver.trigger_crash_dump("g1")
        with pytest.raises(GuestNotFound):
            await driver.trigger_crash_dump("nope")
    run(go())


async def rfb_greeting(console: VncConsole) -> bytes:
    """The first message of the console's websocket: an RFB server's version."""
    from websockets.asyncio.client import connect

    async with connect(console.url, subprotocols=["binary"], open_timeout=10) as ws:
        assert ws.subprotocol == "binary"
        data = await asyncio.wait_for(ws.recv(), 10)
    return data if isinstance(data, bytes) else data.encode()


def test_get_vnc_console(drivers: Hosts) -> None:
    host = drivers("h1")

    async def go() -> None:
        driver = await running(host)
        if not _declared(host, "supports_vnc_console"):
            with pytest.raises(NotSupported):
                await driver.get_vnc_console("g1")
            assert await power(driver) == states.RUNNING  # nothing changed
            return
        console = await driver.get_vnc_console("g1")
        assert console.port > 0
        assert (await rfb_greeting(console)).startswith(b"RFB 003.")
        assert await driver.get_vnc_console("g1") == console  # the same while it runs
        with pytest.raises(GuestNotFound):
            await driver.get_vnc_console("nope")
        await driver.power_off("g1", timeout=0, retry_interval=1)
        with pytest.raises(ConsoleUnavailable):
            await driver.get_vnc_console("g1")
        await driver.destroy("g1")
    run(go())


def test_capability_report(drivers: Hosts) -> None:
    report = drivers("h1").driver.capability_report()
    assert list(report) == list(CAPABILITIES)  # every known one, declared or not
    assert all(isinstance(v, bool) for v in report.values())
    assert not set(type(drivers("h1").driver).capabilities) - set(CAPABILITIES), \
        "a driver declares a capability nobody knows"


def test_every_driver_method_has_a_contract_test() -> None:
    methods = {name for name, fn in inspect.getmembers(VirtDriver, inspect.iscoroutinefunction)
               if not name.startswith("_")}
    tested = {name[len("test_"):] for name in globals() if name.startswith("test_")}
    assert methods - tested == set()
    assert len(methods) == 37
