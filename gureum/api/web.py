"""What handlers see of HTTP: requests, responses and route tables.

Handlers are plain functions ``handler(req) -> Response``. A handler defined
with ``def`` runs in the worker thread pool (it may block on the database,
bcrypt or files); an ``async def`` handler runs on the event loop and must not
block. Routes that want a database session declare ``tx=True`` and receive it
as a second argument; it is committed when the handler returns and rolled
back when it raises. Routes declared ``stream=True`` read their body
themselves (``req.iter_body()``); every other route gets it read, bounded in
size, before the handler runs.

Starlette does the serving (``gureum.api.app``): each module's ``Router`` is
only a table of routes; the family turns it into Starlette routes, and the
responses here are Starlette responses. The names stay gureum's so that the
handlers do not depend on the framework's spelling of them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.responses import Response as StarletteResponse
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from gureum.errors import InvalidInput, PayloadTooLarge, RequestTimeout

if TYPE_CHECKING:
    from gureum.context import RequestContext

MAX_JSON_BODY = 1 << 20  # 1 MiB for ordinary API bodies
CHUNK = 1 << 20
# No OpenStack body nests deeper than a few levels; deeper input is refused before
# anything walks it recursively (the JSON decoder itself gives up near 1,000).
MAX_JSON_DEPTH = 64
_ESCAPED_NUL_OR_SURROGATE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")
BODY_TIMEOUT = 60.0

# Keys this package keeps in the ASGI scope.
REQUEST_ID = "gureum.request_id"
VERSION = "gureum.version"
FAMILY = "gureum.family"
# Set when the request body was not read to its end: the response closes the
# connection, since what the client still sends cannot start the next request.
CLOSE = "gureum.close"


class Request:
    """One HTTP request, as seen by a handler.

    ``path`` is relative to the API family (``/v3/users``), ``root_path`` is the
    family's prefix (``/identity``); ``headers`` has lower-case names.
    """

    __slots__ = ("_json", "_query", "app_state", "body", "body_timeout", "context", "headers",
                 "loop", "method", "path", "path_params", "query_string", "receive",
                 "request_id", "root_path", "route", "scheme", "scope", "version")

    def __init__(self, scope: Scope, receive: Receive, root_path: str | None = None,
                 path: str | None = None) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.root_path: str = scope.get("root_path", "") if root_path is None else root_path
        if path is None:
            path = scope["path"][len(self.root_path):] or "/"
        self.path = path
        self.query_string: bytes = scope.get("query_string", b"")
        # ASGI servers give header names in lower case.
        self.headers: dict[str, str] = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        self.scheme: str = self.headers.get("x-forwarded-proto") or scope.get("scheme", "http")
        self.path_params: dict[str, str] = scope.get("path_params") or {}
        self.body: bytes = b""
        self.body_timeout = BODY_TIMEOUT
        self.context: RequestContext | None = None
        self.request_id: str = scope.get(REQUEST_ID, "")
        self.route: Route | None = None
        self.app_state: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # The negotiated microversion (families that have them), e.g. (2, 53).
        self.version: tuple[int, int] = scope.get(VERSION, (0, 0))
        self._json: Any = None
        self._query: dict[str, list[str]] | None = None

    # -- query and body -------------------------------------------------
    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string.decode("latin-1"),
                                   keep_blank_values=True) if self.query_string else {}
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
            too_deep = InvalidInput("Malformed request body: JSON nested deeper than "
                                    f"{MAX_JSON_DEPTH} levels.")
            try:
                value = json.loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"Malformed request body: not valid JSON ({exc}).") from None
            except RecursionError:
                raise too_deep from None
            # A body with fewer brackets than the limit cannot nest deeper than it.
            if (self.body.count(b"[") + self.body.count(b"{") > MAX_JSON_DEPTH
                    and _deeper_than(value, MAX_JSON_DEPTH)):
                raise too_deep
            # JSON spells a NUL \u0000 and a surrogate \ud800-\udfff (raw ones are
            # not valid JSON or not UTF-8, refused above).
            if _ESCAPED_NUL_OR_SURROGATE.search(self.body):
                refuse_unstorable(value)
            self._json = value
        return self._json

    def iter_body(self) -> Iterator[bytes]:
        """Stream the body from a worker thread (routes declared with stream=True).

        RequestTimeout when the client sends nothing for ``body_timeout`` seconds.
        """
        assert self.loop is not None
        self.scope[CLOSE] = True  # until the last chunk is in
        while True:
            message = asyncio.run_coroutine_threadsafe(
                receive_within(self.receive, self.body_timeout), self.loop).result()
            if message["type"] == "http.disconnect":
                raise InvalidInput("The client disconnected before sending the whole body.")
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                self.scope.pop(CLOSE, None)
                if chunk:
                    yield chunk
                return
            if chunk:
                yield chunk

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


def _unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "NUL characters are not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800) JSON let through
        return "not valid UTF-8 text"
    return None


def refuse_unstorable(value: Any) -> None:
    """400 naming a field whose name or string value holds a NUL or a lone surrogate.

    PostgreSQL stores no NUL in text and no database takes a string that is not
    UTF-8 (the query or its encoding fails: a 500), and no id or name of ours holds
    either; so they are refused on every database, before any handler looks a
    value up.
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            reason = _unstorable(node)
            if reason:
                place = f"field '{where}'" if where else "the request body"
                raise InvalidInput(f"Invalid input for {place}: {reason}.", field=where or None)
        elif isinstance(node, dict):
            for key, child in node.items():
                path = f"{where}.{key}" if where else str(key)
                reason = _unstorable(key)
                if reason:
                    raise InvalidInput(f"Invalid input for the request body: {reason} in the "
                                       f"key {key!r}.")
                stack.append((child, path))
        elif isinstance(node, list):
            stack.extend((child, f"{where}.{i}" if where else str(i))
                         for i, child in enumerate(node))


def refuse_nul_in_url(req: Request) -> None:
    """400 when the path or a query parameter holds a NUL (see ``refuse_unstorable``)."""
    if "\x00" in req.path:
        raise InvalidInput("The request path contains a NUL character.")
    if b"%00" in req.query_string or b"\x00" in req.query_string:
        for name, values in req.query.items():
            if "\x00" in name or any("\x00" in v for v in values):
                raise InvalidInput(f"Invalid input for query parameter {name!r}: NUL "
                                   "characters are not allowed.", field=name)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in ``value`` nest more than ``limit`` levels."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


async def receive_within(receive: Receive, timeout: float) -> Message:
    """The next message from the client; RequestTimeout when none comes in time."""
    try:
        async with asyncio.timeout(timeout):
            return await receive()
    except TimeoutError:
        raise RequestTimeout(f"The client sent no request body data for {timeout:g} "
                             "seconds.") from None


class Response(StarletteResponse):
    """A response with its whole body in memory: status, headers, bytes."""

    def __init__(self, status: int = 200, body: bytes = b"",
                 headers: Mapping[str, str] | None = None,
                 content_type: str | None = None) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        if content_type:
            self.media_type = content_type
        self.init_headers(headers)

    @property
    def status(self) -> int:
        return self.status_code


class ChunkedResponse(StreamingResponse):
    """A response whose body comes from an iterator of chunks (image data).

    A plain iterator is read in the worker thread pool, one chunk at a time, so a
    slow disk never blocks the event loop; an async iterator is read on the loop.
    The iterator is closed when the response ends, also when the client went away.
    """

    def __init__(self, chunks: Iterable[bytes], status: int = 200,
                 headers: Mapping[str, str] | None = None,
                 executor: Executor | None = None) -> None:
        self._chunks = chunks
        super().__init__(_aiter_chunks(chunks, executor), status, headers)

    @property
    def status(self) -> int:
        return self.status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await super().__call__(scope, receive, send)
            return
        # HEAD: the headers alone; the data is never read.
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b""})


def stream(req: Request, chunks: Iterable[bytes], status: int = 200,
           headers: Mapping[str, str] | None = None) -> ChunkedResponse:
    """A response streamed from ``chunks``, read in the request's worker pool."""
    executor = getattr(req.app_state, "executor", None)
    return ChunkedResponse(chunks, status, headers, executor)


async def _aiter_chunks(chunks: Iterable[bytes], executor: Executor | None
                        ) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield chunk
        return
    loop = asyncio.get_running_loop()
    iterator = iter(chunks)
    sentinel: Any = object()
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
    """One method on one path pattern, and how its handler wants to be called."""

    method: str
    pattern: str
    handler: Handler
    auth: bool = True
    tx: TxOption = False
    stream: bool = False
    is_async: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Router:
    """A table of routes (one per module, one per family).

    Patterns use ``{name}`` (one path segment) or ``{name:path}`` (the rest of the
    path), as Starlette does. The first pattern that matches a path wins, so a
    family keeps its registration order.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}

    def add(self, method: str, pattern: str, handler: Handler, *, auth: bool = True,
            tx: TxOption = False, stream: bool = False, **extra: Any) -> Route:
        route = Route(method.upper(), pattern, handler, auth=auth, tx=tx, stream=stream,
                      is_async=asyncio.iscoroutinefunction(handler), extra=extra)
        self._routes[(pattern, route.method)] = route
        return route

    def routes(self) -> list[Route]:
        """Every route, in registration order."""
        return list(self._routes.values())

    def include(self, other: Router) -> None:
        """Add every route of another router."""
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


async def read_body(req: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """The whole body, at most ``limit`` bytes (413), each part within the timeout (408)."""
    declared = req.headers.get("content-length", "")
    too_large = PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    req.scope[CLOSE] = True  # until the last part is in
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive_within(req.receive, req.body_timeout)
        if message["type"] == "http.disconnect":
            raise InvalidInput("The client disconnected before sending the whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
        if not message.get("more_body", False):
            del req.scope[CLOSE]
            return b"".join(parts)
