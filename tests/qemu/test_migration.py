"""Live migration over QMP (virt/qemu/migration.py) between real QEMU processes started
here: the test guest keeps ticking across a memory-only move, a block migration
carries the disk's data, an abort or a destination that is gone leaves the source
running. One guest boots once for the module and is moved from test to test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gureum.virt.driver import MigrationFailed
from gureum.virt.qemu import migration
from gureum.virt.qemu.migration import MigrationOptions, Outgoing, Target
from gureum.virt.qemu.monitor import Monitor
from tests.qemu import guest as test_guest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(test_guest.missing() is not None,
                                                   reason=str(test_guest.missing()))]

GUEST = "9a3c1e52-0000-4000-8000-00000000beef"
BOOT_TIMEOUT = 240.0
OPTIONS = MigrationOptions()


@dataclass
class Vm:
    """One QEMU process of the guest (a host's copy of it)."""

    name: str
    dir: Path
    disk: Path

    @property
    def console(self) -> Path:
        return self.dir / "console.log"

    @property
    def mon(self) -> Monitor:
        return Monitor(self.dir / "qmp.sock", GUEST)

    def pid(self) -> int | None:
        try:
            pid = int((self.dir / "qemu.pid").read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        stat = Path(f"/proc/{pid}/stat").read_text()
        return None if stat.rpartition(")")[2].split()[0] == "Z" else pid

    def kill(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.05)

    def ticks(self) -> list[int]:
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        return [int(n) for n in re.findall(r"(?m)^tick (\d+)", text)]


def start(image: test_guest.TestGuest, root: Path, name: str, disk: Path,
          incoming: bool = False) -> Vm:
    vm = Vm(name, root / name, disk)
    vm.dir.mkdir(parents=True)
    argv = ["qemu-system-x86_64", "-name", f"guest={name}", "-uuid", GUEST,
            "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "128", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", "console=ttyS0 quiet panic=-1",
            "-drive", f"file={disk},if=none,id=disk0,format=qcow2,cache=writeback",
            "-device", "virtio-blk-pci,drive=disk0,id=dev-disk0",
            "-chardev", f"file,id=serial0,path={vm.console},append=on",
            "-serial", "chardev:serial0",
            "-qmp", f"unix:{vm.dir / 'qmp.sock'},server=on,wait=off",
            "-daemonize", "-pidfile", str(vm.dir / "qemu.pid")]
    if incoming:
        argv += ["-incoming", "defer"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return vm


def overlay(image: test_guest.TestGuest, path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk),
                    "-F", "qcow2", str(path)], check=True)
    return path


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


class Guest:
    """Where the module's one guest runs now."""

    def __init__(self, image: test_guest.TestGuest, root: Path) -> None:
        self.image = image
        self.root = root
        self.vms: list[Vm] = []
        self.here: Vm | None = None

    def start(self, name: str, disk: Path, incoming: bool = False) -> Vm:
        vm = start(self.image, self.root, name, disk, incoming)
        self.vms.append(vm)
        return vm


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    root = tmp_path_factory.mktemp("qmig")
    image = test_guest.build(tmp_path_factory.mktemp("image"))
    g = Guest(image, root)
    first = g.start("h1", overlay(image, root / "shared.qcow2"))
    g.here = first
    try:
        wait_for(lambda: first.ticks(), BOOT_TIMEOUT, "the guest's first tick")
        yield g
    finally:
        for vm in g.vms:
            vm.kill()


def run(coro: Any, uvloop: bool = False) -> Any:
    """``uvloop``: on the loop `gureum up` runs its agents on (its sockets differ)."""
    if not uvloop:
        return asyncio.run(coro)
    import uvloop as uv

    with asyncio.Runner(loop_factory=uv.new_event_loop) as runner:
        return runner.run(coro)


async def status(vm: Vm) -> str:
    return str((await vm.mon.execute("query-status"))["status"])


def test_memory_only_migration_keeps_the_guest_ticking(guest: Guest) -> None:
    source = guest.here
    assert source is not None
    dest = guest.start("h2", source.disk, incoming=True)  # shared disk: memory only

    async def go() -> dict[str, Any]:
        target = await migration.listen(dest.mon, OPTIONS, GUEST, drives=[])
        assert Target.parse(target.uri()) == target
        assert not await migration.arrived(dest.mon)
        stats = await Outgoing(source.mon, GUEST, target, OPTIONS, block=False).run()
        assert await status(source) == "postmigrate"
        assert await migration.arrived(dest.mon)
        assert await status(dest) == "running"
        await source.mon.execute("quit")
        return dict(stats)

    last = source.ticks()[-1]
    stats = run(go())
    assert isinstance(stats["downtime_ms"], int) and 0 <= stats["downtime_ms"] < 10_000
    assert stats["memory_total_bytes"] >= 128 << 20 and stats["block_migration"] is False
    after = wait_for(lambda: [t for t in dest.ticks() if t > last + 1], 60, "ticks on h2")
    assert dest.ticks()[0] > 1  # the destination never booted: it went on counting
    assert after[0] > last
    wait_for(lambda: source.pid() is None, 10, "the source QEMU to exit")
    guest.here = dest


def test_block_migration_moves_the_disk_with_its_data(guest: Guest) -> None:
    source = guest.here
    assert source is not None
    own = overlay(guest.image, guest.root / "h3.qcow2")  # an empty disk on the same base
    dest = guest.start("h3", own, incoming=True)

    async def go() -> dict[str, Any]:
        # Data only the source's disk has (written through the guest's block device).
        await source.mon.execute("human-monitor-command", {
            "command-line": "qemu-io disk0 \"write -P 0x5a 56M 256k\""})
        target = await migration.listen(dest.mon, OPTIONS, GUEST, drives=["disk0"])
        stats = await Outgoing(source.mon, GUEST, target, OPTIONS, block=True).run()
        assert await migration.arrived(dest.mon)
        await migration.settle(dest.mon)
        await source.mon.execute("quit")
        return dict(stats)

    last = source.ticks()[-1]
    stats = run(go(), uvloop=True)  # the NBD socket is handed to QEMU over uvloop's socket
    assert stats["block_migration"] is True and stats["disk_total_bytes"] > 0
    assert stats["downtime_ms"] >= 0
    wait_for(lambda: [t for t in dest.ticks() if t > last + 1], 60, "ticks on h3")
    guest.here = dest
    wait_for(lambda: source.pid() is None, 10, "the source QEMU to exit")
    # The destination's disk holds what the source's had: the data written above.
    check = subprocess.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c",
                            "read -P 0x5a 56M 256k", str(own)],
                           capture_output=True, text=True, check=True)
    assert "verification failed" not in check.stdout + check.stderr


def test_abort_leaves_the_guest_running_on_the_source(guest: Guest) -> None:
    source = guest.here
    assert source is not None
    dest = guest.start("h4", overlay(guest.image, guest.root / "h4.qcow2"), incoming=True)
    slow = MigrationOptions(bandwidth_mib=0.01, downtime_ms=1)

    async def go() -> None:
        target = await migration.listen(dest.mon, slow, GUEST, drives=["disk0"])
        moving = Outgoing(source.mon, GUEST, target, slow, block=True)
        task = asyncio.ensure_future(moving.run())
        await asyncio.sleep(1.0)
        assert not task.done()
        await moving.abort()
        with pytest.raises(MigrationFailed, match="aborted"):
            await asyncio.wait_for(task, 30)
        assert await status(source) == "running"
        assert await source.mon.execute("query-jobs") == []
        assert not await migration.arrived(dest.mon)

    run(go())
    dest.kill()
    last = source.ticks()[-1]
    wait_for(lambda: source.ticks()[-1] > last + 1, 60, "ticks going on on the source")


def test_a_destination_that_is_gone_leaves_the_guest_running(guest: Guest) -> None:
    source = guest.here
    assert source is not None
    dest = guest.start("h5", overlay(guest.image, guest.root / "h5.qcow2"), incoming=True)

    async def go() -> None:
        memory = await migration.listen(dest.mon, OPTIONS, GUEST, drives=[])
        dest.kill()
        with pytest.raises(MigrationFailed, match="keeps running"):
            await Outgoing(source.mon, GUEST, memory, OPTIONS, block=False).run()
        assert await status(source) == "running"
        unprepared = Target(memory.host, memory.port, GUEST)
        with pytest.raises(MigrationFailed, match="not prepared"):
            await Outgoing(source.mon, GUEST, unprepared, OPTIONS, block=True).run()
        with pytest.raises(MigrationFailed, match="Not a QEMU"):
            Target.parse("tcp:127.0.0.1:1")

    run(go())
    last = source.ticks()[-1]
    wait_for(lambda: source.ticks()[-1] > last + 1, 60, "ticks going on on the source")
