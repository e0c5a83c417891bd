"""The QEMU driver with real guests (TCG): what the contract suite cannot see.

Clean stop vs forced stop (S1), guests outliving the driver object (an agent
restart), delete leaving nothing behind, suspend keeping the guest's memory,
config drives, the image cache cleaner (S14), and failures leaving nothing.
Guests boot the tiny test guest of ``tests/qemu/guest.py`` with 128 MiB; each
test boots as few as it can and checks several things on one guest.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import re
import subprocess
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from gureum.compute import states
from gureum.errors import ConfigError
from gureum.virt import make_driver
from gureum.virt.driver import GuestNotFound, GuestSpec, SpawnFailed
from gureum.virt.qemu import QemuDriver, cmdline, disks, process
from tests.harness import make_settings
from tests.qemu import guest as test_guest

pytestmark = pytest.mark.skipif(test_guest.missing() is not None,
                                reason=str(test_guest.missing()))

UUID1 = "0b6c7c3e-1111-4a4a-8b8b-000000000001"
UUID2 = "0b6c7c3e-1111-4a4a-8b8b-000000000002"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> test_guest.TestGuest:
    return test_guest.build(tmp_path_factory.mktemp("test-guest"))


def spec(image: test_guest.TestGuest, guest_id: str = UUID1, ignore_acpi: bool = False,
         **more: Any) -> GuestSpec:
    return GuestSpec(id=guest_id, name="instance-00000001", vcpus=1, memory_mb=128,
                     root_gb=1, hostname="vm1",
                     **{**image.spec_fields(ignore_acpi=ignore_acpi), **more})


async def console_shows(driver: QemuDriver, guest_id: str, pattern: str,
                        timeout: float = 120, after: int = 0) -> str:
    """Wait until the console (past its first ``after`` characters) matches pattern;
    that part of the console."""
    deadline = time.monotonic() + timeout
    while True:
        text = (await driver.console_output(guest_id))[after:]
        if re.search(pattern, text):
            return text
        assert time.monotonic() < deadline, f"console never showed {pattern!r}:\n{text}"
        await asyncio.sleep(0.2)


def boots(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"boot-count: (\d+)", text)]


def ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"(?m)^tick (\d+)", text)]


def test_clean_stop_keeps_the_boot_counter_and_forced_stop_loses_it(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    """S1 on a real guest: its boot counter is a buffered write on its disk's file
    system; a clean stop (the guest powers itself off on the ACPI button) keeps it, a
    forced one (the guest ignores ACPI: asked every second, forced after the timeout)
    loses it."""
    async def go() -> None:
        driver = QemuDriver(tmp_path / "h1", image_cache_interval=0)
        await driver.init_host("h1")
        try:
            await driver.spawn(spec(image))
            await console_shows(driver, UUID1, test_guest.READY)
            result = await driver.power_off(UUID1, timeout=30, retry_interval=5)
            assert result.clean and result.waited < 5
            assert test_guest.CLEAN_OFF in await driver.console_output(UUID1)
            assert (await driver.guest_info(UUID1)).power_state == states.SHUTDOWN
            assert await driver.list_guests() == [UUID1]  # still defined

            # Started again, now as a guest that ignores ACPI (power on rebuilds the
            # definition from the spec, its kernel command line too).
            await driver.power_on(spec(image, ignore_acpi=True))
            text = await console_shows(driver, UUID1, "(?s)boot-count: 2.*" + test_guest.READY)
            assert boots(text) == [1, 2]  # the clean stop kept the count
            started = time.monotonic()
            forced = await driver.power_off(UUID1, timeout=3, retry_interval=1)
            assert not forced.clean and 3 <= forced.waited < 20
            assert time.monotonic() - started >= 3
            assert (await driver.guest_info(UUID1)).power_state == states.SHUTDOWN
            assert (await driver.console_output(UUID1)).count(test_guest.CLEAN_OFF) == 1
            again = await driver.power_off(UUID1, timeout=3, retry_interval=1)
            assert again.clean and again.waited == 0  # already off: clean after no wait

            await driver.power_on(spec(image))
            text = await console_shows(driver, UUID1, "(?s)(boot-count.*){3}")
            assert boots(text) == [1, 2, 2]  # the forced stop lost the unsynced write
        finally:
            await driver.destroy(UUID1)
    run(go())


def test_guest_outlives_the_driver_then_delete_leaves_nothing(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    state, instances = tmp_path / "h1", tmp_path / "instances"

    async def go() -> None:
        first = QemuDriver(state, instances, image_cache_interval=0)
        await first.init_host("h1")
        user_data = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
        await first.spawn(spec(image, config_drive=True, user_data=user_data))
        files = first.files(UUID1)
        pid = process.find(files.pidfile, UUID1)
        assert pid is not None
        await console_shows(first, UUID1, "(?m)^tick 1")
        await first.cleanup_host()
        del first

        # The agent restarts: a new driver finds the running guest and drives it.
        again = QemuDriver(state, instances, image_cache_interval=0)
        await again.init_host("h1")
        assert await again.list_guests() == [UUID1]
        assert (await again.guest_info(UUID1)).power_state == states.RUNNING
        assert process.find(files.pidfile, UUID1) == pid  # the same process
        await again.pause(UUID1)
        assert (await again.guest_info(UUID1)).power_state == states.POWER_PAUSED
        await again.unpause(UUID1)

        # The config drive: the guest read it, an ISO labelled config-2.
        text = await console_shows(again, UUID1, "user-data: echo hello")
        assert f"instance-uuid: {UUID1}" in text
        drive = files.data / "disk.config"
        label = subprocess.run(["isoinfo", "-d", "-i", str(drive)], capture_output=True,
                               text=True, check=False).stdout
        if label:
            assert "config-2" in label
        listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(drive)],
                                 capture_output=True, text=True, check=False).stdout
        if listing:
            assert "/openstack/latest/meta_data.json" in listing
            assert "/openstack/latest/user_data" in listing

        # Suspend keeps the memory: after resume the guest goes on counting, no reboot.
        before = ticks(await again.console_output(UUID1))
        await again.suspend(UUID1)
        assert process.find(files.pidfile, UUID1) is None
        assert (await again.guest_info(UUID1)).power_state == states.POWER_SUSPENDED
        await again.resume(spec(image, config_drive=True, user_data=user_data))
        assert (await again.guest_info(UUID1)).power_state == states.RUNNING
        await console_shows(again, UUID1, f"(?m)^tick {max(before) + 2}\\b")
        text = await again.console_output(UUID1)
        assert boots(text) == [1]

        # Delete: no process, no socket, no directory left.
        pid = process.find(files.pidfile, UUID1)
        assert pid is not None
        await again.destroy(UUID1)
        assert not process.alive(pid, UUID1)
        assert not files.run.exists() and not files.data.exists()
        assert not list(state.rglob("*.sock"))
        with pytest.raises(GuestNotFound):
            await again.guest_info(UUID1)
        await again.destroy(UUID1)  # idempotent
    run(go())


def test_spawn_failure_leaves_nothing(tmp_path: Path, image: test_guest.TestGuest) -> None:
    async def go() -> None:
        driver = QemuDriver(tmp_path / "h1", image_cache_interval=0)
        await driver.init_host("h1")
        broken = spec(image, image_id="gone", image_path=str(tmp_path / "missing"))
        with pytest.raises(SpawnFailed, match="not readable"):
            await driver.spawn(broken)
        assert await driver.list_guests() == []
        assert not (tmp_path / "h1" / "instances" / UUID1).exists()
        assert not (tmp_path / "h1" / "guests" / UUID1).exists()
        # QEMU itself refuses (an impossible amount of memory): nothing remains either.
        with pytest.raises(SpawnFailed, match="QEMU"):
            await driver.spawn(dataclasses.replace(spec(image), memory_mb=1 << 40))
        assert await driver.list_guests() == []
        assert not (tmp_path / "h1" / "instances" / UUID1).exists()
    run(go())


def test_command_line(tmp_path: Path, image: test_guest.TestGuest) -> None:
    async def go() -> None:
        driver = QemuDriver(tmp_path / "h1", virt_type="qemu", image_cache_interval=0)
        await driver.init_host("h1")
        port = {"port_id": "p1", "mac_address": "fa:16:3e:00:00:01", "vif_type": "user"}
        dom = await driver._define(spec(image, network_info=[port]))
        args = cmdline.argv(dom, "qemu-system-x86_64")
        joined = " ".join(args)
        assert "-machine q35 -accel tcg" in joined and "-m 128" in joined
        assert "-daemonize" in args and "-pidfile" in args and "-no-shutdown" not in args
        assert f"cache={driver.cache_mode}" in joined
        assert "virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01" in joined
        assert "-kernel" in args and "-initrd" in args
        assert dom["nics"][0]["port_id"] == "p1"
        # ext4 and xfs take O_DIRECT: the migration-safe cache mode.
        assert driver.cache_mode == ("none" if disks_direct(tmp_path) else "writeback")
    run(go())


def disks_direct(where: Path) -> bool:
    from gureum.virt.qemu.driver import direct_io_works

    return direct_io_works(where)


def test_image_cache_cleaner(tmp_path: Path) -> None:
    instances = tmp_path / "instances"
    base_dir = instances / disks.BASE_DIR
    base_dir.mkdir(parents=True)

    async def go() -> None:
        for name in ("used", "unused-old", "unused-new"):
            (base_dir / name).write_bytes(b"\0" * 4096)
        old = time.time() - 7200
        for name in ("used", "unused-old"):
            os.utime(base_dir / name, (old, old))
        guest = instances / UUID1
        guest.mkdir()
        await disks.create_overlay(guest / "disk", base_dir / "used", "raw", 0)
        assert disks.backing_file(guest / "disk") == str(base_dir / "used")
        assert disks.clean_image_cache(instances, max_age=3600) == ["unused-old"]
        assert sorted(p.name for p in base_dir.iterdir() if not p.name.startswith(".")) \
            == ["unused-new", "used"]
    run(go())


def test_missing_qemu_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    settings = make_settings(tmp_path, compute={"driver": "qemu"})
    monkeypatch.setenv("PATH", str(tmp_path))  # no QEMU on it
    with pytest.raises(ConfigError, match="apt-get install qemu-system-x86"):
        make_driver(settings, "c01")


@pytest.fixture(autouse=True)
def _no_guest_left(tmp_path: Path) -> Any:
    """Whatever a test did, no QEMU of its directory survives it."""
    yield
    test_guest.kill_guests_under(tmp_path)


def test_rescue_boots_the_rescue_image_with_the_disk_attached_then_a_host_reboot(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    """Rescue: a fresh copy of the image boots (its own boot counter), the guest's disk
    is the second disk, untouched; unrescue boots the guest's disk again. Then the host
    "reboots" (its QEMU killed): the guest is SHUTDOWN, and a hard reboot (what
    resume_guests_state_on_host_boot does) starts it from its definition."""
    async def go() -> None:
        driver = QemuDriver(tmp_path / "h1", image_cache_interval=0)
        await driver.init_host("h1")
        try:
            await driver.spawn(spec(image))
            await console_shows(driver, UUID1, test_guest.READY)
            await driver.power_off(UUID1, timeout=30, retry_interval=5)
            files = driver.files(UUID1)
            disk_before = files.disk.read_bytes()
            offset = len(await driver.console_output(UUID1))

            await driver.rescue(spec(image), rescue_image_path=str(image.disk))
            assert (await driver.guest_info(UUID1)).power_state == states.RUNNING
            text = await console_shows(driver, UUID1, test_guest.READY, after=offset)
            assert boots(text) == [1]  # the rescue disk's own counter, not the guest's
            dom = json.loads(files.domain.read_text())
            assert [d["path"] for d in dom["disks"]] == [str(files.rescue_disk),
                                                         str(files.disk)]
            await driver.power_off(UUID1, timeout=30, retry_interval=5)
            assert files.disk.read_bytes() == disk_before  # untouched

            offset = len(await driver.console_output(UUID1))
            await driver.unrescue(spec(image))
            text = await console_shows(driver, UUID1, test_guest.READY, after=offset)
            assert boots(text) == [2]  # the guest's own disk again
            assert not files.rescue_disk.exists()

            # The host goes down: its QEMU processes die with it.
            pid = process.find(files.pidfile, UUID1)
            assert pid is not None
            os.kill(pid, 9)
            assert await process.wait_gone(pid, UUID1, 10)
            restarted = QemuDriver(tmp_path / "h1", image_cache_interval=0)
            await restarted.init_host("h1")
            assert (await restarted.guest_info(UUID1)).power_state == states.SHUTDOWN
            assert not files.qmp.exists()  # the dead QEMU's socket is cleaned up
            await restarted.reboot(spec(image), hard=True)
            assert (await restarted.guest_info(UUID1)).power_state == states.RUNNING
        finally:
            await driver.destroy(UUID1)
    run(go())


def test_image_cache_keeps_what_defined_guests_boot(tmp_path: Path,
                                                    image: test_guest.TestGuest) -> None:
    """Kernels and ramdisks are no disk's base: the driver marks those of its guests as
    used before the cleaner looks, so they stay; unused ones go."""
    async def go() -> None:
        driver = QemuDriver(tmp_path / "h1", image_cache_interval=0, image_cache_max_age=60)
        await driver.init_host("h1")
        base_dir = driver.instances_dir / disks.BASE_DIR
        await driver.spawn(spec(image))
        await driver.power_off(UUID1, timeout=0, retry_interval=1)
        (base_dir / "stale").write_bytes(b"x")
        old = time.time() - 3600
        for name in ("test-kernel", "test-initrd", "test-disk", "stale"):
            os.utime(base_dir / name, (old, old))
        assert await driver.clean_image_cache() == ["stale"]
        await driver.destroy(UUID1)  # now nothing uses them: the disk's base is old…
        os.utime(base_dir / "test-kernel", (old, old))
        os.utime(base_dir / "test-initrd", (old, old))
        assert sorted(await driver.clean_image_cache()) == [
            "test-disk", "test-initrd", "test-kernel"]
    run(go())


def test_config_drive_network_data_gives_the_mtu_and_follows_the_ports_at_hard_reboot(
        tmp_path: Path, image: test_guest.TestGuest) -> None:
    """S7 without DHCP: the config drive's network_data.json (Nova's) gives the guest its
    NIC's MTU and static address; a hard reboot writes it anew from the spec's ports (a
    NIC attached since is in it), as Nova's does."""
    from gureum import testimage

    def port(n: int, mtu: int) -> dict[str, Any]:
        sn = {"id": f"s{n}", "cidr": f"10.{n}.0.0/24", "ip_version": 4,
              "gateway_ip": f"10.{n}.0.1", "enable_dhcp": False, "dns_nameservers": [],
              "host_routes": []}
        return {"port_id": f"0b6c7c3e-{n:04d}-4a4a-8b8b-00000000000{n}",
                "network_id": f"net{n}", "mac_address": f"fa:16:3e:00:00:0{n}",
                "mtu": mtu, "vif_type": "user", "subnets": [sn],
                "fixed_ips": [{"ip_address": f"10.{n}.0.5", "subnet_id": sn["id"]}]}

    fields = image.spec_fields()
    fields["image_properties"]["os_command_line"] = (testimage.DEFAULT_COMMAND_LINE
                                                     + " gureum.dhcp=0")

    async def go() -> None:
        driver = QemuDriver(tmp_path / "h1", virt_type="qemu", image_cache_interval=0)
        await driver.init_host("h1")
        one = GuestSpec(id=UUID1, name="instance-00000001", vcpus=1, memory_mb=128,
                        root_gb=1, hostname="vm1", config_drive=True,
                        network_info=[port(1, 1450)], **fields)
        try:
            await driver.spawn(one)
            text = await console_shows(driver, UUID1, "(?m)^GUREUM-READY")
            assert "GUREUM-NETDATA eth0 mtu 1450" in text, text[-2000:]
            assert "GUREUM-NETDATA eth0 ipv4 10.1.0.5/24" in text, text[-2000:]
            assert "eth1" not in text
            listing = subprocess.run(
                ["isoinfo", "-R", "-f", "-i", str(driver.files(UUID1).config_drive)],
                capture_output=True, text=True, check=False).stdout
            if listing:
                assert "/openstack/latest/network_data.json" in listing
                assert "/openstack/2015-10-15/network_data.json" in listing
                assert "/openstack/2013-10-17/network_data.json" not in listing
                assert "/openstack/2013-10-17/meta_data.json" in listing

            # A second port (attached since, as the database says): the hard reboot's
            # config drive has it.
            seen = len(await driver.console_output(UUID1))
            two = dataclasses.replace(one, network_info=[port(1, 1450), port(2, 1400)])
            await driver.reboot(two, hard=True)
            text = await console_shows(driver, UUID1, "(?m)^GUREUM-READY", after=seen)
            assert "GUREUM-NETDATA eth0 mtu 1450" in text, text[-2000:]
            assert "GUREUM-NETDATA eth1 mtu 1400" in text, text[-2000:]
            assert "GUREUM-NETDATA eth1 ipv4 10.2.0.5/24" in text, text[-2000:]
        finally:
            await driver.destroy(UUID1)
    run(go())


class _Killed(BaseException):
    """The agent dies where it is: no except clause of the driver runs."""


def test_a_swap_cut_after_the_shrink_gives_the_new_volume_its_size_back(
        tmp_path: Path, image: test_guest.TestGuest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running guest's swap shrinks the larger new volume to the old one's size for
    the mirror; an agent killed right then leaves it shrunk in the running QEMU. The
    next call (a new driver: the agent restarted) finishes the swap and the new volume
    has its own size again, as the guest sees; so does a stopped guest's swap (a file
    copy) after the same cut. A failure after the pivot is no failure: the guest reads
    the new volume."""
    from gureum.virt.qemu import domain, monitor

    state, instances = tmp_path / "h1", tmp_path / "instances"
    mib = 1 << 20

    def vol(name: str, size: int) -> tuple[dict[str, Any], Path]:
        path = tmp_path / f"volume-{name}"
        with path.open("wb") as fh:
            fh.truncate(size)
        return ({"driver_volume_type": "file",
                 "data": {"path": str(path), "format": "raw", "volume_id": name}}, path)

    v1, p1 = vol("5a2f8c3e-0b6d-4e1f-9a7c-1d2e3f405162", mib)
    v2, p2 = vol("6b3f9d4f-1c7e-4f20-8b8d-2e3f40516273", 2 * mib)
    v3, p3 = vol("7c4fad50-2d8f-4031-9c9e-3f4051627384", 4 * mib)
    with p1.open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"GUREUM-SWAP-DATA")
    ids = [v["data"]["volume_id"] for v in (v1, v2, v3)]
    execute = monitor.Session.execute

    async def cut_at_the_mirror(self: monitor.Session, command: str, *args: Any,
                                **kwargs: Any) -> Any:
        if command == "blockdev-mirror":
            raise _Killed()
        return await execute(self, command, *args, **kwargs)

    async def go() -> None:
        first = QemuDriver(state, instances, image_cache_interval=0)
        await first.init_host("h1")
        bd = {"volume_id": ids[0], "device_name": "/dev/vdb", "boot_index": None,
              "connection_info": v1}
        await first.spawn(spec(image, block_devices=[bd]))
        await console_shows(first, UUID1, "(?m)^tick 1")
        with monkeypatch.context() as m:
            m.setattr(monitor.Session, "execute", cut_at_the_mirror)
            with pytest.raises(_Killed):
                await first.swap_volume(UUID1, ids[0], v2)
        assert p2.stat().st_size == mib  # shrunk, in the QEMU that runs on
        await first.cleanup_host()

        again = QemuDriver(state, instances, image_cache_interval=0)
        await again.init_host("h1")
        await again.swap_volume(UUID1, ids[0], v2)
        assert p2.stat().st_size == 2 * mib
        assert p2.read_bytes()[4096:4096 + 16] == b"GUREUM-SWAP-DATA"
        dom = domain.load(again.files(UUID1)) or {}
        assert [v["volume_id"] for v in dom["volumes"]] == [ids[1]]
        assert "swap_size" not in dom
        await console_shows(again, UUID1, rf"GUREUM-DISK-SIZE vdb {2 * mib}")

        # The same cut, then the guest stops: the file copy gives the size back.
        with monkeypatch.context() as m:
            m.setattr(monitor.Session, "execute", cut_at_the_mirror)
            with pytest.raises(_Killed):
                await again.swap_volume(UUID1, ids[1], v3)
        assert p3.stat().st_size == 2 * mib
        await again.power_off(UUID1, timeout=0, retry_interval=1)
        await again.swap_volume(UUID1, ids[1], v3)
        assert p3.stat().st_size == 4 * mib
        assert p3.read_bytes()[4096:4096 + 16] == b"GUREUM-SWAP-DATA"

        # QEMU fails after the pivot (the finished job's dismissal): the guest reads the
        # new volume, so the swap is made, at the new volume's size.
        await again.power_on(spec(image, block_devices=[
            {**bd, "volume_id": ids[2], "connection_info": v3}]))
        v4, p4 = vol(V4 := "8d50be61-3e90-4142-adaf-405162738495", 8 * mib)
        refused: list[str] = []

        async def dismissal_fails(self: monitor.Session, command: str, *args: Any,
                                  **kwargs: Any) -> Any:
            if command == "job-dismiss" and not refused:
                refused.append(command)
                raise monitor.MonitorError("QEMU refused job-dismiss", "GenericError")
            return await execute(self, command, *args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(monitor.Session, "execute", dismissal_fails)
            await again.swap_volume(UUID1, ids[2], v4)
        assert refused and p4.stat().st_size == 8 * mib
        dom = domain.load(again.files(UUID1)) or {}
        assert [v["volume_id"] for v in dom["volumes"]] == [V4]
        await again.cleanup_host()

    try:
        run(go())
    finally:
        test_guest.kill_guests_under(tmp_path)
