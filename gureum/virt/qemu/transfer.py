"""Copying a guest's files between compute agents (cold migration, resize): no ssh (S2).

The source's driver runs a small server (asyncio TCP on its migration address,
a port from ``[compute] migration_port_range`` or an ephemeral one), started
the first time it exports. ``export_disks`` registers the guest's files under
an *export*: a random id and a random secret, both returned in every file's
description (with the address) to the conductor, which hands them to the
destination. The destination fetches each file, proving it knows the secret,
and the source forgets the export once the destination says it is done (or
after ``ttl`` seconds). The secret itself never crosses the wire between the
hosts: each request answers a fresh challenge with an HMAC.

One request per connection::

    server → client   GUREUM-TRANSFER 1 <nonce>\\n
    client → server   {"export": id, "file": name, "op": "get"|"done",
                       "mac": hex(HMAC-SHA256(secret, nonce|export|file|op))}\\n
    server → client   {"ok": true, "size": n}\\n  then n bytes, then {"sha256": hex}\\n
                      (or {"ok": false, "error": "…"}\\n)

The client checks the size against the description (a file that changed since
it was exported is refused) and the SHA-256 against the one the server computed
while sending, writes to a hidden ``.<name>.part`` file next to the target and
renames it into place only when both match: a failed copy leaves no file.

What travels is plain TCP: the secret is not exposed, the disk contents are
(as with QEMU's own migration stream). Hosts that need more put the migration
network on a private link, as Nova's deployments do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gureum.virt.driver import MigrationFailed

log = logging.getLogger("gureum.virt.qemu.transfer")

GREETING = b"GUREUM-TRANSFER 1 "
CHUNK = 1 << 20
MAX_LINE = 4096


def parse_port_range(text: str) -> tuple[int, int] | None:
    """"49152-49215" → (49152, 49215); "" → None (ephemeral ports)."""
    text = text.strip()
    if not text:
        return None
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise ValueError(f"A port range is FIRST-LAST, e.g. 49152-49215, not {text!r}."
                         ) from None
    if not 0 < first <= last < 65536:
        raise ValueError(f"Port range {text!r} is not within 1-65535 (first ≤ last).")
    return first, last


def listener(address: str, ports: tuple[int, int] | None) -> socket.socket:
    """A listening TCP socket on ``address``: the first free port of ``ports``, or an
    ephemeral one. OSError when every port of the range is taken."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    candidates = range(ports[0], ports[1] + 1) if ports else range(0, 1)
    last: OSError | None = None
    for port in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            sock.listen(16)
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            last = exc
            continue
        return sock
    raise OSError(errno.EADDRINUSE, f"every port of {ports[0]}-{ports[1]} on {address} "
                                    f"is taken" if ports else str(last))


def _mac(secret: str, nonce: str, export: str, name: str, op: str) -> str:
    msg = "|".join((nonce, export, name, op)).encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ExportedFile:
    """One file a destination may fetch: ``name`` is how it asks for it."""

    name: str
    path: Path


@dataclass
class Export:
    id: str
    secret: str
    guest_id: str
    files: dict[str, ExportedFile]
    expires: float

    def description(self, address: str, port: int) -> dict[str, Any]:
        return {"address": address, "port": port, "export": self.id, "secret": self.secret}


@dataclass
class TransferServer:
    """The source side: serves registered exports to destinations that know the secret."""

    address: str = "127.0.0.1"
    ports: tuple[int, int] | None = None
    ttl: float = 3600.0
    exports: dict[str, Export] = field(default_factory=dict)
    _server: asyncio.AbstractServer | None = None
    port: int = 0

    async def start(self) -> None:
        if self._server is not None:
            return
        try:
            sock = listener(self.address, self.ports)
        except OSError as exc:
            raise MigrationFailed(f"Cannot listen for disk transfers on {self.address}: "
                                  f"{exc.strerror or exc}") from exc
        self._server = await asyncio.start_server(self._serve, sock=sock)
        self.port = int(sock.getsockname()[1])
        log.info("disk transfers served on %s:%s", self.address, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        self.exports.clear()

    def register(self, guest_id: str, files: list[ExportedFile]) -> Export:
        """An export of these files. A guest's export still outstanding with the same
        files is kept (same id and secret, a fresh ttl): exporting twice changes
        nothing."""
        self._expire()
        wanted = {f.name: f for f in files}
        for export in self.exports.values():
            if export.guest_id == guest_id and export.files == wanted:
                export.expires = time.monotonic() + self.ttl
                return export
        export = Export(secrets.token_hex(8), secrets.token_hex(32), guest_id, wanted,
                        time.monotonic() + self.ttl)
        self.exports[export.id] = export
        return export

    def forget(self, export_id: str) -> None:
        self.exports.pop(export_id, None)

    def forget_guest(self, guest_id: str) -> None:
        for export in [e for e in self.exports.values() if e.guest_id == guest_id]:
            self.forget(export.id)

    def _expire(self) -> None:
        now = time.monotonic()
        for export in [e for e in self.exports.values() if e.expires <= now]:
            log.info("export %s of guest %s expired unused", export.id, export.guest_id)
            self.forget(export.id)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        peer = writer.get_extra_info("peername")
        try:
            await asyncio.wait_for(self._answer(reader, writer), 60)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("transfer request from %s ended: %s", peer, type(exc).__name__)
        except Exception:  # one bad request must not take the server down
            log.exception("transfer request from %s failed", peer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        nonce = secrets.token_hex(16)
        writer.write(GREETING + nonce.encode() + b"\n")
        await writer.drain()
        line = await reader.readline()
        if len(line) > MAX_LINE:
            return
        try:
            request = json.loads(line)
            export_id, name = str(request["export"]), str(request["file"])
            op, mac = str(request.get("op", "get")), str(request["mac"])
        except (ValueError, KeyError, TypeError):
            await _reply(writer, {"ok": False, "error": "bad request"})
            return
        self._expire()
        export = self.exports.get(export_id)
        expected = _mac(export.secret if export else secrets.token_hex(32), nonce, export_id,
                        name, op)
        if export is None or not hmac.compare_digest(expected, mac):
            # One answer for an unknown export and a wrong secret: no oracle.
            await _reply(writer, {"ok": False, "error": "not authorized (unknown export "
                                                        "or wrong secret)"})
            return
        if op == "done":
            self.forget(export_id)
            await _reply(writer, {"ok": True})
            return
        exported = export.files.get(name)
        if op != "get" or exported is None:
            await _reply(writer, {"ok": False, "error": f"no file {name!r} in this export"})
            return
        await self._send(writer, exported.path)

    async def _send(self, writer: asyncio.StreamWriter, path: Path) -> None:
        loop = asyncio.get_running_loop()
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, read in a thread
        except OSError as exc:
            await _reply(writer, {"ok": False, "error": f"cannot read {path.name}: "
                                                        f"{exc.strerror}"})
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            await _reply(writer, {"ok": True, "size": size})
            digest = hashlib.sha256()
            left = size
            while left > 0:
                chunk = await loop.run_in_executor(None, fh.read, min(CHUNK, left))
                if not chunk:
                    break  # truncated meanwhile: the client sees a short copy
                digest.update(chunk)
                writer.write(chunk)
                await writer.drain()
                left -= len(chunk)
        await _reply(writer, {"sha256": digest.hexdigest()})


async def _reply(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj).encode() + b"\n")
    await writer.drain()


# -- the destination side -------------------------------------------------------------

async def _request(channel: dict[str, Any], name: str, op: str, timeout: float
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
    where = f"{channel['address']}:{channel['port']}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(channel["address"], int(channel["port"])), timeout)
    except (OSError, TimeoutError) as exc:
        raise MigrationFailed(f"Cannot reach the source's disk transfer channel at "
                              f"{where}: {getattr(exc, 'strerror', None) or exc or 'timeout'}"
                              ) from exc
    try:
        greeting = await asyncio.wait_for(reader.readline(), timeout)
        if not greeting.startswith(GREETING):
            raise MigrationFailed(f"{where} is not a gureum disk transfer channel.")
        nonce = greeting[len(GREETING):].strip().decode()
        mac = _mac(str(channel["secret"]), nonce, str(channel["export"]), name, op)
        writer.write(json.dumps({"export": channel["export"], "file": name, "op": op,
                                 "mac": mac}).encode() + b"\n")
        await writer.drain()
        head = json.loads(await asyncio.wait_for(reader.readline(), timeout) or b"{}")
    except BaseException:
        writer.close()
        raise
    if not head.get("ok"):
        writer.close()
        raise MigrationFailed(f"The source refused {name} ({where}): "
                              f"{head.get('error', 'no answer')}")
    return reader, writer, head


async def fetch(channel: dict[str, Any], name: str, target: Path, size: int | None = None,
                timeout: float = 60.0,
                progress: Callable[[int], None] | None = None) -> None:
    """Copy the exported file ``name`` to ``target`` (atomically: all or nothing).

    ``size``: what the export said; a file of another size is refused (it changed
    since). ``timeout`` bounds each wait for the network, not the whole copy.
    """
    part = target.with_name(f".{target.name}.part")
    loop = asyncio.get_running_loop()
    reader, writer, head = await _request(channel, name, "get", timeout)
    try:
        length = int(head.get("size", -1))
        if size is not None and length != size:
            raise MigrationFailed(f"{name} is {length} bytes on the source, not the {size} "
                                  "it had when exported: it changed since.")
        digest = hashlib.sha256()
        done = 0
        with open(part, "wb") as out:
            while done < length:
                chunk = await asyncio.wait_for(reader.read(min(CHUNK, length - done)),
                                               timeout)
                if not chunk:
                    raise MigrationFailed(f"The copy of {name} broke off after {done} of "
                                          f"{length} bytes.")
                digest.update(chunk)
                await loop.run_in_executor(None, _write, out, chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done)
            out.truncate(length)
            await loop.run_in_executor(None, os.fsync, out.fileno())
        trailer = json.loads(await asyncio.wait_for(reader.readline(), timeout) or b"{}")
        if not hmac.compare_digest(str(trailer.get("sha256", "")), digest.hexdigest()):
            raise MigrationFailed(f"The copy of {name} does not match the source's checksum "
                                  "(SHA-256); it was dropped.")
        os.replace(part, target)
    except (OSError, TimeoutError, ValueError) as exc:
        raise MigrationFailed(f"Copying {name} failed: {exc or 'timeout'}") from exc
    finally:
        part.unlink(missing_ok=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _write(out: Any, chunk: bytes) -> None:
    """Write a chunk, leaving holes where it is all zeros (sparse images stay sparse)."""
    if chunk.count(0) == len(chunk):
        out.seek(len(chunk), os.SEEK_CUR)
    else:
        out.write(chunk)


async def done(channel: dict[str, Any], timeout: float = 10.0) -> None:
    """Tell the source it may forget the export (best effort: it expires anyway)."""
    try:
        _, writer, _ = await _request(channel, "", "done", timeout)
    except MigrationFailed as exc:
        log.info("could not tell the source the copy is done: %s", exc)
        return
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
