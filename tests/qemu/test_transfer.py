"""The disk transfer channel between compute agents (virt/qemu/transfer.py), over real
TCP on localhost: what a destination gets, what it is refused, what a failure leaves."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gureum.virt.driver import MigrationFailed
from gureum.virt.qemu import transfer
from gureum.virt.qemu.transfer import ExportedFile, TransferServer


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def serving(tmp_path: Path, files: dict[str, bytes], **kw: Any
                  ) -> tuple[TransferServer, dict[str, Any]]:
    server = TransferServer("127.0.0.1", **kw)
    await server.start()
    exported = []
    for name, data in files.items():
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        exported.append(ExportedFile(name, path))
    export = server.register("g1", exported)
    return server, export.description(server.address, server.port)


def test_fetch_copies_the_file_and_done_forgets_the_export(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + bytes(2 << 20) + b"tail"  # a hole in the middle

    async def go() -> None:
        server, channel = await serving(tmp_path, {"disk": data})
        target = tmp_path / "dst" / "disk"
        target.parent.mkdir()
        seen: list[int] = []
        await transfer.fetch(channel, "disk", target, size=len(data), progress=seen.append)
        assert target.read_bytes() == data
        assert seen[-1] == len(data)
        assert os.stat(target).st_blocks * 512 < len(data)  # the zeros stayed a hole
        await transfer.fetch(channel, "disk", tmp_path / "dst" / "again")  # until done
        await transfer.done(channel)
        assert not server.exports
        with pytest.raises(MigrationFailed, match="not authorized"):
            await transfer.fetch(channel, "disk", tmp_path / "dst" / "late")
        assert not (tmp_path / "dst" / "late").exists()
        await server.close()
    run(go())


def test_a_wrong_secret_or_an_unknown_file_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        server, channel = await serving(tmp_path, {"disk": b"x" * 100})
        target = tmp_path / "out"
        with pytest.raises(MigrationFailed, match="not authorized"):
            await transfer.fetch({**channel, "secret": "0" * 64}, "disk", target)
        with pytest.raises(MigrationFailed, match="not authorized"):
            await transfer.fetch({**channel, "export": "nope"}, "disk", target)
        with pytest.raises(MigrationFailed, match="no file"):
            await transfer.fetch(channel, "../../etc/passwd", target)
        assert not target.exists() and not list(tmp_path.glob(".*part"))
        assert server.exports  # a wrong secret does not end the export
        await server.close()
    run(go())


def test_a_file_that_changed_since_the_export_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        server, channel = await serving(tmp_path, {"disk": b"x" * 100})
        (tmp_path / "src" / "disk").write_bytes(b"x" * 101)
        with pytest.raises(MigrationFailed, match="changed since"):
            await transfer.fetch(channel, "disk", tmp_path / "out", size=100)
        assert not (tmp_path / "out").exists()
        await server.close()
    run(go())


def test_exporting_twice_keeps_the_export_and_it_expires(tmp_path: Path) -> None:
    async def go() -> None:
        server, channel = await serving(tmp_path, {"disk": b"x"}, ttl=0.2)
        again = server.register("g1", [ExportedFile("disk", tmp_path / "src" / "disk")])
        assert again.description(server.address, server.port) == channel
        await asyncio.sleep(0.3)
        with pytest.raises(MigrationFailed, match="not authorized"):
            await transfer.fetch(channel, "disk", tmp_path / "out")
        await server.close()
    run(go())


def test_the_server_takes_a_port_of_the_configured_range(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
        # The range's first port is taken (by the probe): the next one serves.
        assert transfer.parse_port_range(f"{free}-{free + 1}") == (free, free + 1)

        async def go() -> None:
            server, channel = await serving(tmp_path, {"disk": b"x"},
                                            ports=(free, free + 1))
            assert channel["port"] == free + 1
            await transfer.fetch(channel, "disk", tmp_path / "out")
            await server.close()
        probe.listen(1)
        run(go())
    with pytest.raises(ValueError):
        transfer.parse_port_range("7-3")
    assert transfer.parse_port_range("") is None


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


async def rogue(handler: Handler) -> tuple[asyncio.AbstractServer, dict[str, Any]]:
    """A server that speaks the protocol up to the data, then misbehaves."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(transfer.GREETING + b"00\n")
        await reader.readline()
        await handler(reader, writer, b"y" * 4096)
        writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, {"address": "127.0.0.1", "port": port, "export": "e", "secret": "s"}


def test_a_copy_with_a_wrong_checksum_is_dropped(tmp_path: Path) -> None:
    async def wrong(_: Any, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(json.dumps({"ok": True, "size": len(data)}).encode() + b"\n" + data)
        digest = hashlib.sha256(data[:-1] + b"z").hexdigest()
        writer.write(json.dumps({"sha256": digest}).encode() + b"\n")
        await writer.drain()

    async def go() -> None:
        server, channel = await rogue(wrong)
        with pytest.raises(MigrationFailed, match="checksum"):
            await transfer.fetch(channel, "disk", tmp_path / "out")
        server.close()
        await server.wait_closed()
    run(go())
    assert not list(tmp_path.iterdir())  # neither the file nor a part of it


def test_a_copy_that_breaks_off_leaves_nothing(tmp_path: Path) -> None:
    async def short(_: Any, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(json.dumps({"ok": True, "size": len(data) * 10}).encode() + b"\n")
        writer.write(data)
        await writer.drain()

    async def go() -> None:
        server, channel = await rogue(short)
        with pytest.raises(MigrationFailed, match="broke off"):
            await transfer.fetch(channel, "disk", tmp_path / "out")
        server.close()
        await server.wait_closed()
    run(go())
    assert not list(tmp_path.iterdir())


def test_an_unreachable_source_is_a_migration_failure(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        channel = {"address": "127.0.0.1", "port": port, "export": "e", "secret": "s"}
        with pytest.raises(MigrationFailed, match="Cannot reach"):
            run(transfer.fetch(channel, "disk", tmp_path / "out", timeout=5))
    assert not list(tmp_path.iterdir())
