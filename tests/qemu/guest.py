"""A tiny test guest for the QEMU driver's tests: the host's Debian kernel and a
busybox initramfs built here (cpio, no root needed).

Its init loads the virtio and ACPI button modules, keeps a boot counter in the
first bytes of its disk (/dev/vda), prints ``GUREUM-BOOT <n>``, starts busybox
``acpid`` whose power-button handler prints ``GUREUM-POWERDOWN``, syncs and powers
off (unless the kernel command line has ``gureum_ignore_acpi=1``), prints
``GUREUM-READY`` and then a tick every second.

``build(directory)`` writes ``vmlinuz``, ``initrd`` and ``disk.raw`` there (once)
and returns their paths; ``spec_extra`` turns them into GuestSpec fields the way
the agent fills them (kernel_id/ramdisk_id image properties, paths in ``extra``).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import os
import shutil
import signal
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
           "virtio_pci", "virtio_blk", "evdev", "button")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in MODULES; do insmod /lib/modules/$m.ko || echo "GUREUM-NOMOD $m"; done
n=$(dd if=/dev/vda bs=16 count=1 2>/dev/null | tr -dc 0-9)
n=$(( ${n:-0} + 1 ))
printf '%-15s\n' "$n" | dd of=/dev/vda bs=16 count=1 conv=notrunc 2>/dev/null
echo "GUREUM-BOOT $n"
echo "GUREUM-MEM $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho GUREUM-POWERDOWN > /dev/ttyS0\nsync\npoweroff -f\n' \
    > /etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
echo "GUREUM-INPUT $(ls /dev/input 2>&1 | tr "\n" " ")"
if [ "$gureum_ignore_acpi" != 1 ]; then acpid -f -l /dev/null -c /etc/acpi & fi
echo GUREUM-READY
i=0
while true; do sleep 1; i=$((i + 1)); echo "GUREUM-TICK $i"; done
""".replace("MODULES", " ".join(MODULES))


@dataclass(frozen=True)
class TestGuest:
    kernel: Path
    initrd: Path
    disk: Path

    def spec_fields(self, ignore_acpi: bool = False) -> dict[str, Any]:
        """GuestSpec fields as the agent fills them for a kernel/ramdisk image."""
        cmdline = "console=ttyS0 quiet panic=-1"
        if ignore_acpi:
            cmdline += " gureum_ignore_acpi=1"
        return {
            "image_id": "test-disk", "image_path": str(self.disk),
            "image_properties": {"kernel_id": "test-kernel", "ramdisk_id": "test-initrd",
                                 "os_command_line": cmdline},
            "extra": {"kernel_path": str(self.kernel), "ramdisk_path": str(self.initrd)},
        }


def kill_guests_under(directory: Path) -> list[int]:
    """Kill every QEMU whose pid file is under ``directory`` (a test's leftovers);
    only processes that really are a QEMU with that pid file are touched."""
    killed = []
    for pidfile in directory.rglob("qemu.pid"):
        try:
            pid = int(pidfile.read_text().strip())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if argv and b"qemu-system" in argv[0] and str(pidfile).encode() in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def kernel_release() -> str | None:
    """The newest kernel with both /boot/vmlinuz-* and its modules."""
    for path in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        release = path.removeprefix("/boot/vmlinuz-")
        if Path(f"/lib/modules/{release}").is_dir() and os.access(path, os.R_OK):
            return release
    return None


def missing() -> str | None:
    """Why the test guest cannot be built here (None: it can)."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    if shutil.which("qemu-img") is None:
        return "qemu-img is not installed (apt-get install qemu-utils)"
    if kernel_release() is None:
        return "no readable /boot/vmlinuz-* with modules (apt-get install linux-image-amd64)"
    if not _static_busybox():
        return "no static busybox (apt-get install busybox-static)"
    return None


def _static_busybox() -> str | None:
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(path).is_file() and b"ld-linux" not in Path(path).read_bytes()[:8192]:
            return path
    return None


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data) entries."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        raw = name.encode() + b"\0"
        head = (f"070701{ino:08x}{mode:08x}{0:08x}{0:08x}{1:08x}{0:08x}{len(data):08x}"
                f"{0:08x}{0:08x}{0:08x}{0:08x}{len(raw):08x}{0:08x}").encode()
        out.write(head + raw)
        out.write(b"\0" * (-(len(head) + len(raw)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return out.getvalue()


def _module(release: str, name: str) -> bytes:
    found = glob.glob(f"/lib/modules/{release}/kernel/**/{name}.ko*", recursive=True)
    if not found:
        raise FileNotFoundError(f"module {name} of {release}")
    data = Path(found[0]).read_bytes()
    if found[0].endswith(".xz"):
        import lzma
        return lzma.decompress(data)
    if found[0].endswith(".zst"):
        raise FileNotFoundError(f"module {found[0]} is zstd-compressed")
    return data


def build(directory: Path) -> TestGuest:
    directory.mkdir(parents=True, exist_ok=True)
    guest = TestGuest(directory / "vmlinuz", directory / "initrd", directory / "disk.raw")
    if guest.kernel.exists() and guest.initrd.exists() and guest.disk.exists():
        return guest
    release = kernel_release()
    busybox = _static_busybox()
    assert release and busybox, missing()
    dirs = stat.S_IFDIR | 0o755
    entries: list[tuple[str, int, bytes]] = [
        (d, dirs, b"") for d in ("bin", "dev", "proc", "sys", "etc", "lib", "lib/modules",
                                 "tmp", "sbin", "usr", "usr/bin", "usr/sbin")]
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, Path(busybox).read_bytes()))
    entries.append(("init", stat.S_IFREG | 0o755, INIT.encode()))
    entries += [(f"lib/modules/{m}.ko", stat.S_IFREG | 0o644, _module(release, m))
                for m in MODULES]
    tmp = directory / ".initrd.part"
    tmp.write_bytes(gzip.compress(_cpio(entries), 6))
    os.replace(tmp, guest.initrd)
    shutil.copyfile(f"/boot/vmlinuz-{release}", guest.kernel)
    with open(guest.disk, "wb") as fh:
        fh.truncate(16 << 20)
    return guest
