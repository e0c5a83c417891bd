"""Moving real guests between QEMU driver hosts (virt/qemu/moving.py): what the contract
suite cannot see. The test guest's console says what it saw: its boot counter (kept
on its disk), its memory, and a tick a second.

- Cold migration: the disk goes over the transfer channel with the cached bases it
  needs (the destination has no image file), the counter goes on, resize grows the
  disk and gives the new RAM; a copy that fails leaves nothing.
- Shared storage: a resize keeps the old disk and a revert puts it back; evacuation
  boots the dead host's disk elsewhere.
- Live migration: memory only between hosts sharing instances/, then a block
  migration to a host with its own; the guest keeps ticking, no copy stays behind,
  and the driver returns the downtime QEMU measured.
- A guest booting from a volume: the volume is its only disk through a cold migration
  with a resize, an evacuation and a live migration; no local root disk anywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gureum.compute import states
from gureum.virt.driver import GuestSpec, MigrationFailed
from gureum.virt.qemu import QemuDriver, disks, process
from gureum.virt.qemu.migration import Target
from gureum.virt.qemu.moving import IMPORTED, PRE_RESIZE
from tests.qemu import guest as test_guest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(test_guest.missing() is not None,
                                                   reason=str(test_guest.missing()))]

GUEST = "5e1f0a7d-2222-4b4b-8c8c-00000000000a"
GiB = 1 << 30
BOOT = 240.0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """On uvloop's event loop, as `gureum up` runs its agents."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> test_guest.TestGuest:
    return test_guest.build(tmp_path_factory.mktemp("test-guest"))


def spec(image: test_guest.TestGuest, **more: Any) -> GuestSpec:
    fields: dict[str, Any] = {"id": GUEST, "name": "instance-0000000a", "vcpus": 1,
                              "memory_mb": 128, "root_gb": 1, "hostname": "mover",
                              **image.spec_fields(), **more}
    return GuestSpec(**fields)


def without_image_files(s: GuestSpec) -> GuestSpec:
    """The spec as a host that cannot read the image files gets it."""
    return dataclasses.replace(s, image_path="", extra={})


@asynccontextmanager
async def hosts(root: Path, *names: str, shared: tuple[str, ...] = ()
                ) -> AsyncIterator[dict[str, QemuDriver]]:
    """Drivers of hosts on this machine; those in ``shared`` share one instances/."""
    found = {}
    for name in names:
        instances = root / "nfs" if name in shared else root / name / "instances"
        driver = QemuDriver(root / name, instances, image_cache_interval=0)
        await driver.init_host(name)
        found[name] = driver
    try:
        yield found
    finally:
        for driver in found.values():
            await driver.cleanup_host()
        test_guest.kill_guests_under(root)


async def console_shows(driver: QemuDriver, pattern: str, timeout: float = BOOT) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = await driver.console_output(GUEST)
        if re.search(pattern, text):
            return text
        assert time.monotonic() < deadline, f"console never showed {pattern!r}:\n{text}"
        await asyncio.sleep(0.2)


def numbers(tag: str, text: str) -> list[int]:
    """The test guest's lines "boot-count: N", "ram-mb: N", "disk-mb: N", "tick N"."""
    return [int(n) for n in re.findall(rf"(?m)^{tag}:? (\d+)", text)]


async def virtual_size(path: Path) -> int:
    return int((await disks.info(path)).get("virtual-size", 0))


async def power(driver: QemuDriver) -> int:
    return (await driver.guest_info(GUEST)).power_state


def test_cold_migration_copies_the_disk_and_resize_grows_it(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    async def go() -> None:
        async with hosts(tmp_path, "h1", "h2") as h:
            await h["h1"].spawn(spec(image))
            await console_shows(h["h1"], "GUREUM-READY")
            assert (await h["h1"].power_off(GUEST, timeout=60, retry_interval=2)).clean
            described = await h["h1"].export_disks(GUEST)
            kinds = sorted((d["kind"], d["name"]) for d in described)
            assert kinds == [("base", "_base/test-disk"), ("base", "_base/test-initrd"),
                             ("base", "_base/test-kernel"), ("disk", "disk")]
            assert all({"path", "size", "format"} <= set(d) for d in described)

            # A copy that fails (the wrong secret) leaves nothing on the destination.
            wrong = [{**d, "channel": {**d["channel"], "secret": "0" * 64}}
                     for d in described]
            with pytest.raises(MigrationFailed, match="not authorized"):
                await h["h2"].import_disks(spec(image), wrong, source="h1")
            assert not h["h2"].files(GUEST).data.exists()

            # h2 cannot read the image files: the bases come with the disk.
            bigger = without_image_files(spec(image, memory_mb=192, root_gb=2))
            await h["h2"].import_disks(bigger, described, source="h1")
            files = h["h2"].files(GUEST)
            assert (files.data / IMPORTED).is_file() and await h["h2"].list_guests() == []
            assert not h["h1"].mover.server.exports  # the source forgot the secret
            backing = disks.backing_file(files.disk)
            assert backing == str(h["h2"].instances_dir / "_base" / "test-disk")

            await h["h2"].finish_migration(bigger, resize_disk=True, power_on=True)
            text = await console_shows(h["h2"], "GUREUM-READY")
            assert numbers("boot-count", text) == [2]  # the disk's counter went on
            assert numbers("ram-mb", text)[0] > 180  # the new flavor's RAM
            assert numbers("disk-mb", text) == [2048]  # … and disk
            assert await virtual_size(files.disk) == 2 * GiB
            assert not (files.data / IMPORTED).exists()
            assert not (files.data / PRE_RESIZE).exists()  # the source keeps the old one
            # The source's copy is untouched until confirm destroys it.
            assert await virtual_size(h["h1"].files(GUEST).disk) == 1 * GiB
            assert await power(h["h1"]) == states.SHUTDOWN
            await h["h1"].destroy(GUEST)
            assert await power(h["h2"]) == states.RUNNING
    run(go())


def test_shared_storage_resize_revert_and_evacuation(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    async def go() -> None:
        async with hosts(tmp_path, "h1", "h2", shared=("h1", "h2")) as h:
            old = spec(image)
            await h["h1"].spawn(old)
            await console_shows(h["h1"], "GUREUM-READY")
            assert (await h["h1"].power_off(GUEST, timeout=60, retry_interval=2)).clean
            # Resize to h2: the same disk, seen from both; grown, the old one kept.
            await h["h1"].destroy(GUEST, keep_disks=True)
            bigger = spec(image, memory_mb=192, root_gb=2)
            await h["h2"].finish_migration(bigger, resize_disk=True, power_on=True)
            text = await console_shows(h["h2"], r"(?s)boot-count: 2.*GUREUM-READY")
            assert numbers("ram-mb", text)[-1] > 180 and numbers("disk-mb", text)[-1] == 2048
            files = h["h2"].files(GUEST)
            assert await virtual_size(files.disk) == 2 * GiB
            assert await virtual_size(files.data / PRE_RESIZE) == 1 * GiB

            # Revert: back on h1 with the old flavor and the disk as it was before
            # (its counter at 1 again: the revert drops what the resized guest wrote).
            assert (await h["h2"].power_off(GUEST, timeout=60, retry_interval=2)).clean
            await h["h2"].destroy(GUEST, keep_disks=True)
            await h["h1"].finish_migration(old, resize_disk=False, power_on=True)
            text = await console_shows(h["h1"], r"(?s)boot-count: 2.*boot-count: 2"
                                                r".*GUREUM-READY")
            assert await virtual_size(files.disk) == 1 * GiB
            assert not (files.data / PRE_RESIZE).exists()
            assert numbers("ram-mb", text)[-1] <= 128 and numbers("disk-mb", text)[-1] == 1024

            # Evacuation: h1 dies with its guest; h2 boots the same disk. (The count of
            # the boot that died was never written: the guest writes without sync.)
            assert (await h["h1"].power_off(GUEST, timeout=60, retry_interval=2)).clean
            await h["h1"].power_on(old)
            await console_shows(h["h1"], r"(?s)boot-count: 3.*tick 1")
            pid = process.find(h["h1"].files(GUEST).pidfile, GUEST)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert await process.wait_gone(pid, GUEST, 10)
            await h["h2"].finish_migration(old, resize_disk=False, power_on=True)
            text = await console_shows(h["h2"], r"(?s)boot-count: 3.*boot-count: 3"
                                                r".*GUREUM-READY")
            assert numbers("boot-count", text)[-1] == 3  # on from the disk's 2, not 1
            assert await power(h["h2"]) == states.RUNNING
            # h1 comes back: its stale copy goes, the shared disk stays (the agent's
            # reconcile asks for keep_disks when the disk is shared).
            await h["h1"].destroy(GUEST, keep_disks=True)
            assert files.disk.is_file() and await power(h["h2"]) == states.RUNNING
    run(go())


def test_live_migration_shared_then_block_keeps_the_guest_ticking(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    async def go() -> None:
        async with hosts(tmp_path, "h1", "h2", "h3", shared=("h1", "h2")) as h:
            s = spec(image)
            await h["h1"].spawn(s)
            await console_shows(h["h1"], "tick 2")
            assert (await h["h2"].preflight(s, h["h1"].marker)).shared_storage
            first_pid = process.find(h["h1"].files(GUEST).pidfile, GUEST)

            # h1 → h2, sharing instances/: memory only.
            uri = await h["h2"].prepare_incoming(s, block_migration=False)
            assert await h["h2"].list_guests() == []
            figures = await h["h1"].live_migrate(GUEST, uri, block_migration=False)
            assert isinstance(figures["downtime_ms"], int) and figures["downtime_ms"] >= 0
            assert "disk_total_bytes" not in figures
            assert await h["h1"].list_guests() == []
            assert first_pid is not None and not process.alive(first_pid, GUEST)
            assert await h["h2"].list_guests() == [GUEST]
            assert await power(h["h2"]) == states.RUNNING
            shared_disk = h["h2"].files(GUEST).disk
            assert shared_disk.is_file()  # the source kept the shared disk
            # The console file is shared too: it goes on counting, with no new boot.
            last = numbers("tick", await h["h2"].console_output(GUEST))[-1]
            text = await console_shows(h["h2"], f"tick {last + 2}", timeout=60)
            assert numbers("boot-count", text) == [1]

            # h2 → h3, its own instances/: the disk goes along (block migration), with
            # what is written on it (here by QEMU, below the guest's file system).
            await h["h2"].monitor(GUEST).execute("human-monitor-command", {
                "command-line": "qemu-io disk0 \"write -P 0x5a 56M 256k\""})
            assert not (await h["h3"].preflight(s, h["h2"].marker)).shared_storage
            uri = await h["h3"].prepare_incoming(s, block_migration=True)
            seen: list[tuple[str, dict[str, Any]]] = []
            h["h2"].migration_progress = lambda guest_id, so_far: seen.append(
                (guest_id, so_far))
            figures = await h["h2"].live_migrate(GUEST, uri, block_migration=True)
            assert figures["block_migration"] and figures["disk_total_bytes"] > 0
            assert seen and seen[0][0] == GUEST  # the agent was told as it went
            assert "disk_total_bytes" in seen[0][1]
            assert await h["h3"].list_guests() == [GUEST]
            assert await h["h2"].list_guests() == []
            assert not shared_disk.exists()  # the source's copy went
            text = await console_shows(h["h3"], "tick", timeout=60)
            assert numbers("tick", text)[0] > last and "GUREUM-READY" not in text

            # h3's agent dies during a migration to h1 that then goes on by itself; the
            # agent that starts next stops it, and the guest runs on on h3.
            uri = await h["h1"].prepare_incoming(s, block_migration=True)
            mon = h["h3"].monitor(GUEST)
            await mon.execute("migrate-set-parameters", {"max-bandwidth": 1000,
                                                          "downtime-limit": 1})
            await mon.execute("migrate", {"uri": Target.parse(uri).memory_uri})
            assert (await mon.execute("query-migrate"))["status"] in ("setup", "active")
            again = QemuDriver(tmp_path / "h3", h["h3"].instances_dir,
                               image_cache_interval=0)
            await again.init_host("h3")
            assert (await mon.execute("query-migrate"))["status"] == "cancelled"
            assert (await mon.execute("query-status"))["status"] == "running"
            await h["h1"].abort_incoming(GUEST)
            await again.cleanup_host()

            await h["h3"].power_off(GUEST, timeout=0, retry_interval=1)
            check = await asyncio.create_subprocess_exec(
                "qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 56M 256k",
                str(h["h3"].files(GUEST).disk), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
            out = (await check.communicate())[0].decode()
            assert check.returncode == 0 and "verification failed" not in out, out
            await h["h3"].destroy(GUEST)
    run(go())


def test_a_guest_booting_from_a_volume_has_only_it_through_every_move(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    """A guest whose root is a volume (boot_index 0) has no local root disk: the volume
    is its one disk, vda (the test guest keeps its boot counter on it). A cold
    migration with a resize to a host of its own copies no disk; an evacuation after
    a kill -9 spawns it elsewhere; a live migration between hosts sharing instances/
    moves memory only; never a ``disk`` file on any host."""
    volume_file = tmp_path / "volumes" / "volume-root"
    volume_file.parent.mkdir()
    # A volume made from the test guest's disk image (as `volume create --image`).
    run(disks.run(disks.qemu_img(), "convert", "-O", "raw", str(image.disk),
                  str(volume_file)))
    run(disks.run(disks.qemu_img(), "resize", "-q", "-f", "raw", str(volume_file),
                  str(64 << 20)))
    root = {"volume_id": "9f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5", "device_name": "/dev/vda",
            "boot_index": 0, "connection_info": {
                "driver_volume_type": "file", "data": {
                    "path": str(volume_file), "format": "raw",
                    "volume_id": "9f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5"}}}

    async def only_the_volume(driver: QemuDriver) -> None:
        found = await driver.monitor(GUEST).execute("query-block")
        files = [(b.get("inserted") or {}).get("file") for b in found or []]
        assert files == [str(volume_file)], found
        assert not driver.files(GUEST).disk.exists()

    async def go() -> None:
        async with hosts(tmp_path, "h1", "h2", "h3", shared=("h1", "h2")) as h:
            s = spec(image, block_devices=[root])
            await h["h1"].spawn(s)
            text = await console_shows(h["h1"], "GUREUM-READY")
            assert numbers("disk-mb", text) == [64] and numbers("boot-count", text) == [1]
            await only_the_volume(h["h1"])

            # Cold migration with a resize to h3 (its own instances/): nothing to copy
            # but the bases; the counter goes on from the volume.
            assert (await h["h1"].power_off(GUEST, timeout=60, retry_interval=2)).clean
            described = await h["h1"].export_disks(GUEST)
            assert not [d for d in described if d["kind"] == "disk" and d["name"] == "disk"]
            bigger = spec(image, block_devices=[root], memory_mb=192, root_gb=2)
            await h["h3"].import_disks(bigger, described, source="h1")
            await h["h3"].finish_migration(bigger, resize_disk=True, power_on=True)
            text = await console_shows(h["h3"], r"(?s)boot-count: 2.*GUREUM-READY")
            assert numbers("disk-mb", text)[-1] == 64
            await only_the_volume(h["h3"])
            await h["h1"].destroy(GUEST)

            # Evacuation: h3 dies with the guest; h1 (not sharing h3's instances/)
            # spawns it anew on the same volume.
            await console_shows(h["h3"], r"(?s)boot-count: 2.*tick 1")
            pid = process.find(h["h3"].files(GUEST).pidfile, GUEST)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert await process.wait_gone(pid, GUEST, 10)
            await h["h1"].spawn(s)
            text = await console_shows(h["h1"], "GUREUM-READY")
            assert numbers("boot-count", text)[-1] >= 2  # on from the volume
            await only_the_volume(h["h1"])
            await h["h3"].destroy(GUEST)

            # Live migration h1 → h2 (shared instances/): memory only, no disk to find.
            uri = await h["h2"].prepare_incoming(s, block_migration=False)
            await h["h1"].live_migrate(GUEST, uri, block_migration=False)
            assert await h["h2"].list_guests() == [GUEST]
            assert await power(h["h2"]) == states.RUNNING
            await only_the_volume(h["h2"])
    run(go())
