"""Helpers for console tests: a QEMU whose screen is served on a VNC websocket, and a
minimal RFB client that proves a websocket really reaches a VNC server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

QEMU = "qemu-system-x86_64"


def free_vnc_display() -> int:
    """A display number whose VNC port (5900 + display) is free right now."""
    for display in range(100, 3000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", 5900 + display))
            except OSError:
                continue
        return display
    raise RuntimeError("no free VNC display between 100 and 3000")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Screen:
    """A QEMU with no disk: SeaBIOS's text ("No bootable device") on its VGA screen."""

    process: subprocess.Popen[bytes]
    host: str
    websocket_port: int

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_screen(workdir: Path, memory_mb: int = 32) -> Screen:
    """Start the QEMU (TCG) and wait until its websocket answers."""
    if shutil.which(QEMU) is None:
        raise RuntimeError(f"{QEMU} is not installed (Debian's package qemu-system-x86)")
    display, port = free_vnc_display(), free_port()
    log = workdir / f"qemu-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [QEMU, "-machine", "accel=tcg", "-m", str(memory_mb), "-nodefaults", "-vga", "std",
             "-display", "none", "-vnc", f"127.0.0.1:{display},websocket={port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    screen = Screen(process, "127.0.0.1", port)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"QEMU exited ({process.returncode}); see {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return screen
        if time.monotonic() > deadline:
            screen.stop()
            raise RuntimeError(f"QEMU's websocket on port {port} did not open in 30 s")
        time.sleep(0.1)


@dataclass(frozen=True)
class ServerInit:
    width: int
    height: int
    name: str


async def rfb_handshake(url: str, origin: str | None = None, timeout: float = 20
                        ) -> ServerInit:
    """Open ``url`` as noVNC would (subprotocol binary) and do RFB 3.8's handshake with no
    authentication up to the server's ServerInit: both directions of the relay work."""
    headers = {"Origin": origin} if origin else None
    async with connect(url, subprotocols=["binary"],  # type: ignore[list-item]
                       additional_headers=headers, open_timeout=timeout) as ws:
        buffer = bytearray()

        async def read(n: int) -> bytes:
            while len(buffer) < n:
                data = await asyncio.wait_for(ws.recv(), timeout)
                buffer.extend(data if isinstance(data, bytes) else data.encode())
            out = bytes(buffer[:n])
            del buffer[:n]
            return out

        version = await read(12)
        assert version.startswith(b"RFB 003."), version
        await ws.send(b"RFB 003.008\n")
        count = (await read(1))[0]
        kinds = await read(count)
        assert 1 in kinds, f"the server wants authentication: {list(kinds)}"
        await ws.send(bytes([1]))  # None
        assert struct.unpack(">I", await read(4))[0] == 0, "security handshake failed"
        await ws.send(bytes([1]))  # ClientInit: shared
        width, height = struct.unpack(">HH", await read(4))
        await read(16)  # pixel format
        (length,) = struct.unpack(">I", await read(4))
        name = (await read(length)).decode(errors="replace")
        return ServerInit(width, height, name)
