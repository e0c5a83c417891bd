"""The console proxy (nova-novncproxy's job), served by the API server at /vnc.

* ``GET /vnc/<file>``: noVNC's page and scripts, read from ``[vnc] novnc_path``
  (Debian's package ``novnc``; never copied into gureum). Without them every
  page answers 503 naming the package to install.
* ``/vnc/websockify?token=…`` (a websocket, what noVNC opens): before anything
  connects, the token must have been given out by the Compute API and not have
  expired, its instance must still be on the host the token was given for, that
  host's agent must still name the same console address (a new guest process may
  listen elsewhere, and another guest may have taken the old port), and a
  browser's Origin must be this host (no other site's page may open it). Any
  refusal is an HTTP 403 to the handshake and no connection is made. Then the
  proxy opens the guest's VNC websocket (QEMU's, subprotocol ``binary``) and
  relays the frames both ways until either side closes.

Any API process can serve a console: tokens live in the database, consoles are
found through the bus. The proxy must reach the address the agent names (QEMU
listens on the compute host's ``127.0.0.1`` by default: an API on that machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.routing import Mount, Router, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from gureum.agent import rpc as agent_rpc
from gureum.agent.messages import GetVncConsole
from gureum.bus import BusError
from gureum.console import tokens
from gureum.virt.driver import VncConsole

log = logging.getLogger("gureum.console")

PREFIX = "/vnc"
PAGE = "vnc_lite.html"
# How long the proxy waits for the host's agent and for the guest's websocket.
AGENT_TIMEOUT = 15.0
CONNECT_TIMEOUT = 10.0


class Refused(Exception):
    """A console connection that must not be made; the message says why (logged)."""


class ConsoleProxy:
    """The ASGI app mounted at /vnc; ``state`` is the API's (settings, db, bus, executor)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.novnc = Path(state.settings.vnc.novnc_path)
        self.files = StaticFiles(directory=self.novnc, check_dir=False)
        self.router = Router([WebSocketRoute("/" + tokens.WEBSOCKET, self.websocket),
                              Mount("/", app=self.static)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    def missing(self) -> str | None:
        """Why noVNC cannot be served, or None."""
        if (self.novnc / PAGE).is_file():
            return None
        return (f"noVNC is not installed: {self.novnc / PAGE} does not exist. Install "
                "Debian's package novnc (apt-get install novnc) or set [vnc] novnc_path "
                "to a noVNC directory.")

    async def static(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.missing()
        if problem is not None:
            body = {"error": {"code": 503, "title": "Service Unavailable", "message": problem}}
            await JSONResponse(body, 503)(scope, receive, send)
            return
        await self.files(scope, receive, send)

    # -- the websocket -------------------------------------------------------------------
    async def websocket(self, ws: WebSocket) -> None:
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        try:
            connect = await self.check(ws)
            upstream = await self.open_console(connect)
        except Refused as exc:
            log.warning("console connection from %s refused: %s", peer, exc)
            await deny(ws)
            return
        log.info("console of instance %s on %s opened from %s", connect.instance_id,
                 connect.compute_host, peer)
        async with upstream:
            offered = ws.scope.get("subprotocols") or []
            await ws.accept(subprotocol="binary" if "binary" in offered else None)
            await relay(ws, upstream)
        log.info("console of instance %s closed (%s)", connect.instance_id, peer)

    async def check(self, ws: WebSocket) -> tokens.Connect:
        """What the request's token opens, once every check passed; Refused otherwise."""
        check_origin(ws)
        token = ws.query_params.get("token", "")
        loop = asyncio.get_running_loop()
        connect = await loop.run_in_executor(self.state.executor, self._find, token)
        if connect is None:
            raise Refused("unknown or expired token, or its instance has moved or gone")
        try:
            now = await agent_rpc.call(self.state.bus, connect.compute_host,
                                       GetVncConsole(connect.instance_id), AGENT_TIMEOUT)
        except BusError as exc:
            raise Refused(f"the agent of {connect.compute_host} does not confirm the "
                          f"console of {connect.instance_id}: {exc.message}") from None
        if (now.host, now.port, now.path) != (connect.host, connect.port, connect.path):
            raise Refused(f"the console of {connect.instance_id} has moved since the token "
                          "was given out")
        return connect

    def _find(self, token: str) -> tokens.Connect | None:
        with self.state.db.session(write=False) as s:
            return tokens.check(s, token)

    async def open_console(self, connect: tokens.Connect) -> ClientConnection:
        """The guest's VNC websocket, connected."""
        url = VncConsole(connect.host, connect.port, connect.path).url
        try:
            return await ws_connect(url, subprotocols=["binary"],  # type: ignore[list-item]
                                    open_timeout=CONNECT_TIMEOUT, compression=None,
                                    max_size=None, ping_interval=None)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise Refused(f"the console of {connect.instance_id} at {url} cannot be "
                          f"reached: {exc}") from None


def check_origin(ws: WebSocket) -> None:
    """A browser's page must come from this host (Nova's check): no other site's page
    may open a console with a token it learned."""
    origin = ws.headers.get("origin")
    if origin is None:
        return  # not a browser
    parts = urlsplit(origin)
    host = urlsplit("//" + ws.headers.get("host", "")).hostname
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"the Origin header {origin!r} is not valid")
    if parts.hostname != host:
        raise Refused(f"the Origin {origin!r} is not this host ({host})")


async def deny(ws: WebSocket) -> None:
    """Refuse the handshake: a close before accepting, which the server answers with an
    HTTP 403 and no websocket. (uvicorn's denial-response extension would allow a body,
    but logs every use of it as an unfinished handshake.)"""
    await ws.close(code=1008)


async def relay(ws: WebSocket, upstream: ClientConnection) -> None:
    """Copy frames both ways until one side closes; then close the other."""

    async def from_browser() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                await upstream.send(data if data is not None else message.get("text", ""))

    async def from_guest() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in upstream:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_text(data)

    tasks = {asyncio.create_task(from_browser()), asyncio.create_task(from_guest())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await ws.close()


def mount(proxy: ConsoleProxy) -> Mount:
    """The proxy at /vnc of the API server."""
    return Mount(PREFIX, app=proxy)
