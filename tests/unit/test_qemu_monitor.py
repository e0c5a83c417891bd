"""The QMP adapter against a monitor that misbehaves the way a busy QEMU can."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gureum.virt.driver import GuestNotFound
from gureum.virt.qemu.monitor import GREETING_TRIES, Monitor, MonitorError

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
                                "package": ""}, "capabilities": []}}
LEFTOVER = {"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}


async def serve(path: Path, garbled: int) -> tuple[asyncio.AbstractServer, list[int]]:
    """A QMP monitor whose first ``garbled`` clients get a leftover event before (in
    place of) the greeting, as a QEMU that missed its last client's hang-up."""
    seen: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(len(seen) + 1)
        first = LEFTOVER if len(seen) <= garbled else GREETING
        writer.write(json.dumps(first).encode() + b"\r\n")
        if first is LEFTOVER:
            writer.close()  # the client hangs up on it; nothing more to say
            return
        await writer.drain()
        buffer, decoder = "", json.JSONDecoder()
        while chunk := await reader.read(4096):  # QMP is a stream of JSON values
            buffer += chunk.decode()
            while buffer.strip():
                try:
                    cmd, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break
                buffer = buffer.lstrip()[end:]
                answer = {"status": "running", "running": True} \
                    if cmd["execute"] == "query-status" else {}
                writer.write(json.dumps({"return": answer, "id": cmd.get("id")}).encode()
                             + b"\r\n")
                await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(client, path=str(path)), seen


@pytest.mark.parametrize("garbled", [1, GREETING_TRIES - 1])
def test_a_leftover_before_the_greeting_is_tried_again(tmp_path: Path, garbled: int
                                                        ) -> None:
    async def go() -> None:
        server, seen = await serve(tmp_path / "qmp.sock", garbled)
        async with server:
            status = await Monitor(tmp_path / "qmp.sock", "g1").execute("query-status")
        assert status["status"] == "running"
        assert len(seen) == garbled + 1
    asyncio.run(go())


def test_a_monitor_that_never_greets_is_an_error_not_a_missing_guest(tmp_path: Path
                                                                      ) -> None:
    async def go() -> None:
        server, seen = await serve(tmp_path / "qmp.sock", garbled=100)
        async with server:
            with pytest.raises(MonitorError) as err:
                await Monitor(tmp_path / "qmp.sock", "g1").execute("query-status")
        assert not isinstance(err.value, GuestNotFound)
        assert "without a greeting" in str(err.value)
        assert len(seen) == GREETING_TRIES
    asyncio.run(go())


def test_no_socket_is_a_missing_guest(tmp_path: Path) -> None:
    async def go() -> None:
        with pytest.raises(GuestNotFound):
            await Monitor(tmp_path / "qmp.sock", "g1").execute("query-status")
    asyncio.run(go())
