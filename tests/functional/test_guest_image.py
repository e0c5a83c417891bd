"""The test guest (gureum/testimage) built here and booted under real QEMU (TCG).

What the QEMU driver and the scenarios rely on: the ready marker, the memory and
disk sizes, a boot counter that a clean ACPI power-off keeps and a forced one
loses, the ticks, the config drive, and the variant that ignores ACPI.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gureum import testimage

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed "
                                "(apt-get install qemu-system-x86)")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> testimage.GuestImage:
    try:
        return testimage.build(tmp_path_factory.mktemp("test-image"), out=None)
    except testimage.TestImageError as exc:
        pytest.fail(f"the test image cannot be built here: {exc.message}")


class Guest:
    """One qemu-system-x86_64 process: serial console to a file, QMP on a socket."""

    def __init__(self, image: testimage.GuestImage, disk: Path, workdir: Path,
                 command_line: str = testimage.DEFAULT_COMMAND_LINE,
                 extra: tuple[str, ...] = ()) -> None:
        self.console = workdir / "console.log"
        self.console.unlink(missing_ok=True)
        self.qmp_path = workdir / "qmp.sock"
        self.qmp_path.unlink(missing_ok=True)
        assert QEMU
        self.proc = subprocess.Popen(
            [QEMU, "-machine", "accel=tcg", "-m", "128", "-nodefaults", "-no-user-config",
             "-display", "none", "-serial", f"file:{self.console}",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             *image.qemu_args(disk, command_line), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text(), re.MULTILINE)
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} on the console within {timeout}s "
                             f"(qemu exit {self.proc.poll()}):\n{self.text()[-3000:]}")

    def value(self, key: str) -> str:
        return self.wait_for(rf"^{re.escape(key)}: (.*)$").group(1).strip()

    def qmp(self, command: str) -> None:
        from qemu.qmp import QMPClient

        async def run() -> None:
            client = QMPClient("test")
            await client.connect(str(self.qmp_path))
            try:
                await client.execute(command)
            finally:
                await client.disconnect()

        asyncio.run(run())

    def exits_within(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()


def ticks(guest: Guest) -> list[int]:
    return [int(n) for n in re.findall(r"^tick (\d+)$", guest.text(), re.MULTILINE)]


def config_drive(path: Path, hostname: str, user_data: str) -> Path:
    root = path / "cd"
    latest = root / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(
        f'{{"uuid": "6c7d54c4-0c51-4f4c-9c36-3f0e2b8b3f1e", "hostname": "{hostname}", '
        f'"name": "{hostname}", "launch_index": 0}}')
    (latest / "user_data").write_text(user_data)
    iso = path / "disk.config"
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-V", "config-2", "-J", "-R",
                    str(root)], check=True)
    return iso


def test_boot_counter_survives_a_clean_acpi_power_off_and_not_a_forced_one(
        image: testimage.GuestImage, tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    shutil.copyfile(image.disk, disk)
    iso = config_drive(tmp_path, "vm-test-1", "#!/bin/sh\necho hello from user data")

    # Boot 1: sizes, config drive, ticks; the power button powers it off by itself.
    guest = Guest(image, disk, tmp_path,
                  extra=("-drive", f"file={iso},if=virtio,format=raw,readonly=on"))
    try:
        guest.wait_for(rf"^{testimage.READY_MARKER}$")
        assert guest.value("ram-mb") == "128"
        assert 40 < int(guest.value("mem-total-mb")) < 128
        assert guest.value("disk-mb") == str(testimage.DISK_MB)
        assert guest.value("boot-count") == "1"
        assert guest.value("hostname") == "vm-test-1"
        assert guest.value("config-drive") == "/dev/vdb"
        assert "user-data: echo hello from user data\n" in guest.text()
        guest.wait_for(r"^tick 2$", timeout=30)
        assert ticks(guest)[:2] == [1, 2]
        guest.qmp("system_powerdown")
        assert guest.exits_within(30), "the guest did not power off on the ACPI button"
        assert "gureum-guest: powered off cleanly" in guest.text()
    finally:
        guest.kill()

    # Boot 2: the counter's write was kept; then a forced quit (no sync).
    guest = Guest(image, disk, tmp_path)
    try:
        guest.wait_for(rf"^{testimage.READY_MARKER}$")
        assert guest.value("boot-count") == "2"
        assert "hostname:" not in guest.text()  # no config drive this time
        guest.qmp("quit")
        assert guest.exits_within(30)
    finally:
        guest.kill()

    # Boot 3, the variant that ignores ACPI: boot 2's write was lost with the forced
    # quit, and the power button changes nothing.
    guest = Guest(image, disk, tmp_path,
                  command_line=f"{testimage.DEFAULT_COMMAND_LINE} "
                  f"{testimage.IGNORE_ACPI_ARG}")
    try:
        guest.wait_for(rf"^{testimage.READY_MARKER}$")
        assert guest.value("boot-count") == "2"
        assert "acpi: ignored" in guest.text()
        guest.qmp("system_powerdown")
        before = max(ticks(guest), default=0)
        guest.wait_for(rf"^tick {before + 3}$", timeout=30)
        assert guest.proc.poll() is None
    finally:
        guest.kill()


def test_a_second_build_is_the_cached_one(image: testimage.GuestImage) -> None:
    started = time.monotonic()
    again = testimage.build(image.directory.parent, out=None)
    assert again == image
    assert time.monotonic() - started < 1


def test_initramfs_loads_each_module_after_what_it_needs(
        image: testimage.GuestImage) -> None:
    sources = testimage.find_sources()
    order = [testimage._module_name(p) for p in testimage.module_order(sources.modules_dir)]
    for first, then in (("virtio_ring", "virtio_pci"), ("virtio", "virtio_blk"),
                        ("jbd2", "ext4"), ("cdrom", "isofs"), ("failover", "virtio_net")):
        assert order.index(first) < order.index(then)
    archive = gzip.decompress(image.ramdisk.read_bytes())
    assert b"etc/modules-order" in archive and b"lib/modules/virtio_blk.ko" in archive
    listed = subprocess.run(["cpio", "-t", "--quiet"], input=archive, capture_output=True,
                            check=True).stdout.decode().split()
    assert {"init", "bin/busybox", "etc/acpi/PWRF/00000080", "dev/console"} <= set(listed)
