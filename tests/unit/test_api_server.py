"""The HTTP server's protocol: a response leaves in one write (head and body together).

A real uvicorn protocol (gureum's subclass) on a real loopback socket, with the
transport's writes counted, and a raw HTTP/1.1 client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from gureum.api.server import HeadLimitedProtocol

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class _CountedWrites:
    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def exchange(app: App, raw: bytes) -> tuple[bytes, list[bytes]]:
    """Send ``raw`` to a server running ``app``; everything it answered until it closed
    the connection, and the writes it made."""
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False,
                            server_header=False, date_header=False)
    config.load()
    state = ServerState()
    writes: list[bytes] = []

    class Counted(HeadLimitedProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self.transport = _CountedWrites(self.transport, writes)  # type: ignore[assignment]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Counted(config, state, {}), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        server.close()
    return answer, writes


def requests(*lines: str) -> bytes:
    """Requests on one connection, the last one with Connection: close."""
    out = [f"{line} HTTP/1.1\r\nHost: x\r\n\r\n" for line in lines[:-1]]
    out.append(f"{lines[-1]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return "".join(out).encode()


async def json_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def test_a_response_is_one_write_on_a_kept_alive_connection() -> None:
    answer, writes = asyncio.run(exchange(json_app, requests("GET /a", "GET /b", "HEAD /c")))
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert answer.count(b'{"ok":true}') == 2  # HEAD: the headers alone
    assert len(writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in writes)
    assert writes[0].endswith(b'\r\n\r\n{"ok":true}')
    assert b"connection: close" in writes[2] and writes[2].endswith(b"\r\n\r\n")


async def streamed_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one", b"two"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def test_a_streamed_response_sends_its_head_with_the_first_part() -> None:
    answer, writes = asyncio.run(exchange(streamed_app, requests("GET /s")))
    assert answer.endswith(b"\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")
    assert b"transfer-encoding: chunked" in writes[0]
    assert writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert writes[1:] == [b"3\r\ntwo\r\n", b"0\r\n\r\n"]


async def failing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("failed before the body")


def test_an_app_failing_between_head_and_body_is_answered_500() -> None:
    answer, writes = asyncio.run(exchange(failing_app, requests("GET /f")))
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert answer.endswith(b"Internal Server Error")
    assert len(writes) == 1


def test_the_head_limit_still_answers_431() -> None:
    raw = b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
    answer, _ = asyncio.run(exchange(json_app, raw))
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


async def framed_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """No content-length (uvicorn's chunked framing), an empty 204, a connection
    header of the app's own, and a header value uvicorn refuses."""
    path = scope["path"]
    if path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"whole"})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/close":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2"), (b"Connection", b"Close")]})
        await send({"type": "http.response.body", "body": b"ok"})
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-bad", b"a\r\nx-injected: 1")]})
        await send({"type": "http.response.body", "body": b""})


def test_other_framings_are_uvicorns_in_one_write_too() -> None:
    answer, writes = asyncio.run(exchange(framed_app, requests("GET /chunked", "GET /empty",
                                                               "GET /close")))
    assert len(writes) == 3
    assert b"transfer-encoding: chunked" in writes[0]
    assert writes[0].endswith(b"\r\n\r\n5\r\nwhole\r\n0\r\n\r\n")
    assert writes[1].startswith(b"HTTP/1.1 204 No Content\r\n")
    assert writes[1].endswith(b"\r\n\r\n") and b"content-length" not in writes[1]
    assert b"connection: Close" in writes[2] and writes[2].endswith(b"\r\n\r\nok")
    assert answer.count(b"HTTP/1.1 ") == 3


def test_a_header_value_with_a_line_break_is_refused() -> None:
    answer, _ = asyncio.run(exchange(framed_app, requests("GET /bad")))
    assert answer == b""  # as uvicorn does: nothing written, the connection closed
