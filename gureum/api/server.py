"""Build the API application and run it under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from gureum.api.app import GureumApp
from gureum.api.state import ApiState
from gureum.bus import Transport
from gureum.compute import api as compute_api
from gureum.config import Settings
from gureum.console import api as console_api
from gureum.context import new_request_id
from gureum.db import Database
from gureum.errors import HeadersTooLarge
from gureum.identity import api as identity_api
from gureum.identity.auth import TokenAuthenticator, TokenService
from gureum.identity.core import Identity
from gureum.image import api as image_api
from gureum.network import api as network_api
from gureum.outbox import Announcer
from gureum.volume import api as volume_api
from gureum.volume.backends import configure as configure_volume_backend

log = logging.getLogger("gureum.api")


def build_app(settings: Settings, db: Database, bus: Transport) -> GureumApp:
    identity = Identity(settings, db)
    tokens = TokenService(identity)
    executor = ThreadPoolExecutor(max_workers=settings.server.threads,
                                  thread_name_prefix="api")
    state = ApiState(settings, db, bus, identity, tokens, executor)
    configure_volume_backend(settings)  # connection info for attachments
    families = [
        identity_api.family(),
        image_api.family(),
        compute_api.family(),
        network_api.family(),
        volume_api.family(),
    ]
    proxy = console_api.ConsoleProxy(state)
    app = GureumApp(state, families, TokenAuthenticator(tokens),
                    body_timeout=settings.server.body_timeout,
                    mounts=[console_api.mount(proxy)])
    problem = proxy.missing() if settings.vnc.enabled else None
    if problem is not None:
        log.warning("consoles in the browser will not work: %s", problem)
    # Work handed to the conductor is announced after its transaction commits.
    announcer = Announcer(bus)
    db.outbox_notifier = announcer
    app.on_startup.append(lambda: announcer.bind(asyncio.get_running_loop()))
    return app


class _HeldWrites:
    """A transport stand-in that keeps what is written and writes it all at once."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def flush(self) -> None:
        if self.parts:
            self.transport.write(b"".join(self.parts))
            self.parts = []

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, writing the status line and headers together
    with the first part of the body: one write (one syscall, one wake-up of the client)
    for a response whose body is in memory, instead of two.

    The head is kept from ``http.response.start`` until the first ``http.response.body``
    message. A whole response with a content-length (most answers of this API) is
    framed here, with uvicorn's rules and checks (header names and values, connection
    close, HEAD without a body) but one check per kind instead of one per header; any
    other goes through uvicorn's own code into one buffer. An application that fails
    between the two messages never started a response, so uvicorn answers 500 instead
    of closing the connection on a half-written one.
    """

    _held_start: ASGISendEvent | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            self._held_start = message
            return
        start = self._held_start
        if start is None:
            await super().send(message)
            return
        self._held_start = None
        if (message["type"] == "http.response.body" and not message.get("more_body", False)
                and not self.flow.write_paused and not self.disconnected
                and not self.access_log and self._send_whole(start, message)):
            return
        transport = self.transport
        held = _HeldWrites(transport)
        self.transport = held  # type: ignore[assignment]
        try:
            await super().send(start)
            await super().send(message)
        finally:
            self.transport = transport
            held.flush()

    def _send_whole(self, start: Any, message: Any) -> bool:
        """Write a whole response in one piece; False (nothing done) when it is not the
        simple case: no content-length, a transfer-encoding, a body of another length,
        or a header uvicorn would refuse (its own code then says so)."""
        headers = [*self.default_headers, *start.get("headers", ())]
        names = b"".join(name for name, _ in headers)
        if HEADER_RE.search(names) or HEADER_VALUE_RE.search(b"\t".join(v for _, v in headers)):
            return False
        status = start["status"]
        body: bytes = message.get("body", b"")
        head = [STATUS_LINE[status]]
        length = None
        close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length":
                if length is not None:
                    return False
                length = int(value.decode())
            elif name == b"transfer-encoding":
                return False
            elif name == b"connection":
                close = close or b"close" in (t.lower().strip() for t in value.split(b","))
            head += (name, b": ", value, b"\r\n")
        if self.scope["method"] == "HEAD":
            body = b""
        elif length is None:
            if status not in (204, 304) or body:
                return False  # uvicorn frames it (chunked) or refuses it
        elif length != len(body):
            return False
        if close:
            self.keep_alive = False
        elif not self.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        head.append(body)
        self.response_started = True
        self.waiting_for_100_continue = False
        self.transport.write(b"".join(head))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
        return True


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a bound on the request line and headers, and
    responses written in one piece (:class:`OneWriteCycle`).

    httptools itself reads headers of any size; a request whose head grows past
    ``max_head`` is answered 431 (as a Keystone-style fault) and its connection
    closed, before the head is kept in memory.
    """

    max_head = 65536

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # uvicorn makes its own RequestResponseCycle here and has no setting for the
        # class; the cycle has not run yet (its task is only scheduled), so it can
        # still become the subclass, which adds no state of its own.
        cycle = self.cycle
        if cycle is not None and type(cycle) is RequestResponseCycle:
            cycle.__class__ = OneWriteCycle

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_too_large = False

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head:
            self._head_too_large = True
            raise ValueError("request head too large")  # stops the parser

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not getattr(self, "_head_too_large", False):
            super().send_400_response(msg)
            return
        err = HeadersTooLarge(f"The request line and headers are larger than {self.max_head} "
                              "bytes.")
        body = json.dumps({"error": {"code": err.status, "title": err.title,
                                     "message": err.message}}).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"x-openstack-request-id: " + new_request_id().encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body)
        self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: GureumApp, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=settings.server.bind, port=settings.server.port, lifespan="on",
        log_level="warning", access_log=False, server_header=False, date_header=True,
        timeout_keep_alive=30, loop="none",
        http=type("HttpProtocol", (HeadLimitedProtocol,),
                  {"max_head": settings.server.max_header_bytes}),
    )
    return _Server(config)


async def wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the API server stopped while starting")
        await asyncio.sleep(0.02)
