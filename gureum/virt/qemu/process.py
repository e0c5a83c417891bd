"""QEMU processes: launch (daemonized, so guests outlive the agent), find, kill.

QEMU is started with ``-daemonize -pidfile``: the process the agent starts forks
the real QEMU into its own session and exits once QEMU is set up (sockets bound,
disks opened), with QEMU's error on stderr when it failed. The guest's process is
then no child of the agent and survives it (and a SIGKILL of its process group).

A pid file alone is not trusted (pids are reused): ``find`` also checks that
``/proc/<pid>/cmdline`` is a QEMU with the guest's ``-uuid``, and that it is not a
zombie (an orphaned QEMU is reaped by whoever is pid 1, perhaps never).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from gureum.virt.driver import DriverError

PACKAGE = "qemu-system-x86"  # the Debian package that has qemu-system-x86_64
IMG_PACKAGE = "qemu-utils"  # … and qemu-img


def find_binary(name: str = "qemu-system-x86_64") -> str:
    """The QEMU binary's path; a DriverError naming the package when it is missing."""
    path = shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK)
                                                       else None)
    if path is None:
        package = IMG_PACKAGE if name.endswith("qemu-img") else PACKAGE
        raise DriverError(f"{name} is not installed; install it with "
                          f"`apt-get install {package}` (Debian's {package} package).")
    return path


async def launch(argv: list[str], cwd: Path, pidfile: Path, timeout: float = 60.0) -> int:
    """Start a daemonizing QEMU and return the guest process's pid.

    QEMU's messages go to ``qemu.log`` beside the pid file (a file, not a pipe: the
    daemon would hold a pipe open). Raises DriverError with QEMU's own message when
    it did not start.
    """
    pidfile.unlink(missing_ok=True)
    log_path = pidfile.with_name("qemu.log")
    with log_path.open("wb") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        except OSError as exc:
            raise DriverError(f"Could not run {argv[0]}: {exc}") from exc
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise DriverError(f"QEMU did not start within {timeout:g}s.") from None
    if code != 0:
        message = log_path.read_text(errors="replace").strip() or f"exit {code}"
        raise DriverError(f"QEMU failed to start: {message}")
    pid = read_pid(pidfile)
    if pid is None:
        raise DriverError(f"QEMU started but wrote no pid file at {pidfile}.")
    return pid


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isdigit() else None


def alive(pid: int, guest_id: str) -> bool:
    """Whether pid is a live (not zombie) QEMU whose command line has ``guest_id`` (its
    -uuid) as an argument."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rpartition(")")[2].split()[:1]
    if state and state[0] in ("Z", "X"):
        return False
    if not cmdline or b"qemu-system" not in cmdline[0]:
        return False
    return guest_id.encode() in cmdline


def find(pidfile: Path, guest_id: str) -> int | None:
    """The pid of the guest's running QEMU, or None."""
    pid = read_pid(pidfile)
    return pid if pid is not None and alive(pid, guest_id) else None


async def wait_gone(pid: int, guest_id: str, timeout: float, poll: float = 0.05) -> bool:
    """Wait until the process is gone; True when it is (False on timeout)."""
    deadline = time.monotonic() + timeout
    while alive(pid, guest_id):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)
    return True


async def kill(pid: int, guest_id: str, grace: float = 5.0) -> None:
    """SIGTERM (QEMU closes its disks and exits), then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not alive(pid, guest_id):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if await wait_gone(pid, guest_id, wait):
            return
    raise DriverError(f"QEMU process {pid} of guest {guest_id} does not die.")
