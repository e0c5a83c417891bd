"""The test guest (``gureum.testimage``) as the QEMU driver's tests use it.

``build(directory)`` builds (or finds) the guest and returns a ``TestGuest`` whose
``spec_fields`` are what the agent puts into a GuestSpec for the ``cirros``
image: the disk image, the kernel_id/ramdisk_id/os_command_line properties, and
the kernel and ramdisk files in ``extra``. What the guest prints is described in
``gureum/testimage/__init__.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gureum import testimage

READY = testimage.READY_MARKER
CLEAN_OFF = "gureum-guest: powered off cleanly"


@dataclass(frozen=True)
class TestGuest:
    __test__ = False  # not a pytest test class

    kernel: Path
    initrd: Path
    disk: Path

    def spec_fields(self, ignore_acpi: bool = False) -> dict[str, Any]:
        """GuestSpec fields as the agent fills them for the kernel/ramdisk image."""
        command_line = testimage.DEFAULT_COMMAND_LINE
        if ignore_acpi:
            command_line += " " + testimage.IGNORE_ACPI_ARG
        return {
            "image_id": "test-disk", "image_path": str(self.disk),
            "image_properties": {"kernel_id": "test-kernel", "ramdisk_id": "test-initrd",
                                 "os_command_line": command_line},
            "extra": {"kernel_path": str(self.kernel), "ramdisk_path": str(self.initrd)},
        }


def build(directory: Path) -> TestGuest:
    image = testimage.build(directory, out=None)
    return TestGuest(image.kernel, image.ramdisk, image.disk)


def missing() -> str | None:
    """Why the test guest cannot boot here (None: it can)."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    if shutil.which("qemu-img") is None:
        return "qemu-img is not installed (apt-get install qemu-utils)"
    try:
        testimage.find_sources()
    except testimage.TestImageError as exc:
        return f"the test guest cannot be built: {exc}"
    return None


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
