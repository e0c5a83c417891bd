"""The one adapter over QMP (the ``qemu.qmp`` library): connect, run, map errors.

Every call opens its own QMP session on the guest's socket and closes it after
(a session costs a few milliseconds; a QEMU monitor serves one client at a time,
so nothing is held between calls and another process, a restarted agent or an
operator's tool, can always get in). Calls that share a ``lock`` (the driver
gives one per guest) take turns.

Errors: the socket or process gone (no socket, refused, hung up) raises
``MonitorGone`` (a GuestNotFound: no QEMU answers for the guest); a command QEMU
refused raises ``MonitorError`` (a DriverError) with QEMU's class and message;
no answer within the timeout raises ``MonitorError`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, ExecInterruptedError, QMPClient, QMPError
from qemu.qmp.qmp_client import ExecuteError

from gureum.virt.driver import DriverError, GuestNotFound

# qemu.qmp logs every failed connection at ERROR; the driver reports them itself.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
log = logging.getLogger("gureum.virt.qemu")


class MonitorGone(GuestNotFound):
    """No QEMU answers on the guest's monitor socket (not running)."""


class MonitorError(DriverError):
    """QEMU refused a command or did not answer in time."""

    def __init__(self, message: str, error_class: str = "") -> None:
        super().__init__(message)
        self.error_class = error_class


def _unix_socket(path: Path) -> socket.socket:
    """A connected socket to ``path``, whatever its length (through /proc/self/fd)."""
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(f"/proc/self/fd/{fd}/{path.name}")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(fd)
    return sock


class Session:
    """An open QMP session on one guest (see ``Monitor.session``)."""

    def __init__(self, client: QMPClient, guest_id: str, timeout: float,
                 sock: socket.socket | None = None) -> None:
        self.client = client
        self.guest_id = guest_id
        self.timeout = timeout
        self.sock = sock

    def send_fd(self, fd: int) -> None:
        """Hand QEMU a file descriptor (SCM_RIGHTS) for a following ``getfd``. Sent on
        the session's own socket: qemu.qmp's send_fd_scm reaches into asyncio's socket
        wrapper (``._sock``), which uvloop, the loop `gureum up` runs on, lacks."""
        if self.sock is None:
            self.client.send_fd_scm(fd)
            return
        try:
            socket.send_fds(self.sock, [b" "], [fd])
        except OSError as exc:
            raise MonitorError(f"Cannot pass a file descriptor to the QEMU of guest "
                               f"{self.guest_id}: {exc}") from exc

    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      timeout: float | None = None) -> Any:
        try:
            return await asyncio.wait_for(self.client.execute(command, arguments),
                                          timeout or self.timeout)
        except ExecuteError as exc:
            raise MonitorError(f"QEMU refused {command} for guest {self.guest_id}: {exc}",
                               exc.error_class) from exc
        except ExecInterruptedError as exc:
            raise MonitorGone(f"The QEMU of guest {self.guest_id} hung up during "
                              f"{command}.") from exc
        except TimeoutError:
            raise MonitorError(f"QEMU of guest {self.guest_id} did not answer {command} "
                               f"within {timeout or self.timeout:g}s.") from None
        except QMPError as exc:
            raise MonitorError(f"QMP {command} for guest {self.guest_id} failed: "
                               f"{exc}") from exc


GREETING_TRIES = 4


class Monitor:
    """The QMP monitor of one guest: its socket path and the guest's id."""

    def __init__(self, path: Path, guest_id: str, timeout: float = 10.0,
                 lock: asyncio.Lock | None = None) -> None:
        self.path = Path(path)
        self.guest_id = guest_id
        self.timeout = timeout
        self.lock = lock or asyncio.Lock()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        async with self.lock:
            client, sock = await self._connect()
            try:
                yield Session(client, self.guest_id, self.timeout, sock)
            finally:
                with contextlib.suppress(Exception):
                    await client.disconnect()

    async def _connect(self) -> tuple[QMPClient, socket.socket]:
        """A greeted QMP client on the guest's socket.

        A QEMU busy with a migration may not have noticed that the last client hung
        up, and hands the next one what it still had for the old session (an event, a
        reply) before its greeting: that is not a guest gone, so such a session is
        tried again, GREETING_TRIES times in all, and then reported as an error, never
        as a missing guest (which the agent would report as lost).
        """
        for attempt in range(1, GREETING_TRIES + 1):
            client = QMPClient(f"gureum-{self.guest_id}")
            try:
                sock = _unix_socket(self.path)
            except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
                raise MonitorGone(f"No QEMU runs for guest {self.guest_id} ({exc.strerror})."
                                  ) from exc
            except OSError as exc:
                raise MonitorError(f"Cannot reach the monitor of guest {self.guest_id}: "
                                   f"{exc}") from exc
            try:
                await asyncio.wait_for(client.connect(sock), self.timeout)
            except TimeoutError:
                sock.close()
                raise MonitorError(f"The monitor of guest {self.guest_id} did not greet "
                                   f"within {self.timeout:g}s (another client holds it?)."
                                   ) from None
            except ConnectError as exc:
                sock.close()
                if "Greeting" not in str(exc):
                    raise MonitorGone(f"The QEMU of guest {self.guest_id} hung up: {exc}"
                                      ) from exc
                if attempt == GREETING_TRIES:
                    raise MonitorError(f"The monitor of guest {self.guest_id} answered "
                                       f"without a greeting {attempt} times: {exc}") from exc
                log.info("monitor of %s: no greeting (%s); connecting again",
                         self.guest_id, exc)
                await asyncio.sleep(0.05 * attempt)
                continue
            return client, sock
        raise AssertionError("unreachable")

    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      timeout: float | None = None) -> Any:
        """Run one command in a session of its own."""
        async with self.session() as s:
            return await s.execute(command, arguments, timeout)
