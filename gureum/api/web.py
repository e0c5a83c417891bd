"""A small ASGI toolkit: requests, responses and a router.

Handlers are plain functions ``handler(req) -> Response``. A handler defined
with ``def`` runs in the worker thread pool (it may block on the database,
bcrypt or files); an ``async def`` handler runs on the event loop and must not
block. Routes that want a database session declare ``tx=True`` and receive it
as a second argument; it is committed when the handler returns and rolled
back when it raises.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from gureum.errors import InvalidInput, MethodNotAllowed, NotFound, PayloadTooLarge

if TYPE_CHECKING:
    from gureum.context import RequestContext

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_JSON_BODY = 1 << 20  # 1 MiB for ordinary API bodies
CHUNK = 1 << 20


class Request:
    """One HTTP request, as seen by a handler."""

    __slots__ = ("_json", "_query", "app_state", "body", "context", "headers", "loop",
                 "method", "path", "path_params", "query_string", "receive", "request_id",
                 "root_path", "route", "scheme", "scope", "version")

    def __init__(self, scope: Scope, receive: Receive, root_path: str, path: str) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.root_path = root_path
        self.path = path
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers: dict[str, str] = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self.scheme: str = self.headers.get("x-forwarded-proto") or scope.get("scheme", "http")
        self.path_params: dict[str, str] = {}
        self.body: bytes = b""
        self.context: RequestContext | None = None
        self.request_id: str = ""
        self.route: Route | None = None
        self.app_state: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # The negotiated microversion (families that have them), e.g. (2, 53).
        self.version: tuple[int, int] = (0, 0)
        self._json: Any = None
        self._query: dict[str, list[str]] | None = None

    # -- query and body -------------------------------------------------
    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string.decode("latin-1"), keep_blank_values=True)
        return self._query

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self, required: bool = True) -> Any:
        """The parsed JSON body; 400 when it is missing or not JSON."""
        if self._json is None:
            if not self.body.strip():
                if required:
                    raise InvalidInput("The request body is empty; a JSON object is expected.")
                return None
            try:
                self._json = json.loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"Malformed request body: not valid JSON ({exc}).") from None
        return self._json

    def iter_body(self) -> Iterator[bytes]:
        """Stream the body from a worker thread (routes declared with stream=True)."""
        assert self.loop is not None
        while True:
            message = asyncio.run_coroutine_threadsafe(_awaited(self.receive()),
                                                       self.loop).result()
            if message["type"] == "http.disconnect":
                raise InvalidInput("The client disconnected before sending the whole body.")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    # -- URLs ------------------------------------------------------------
    @property
    def host_url(self) -> str:
        host = self.headers.get("x-forwarded-host") or self.headers.get("host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{self.scheme}://{host}"

    @property
    def base_url(self) -> str:
        """The family's base URL, e.g. http://host:8800/identity."""
        return self.host_url + self.root_path

    @property
    def remote_addr(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else ""


async def _awaited(awaitable: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    return await awaitable


class Response:
    """A response: status, headers, and a body (bytes, a file, or a chunk iterator)."""

    __slots__ = ("body", "chunks", "headers", "status")

    def __init__(self, status: int = 200, body: bytes = b"",
                 headers: dict[str, str] | None = None,
                 content_type: str | None = None,
                 chunks: Iterable[bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.chunks = chunks
        self.headers: dict[str, str] = dict(headers or {})
        if content_type:
            self.headers["content-type"] = content_type


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> Response:
    return Response(status, _encoder.encode(obj).encode(), headers, content_type)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status, b"", headers)


Handler = Callable[..., Any]
# A route's transaction (gureum/api/transaction.py): False (none), True (read for
# GET/HEAD, write otherwise), "read", "write", or a function of the request.
TxOption = bool | str | Callable[["Request"], str]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: bool = True
    tx: TxOption = False
    stream: bool = False
    is_async: bool = False
    regex: re.Pattern[str] | None = None
    names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


_PARAM = re.compile(r"{(\w+)(?::([^}]+))?}")


class Router:
    """Method + path pattern → route. Patterns use ``{name}`` or ``{name:regex}``."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._dynamic: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        self._dynamic_index: dict[str, dict[str, Route]] = {}

    def add(self, method: str, pattern: str, handler: Handler, *, auth: bool = True,
            tx: TxOption = False, stream: bool = False, **extra: Any) -> Route:
        route = Route(method.upper(), pattern, handler, auth=auth, tx=tx, stream=stream,
                      is_async=asyncio.iscoroutinefunction(handler), extra=extra)
        if "{" not in pattern:
            self._static.setdefault(pattern, {})[route.method] = route
            return route
        methods = self._dynamic_index.get(pattern)
        if methods is None:
            regex = "^" + _PARAM.sub(
                lambda m: f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})", pattern) + "$"
            methods = {}
            self._dynamic_index[pattern] = methods
            self._dynamic.append((re.compile(regex), methods))
        methods[route.method] = route
        return route

    def routes(self) -> list[Route]:
        """Every route, static ones first (for includes, docs and route-wide tests)."""
        tables = [*self._static.values(), *self._dynamic_index.values()]
        return [r for methods in tables for r in methods.values()]

    def include(self, other: Router) -> None:
        """Add every route of another router (one router per module, one per family)."""
        for r in other.routes():
            self.add(r.method, r.pattern, r.handler, auth=r.auth, tx=r.tx, stream=r.stream,
                     **r.extra)

    def route(self, method: str, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(method, pattern, fn, **opts)
            return fn
        return deco

    def get(self, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", pattern, **opts)

    def post(self, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", pattern, **opts)

    def put(self, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", pattern, **opts)

    def patch(self, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", pattern, **opts)

    def delete(self, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", pattern, **opts)

    def head(self, pattern: str, **opts: Any) -> Callable[[Handler], Handler]:
        return self.route("HEAD", pattern, **opts)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for (method, path); NotFound or MethodNotAllowed otherwise."""
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        methods = self._static.get(path)
        params: dict[str, str] = {}
        if methods is None:
            for regex, candidate in self._dynamic:
                m = regex.match(path)
                if m:
                    methods, params = candidate, m.groupdict()
                    break
        if methods is None:
            raise NotFound("The resource could not be found.")
        route = methods.get(method)
        if route is None and method == "HEAD":
            route = methods.get("GET")
        if route is None:
            allowed = tuple(sorted(methods))
            raise MethodNotAllowed(
                f"The method {method} is not allowed for this resource "
                f"(allowed: {', '.join(allowed)}).", allowed=allowed)
        return route, params


async def read_body(receive: Receive, limit: int = MAX_JSON_BODY) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_response(send: Send, response: Response, head_only: bool,
                        loop: asyncio.AbstractEventLoop, executor: Any) -> None:
    headers = response.headers
    if response.chunks is None:
        headers["content-length"] = str(len(response.body))
    raw = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": response.status, "headers": raw})
    if head_only or response.chunks is None:
        await send({"type": "http.response.body",
                    "body": b"" if head_only else response.body})
        return
    async for chunk in _aiter_chunks(response.chunks, loop, executor):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _aiter_chunks(chunks: Iterable[bytes], loop: asyncio.AbstractEventLoop,
                        executor: Any) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield chunk
        return
    iterator = iter(chunks)
    sentinel = object()
    try:
        while True:
            chunk = await loop.run_in_executor(executor, next, iterator, sentinel)
            if chunk is sentinel:
                return
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await loop.run_in_executor(executor, close)
