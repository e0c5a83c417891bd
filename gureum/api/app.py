"""The ASGI application: a Starlette app with one Mount per API family.

Every request gets a request id (``x-openstack-request-id``, a middleware), is
routed inside its family (``gureum.api.routing``; an exact path of a family without
microversions, token validation among them, is looked up in one dict before
Starlette's layers and served by the same endpoint and fault handler), negotiates its microversion
(a middleware on the families that have them), is authenticated from
``X-Auth-Token`` unless the route is public, and is answered; every error
becomes the family's fault body through Starlette's exception handlers. A
client can never cause a 500: unexpected exceptions are logged with the request
id and answered with a generic message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp

from gureum import __version__
from gureum.api import transaction
from gureum.api.microversion import MicroversionMiddleware, Microversions
from gureum.api.routing import FamilyMount, FamilyRouter
from gureum.api.web import (
    BODY_TIMEOUT,
    CLOSE,
    FAMILY,
    REQUEST_ID,
    Message,
    Receive,
    Request,
    Response,
    Route,
    Router,
    Scope,
    Send,
    json_response,
    read_body,
    refuse_nul_in_url,
)
from gureum.context import RequestContext, new_request_id
from gureum.errors import GureumError, MethodNotAllowed, NotFound, PayloadTooLarge, Unauthorized

log = logging.getLogger("gureum.api")


class Authenticator(Protocol):
    def validate_fast(self, token: str, request_id: str, remote_addr: str
                      ) -> RequestContext | None:
        """The context from caches alone, or None when the database is needed."""

    def validate(self, token: str, request_id: str, remote_addr: str) -> RequestContext:
        """The context for a token; may read the database (runs in a thread)."""


@dataclass
class Family:
    """One API (identity, compute, …): its prefix, routes and fault format."""

    name: str
    prefix: str
    router: Router
    render_error: Callable[[GureumError, Request], Response]
    # Runs before the body is read and the caller authenticated; may raise.
    before: Callable[[Request], None] | None = None
    # Families with microversions negotiate them in a middleware.
    microversions: Microversions | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class GureumApp:
    """The ASGI callable serving every family."""

    def __init__(self, state: Any, families: list[Family], authenticator: Authenticator,
                 body_timeout: float = BODY_TIMEOUT, mounts: list[Any] | None = None) -> None:
        self.state = state
        self.body_timeout = body_timeout
        self.families = {f.prefix: f for f in families}
        self.authenticator = authenticator
        self.executor: ThreadPoolExecutor = state.executor
        self.on_startup: list[Callable[[], Any]] = []
        self.on_shutdown: list[Callable[[], Any]] = []
        handlers: dict[Any, Any] = {GureumError: self.fault, HTTPException: self.fault,
                                    Exception: self.fault}
        # Full path → (family, endpoint) for the exact paths that need no middleware.
        self._exact: dict[str, tuple[Family, Endpoint]] = {}
        routes: list[Any] = [self._mount(f, handlers) for f in families]
        routes.extend(mounts or ())  # ASGI apps of their own (the console proxy at /vnc)
        routes.append(StarletteRoute("/", self.root, methods=["GET"]))
        self.starlette = _Starlette(routes=routes, exception_handlers=handlers,
                                    lifespan=self._lifespan)
        self.starlette.router.redirect_slashes = False
        self._asgi = RequestIdMiddleware(self.starlette)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            exact = self._exact.get(scope["path"])
            if exact is not None and scope["method"] in exact[1].routes:
                await self._serve_exact(exact[0], exact[1], scope, receive, send)
                return
        await self._asgi(scope, receive, send)

    async def _serve_exact(self, family: Family, endpoint: Endpoint, scope: Scope,
                           receive: Receive, send: Send) -> None:
        """What the Starlette stack does for an exact path of a family without
        middleware, without its layers: the request id, the mount's scope, the
        endpoint, and an error as the family's fault while no response has started."""
        send = with_request_id(scope, send)
        scope["app"] = self.starlette
        root = scope.get("root_path", "")
        scope["app_root_path"] = scope.get("app_root_path", root)
        scope["root_path"] = root + family.prefix
        scope[FAMILY] = family
        scope["path_params"] = {}
        scope["endpoint"] = endpoint
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await endpoint(scope, receive, sender)
        except Exception as exc:
            if started:
                raise RuntimeError("Caught handled exception, but response already "
                                   "started.") from exc
            response = await self.fault(StarletteRequest(scope, receive), exc)
            await response(scope, receive, send)

    def _mount(self, family: Family, handlers: dict[Any, Any]) -> FamilyMount:
        by_pattern: dict[str, dict[str, Route]] = {}
        for route in family.router.routes():
            by_pattern.setdefault(route.pattern, {})[route.method] = route
        # Exact paths first, as the family router looks them up before any pattern.
        ordered = sorted(by_pattern.items(), key=lambda item: "{" in item[0])
        endpoints = [(pattern, Endpoint(self, family, methods), methods)
                     for pattern, methods in ordered]
        routes = [StarletteRoute(pattern, endpoint, methods=list(methods))
                  for pattern, endpoint, methods in endpoints]
        if family.microversions is None:
            for pattern, endpoint, _ in endpoints:
                if "{" not in pattern and pattern != "/":
                    self._exact.setdefault(family.prefix + pattern, (family, endpoint))
        middleware: list[Middleware] = []
        if family.microversions is not None:
            # Inside the negotiation, so that faults carry the version headers too.
            middleware = [Middleware(MicroversionMiddleware, versions=family.microversions),
                          Middleware(ExceptionMiddleware, handlers=handlers)]
        return FamilyMount(family.prefix, FamilyRouter(routes), family, middleware)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        for fn in self.on_startup:
            result = fn()
            if asyncio.iscoroutine(result):
                await result
        yield
        for fn in self.on_shutdown:
            result = fn()
            if asyncio.iscoroutine(result):
                await result

    # -- requests ----------------------------------------------------------------------
    async def authenticate(self, req: Request) -> RequestContext:
        token = req.headers.get("x-auth-token")
        if not token:
            raise Unauthorized()
        ctx = self.authenticator.validate_fast(token, req.request_id, req.remote_addr)
        if ctx is None:
            assert req.loop is not None
            ctx = await req.loop.run_in_executor(self.executor, self.authenticator.validate,
                                                 token, req.request_id, req.remote_addr)
        return ctx

    async def invoke(self, route: Route, req: Request) -> StarletteResponse:
        if route.is_async:
            result: StarletteResponse = await route.handler(req)
            return result
        assert req.loop is not None
        return await req.loop.run_in_executor(self.executor, self._run_sync, route, req)

    def _run_sync(self, route: Route, req: Request) -> StarletteResponse:
        if route.tx:
            return transaction.run(self.state.db, route.tx, route.handler, req)
        result: StarletteResponse = route.handler(req)
        return result

    # -- the root document and faults ----------------------------------------------------
    async def root(self, request: StarletteRequest) -> Response:
        req = Request(request.scope, request.receive)
        services = {f.name: req.host_url + f.prefix for f in self.families.values()}
        return json_response({"gureum": {"version": __version__, "services": services}})

    async def fault(self, request: StarletteRequest, exc: Exception) -> Response:
        """Starlette's exception handler: the error as its family's fault body."""
        scope = request.scope
        req = Request(scope, request.receive)
        err = as_error(exc, req)
        if err.status >= 500:
            log.error("%s %s %s: %s", req.request_id, req.method, scope["path"], err.message)
        family: Family | None = scope.get(FAMILY)
        if family is None:
            return root_fault(err, req)
        return family.render_error(err, req)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Starlette(Starlette):
    """Starlette, with every error answered by the exception handlers.

    Starlette puts a ServerErrorMiddleware outside everything, for the errors no
    handler takes; here the handlers take every exception (a 500 is a family fault
    too), so that layer would only cost time on each request.
    """

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = ExceptionMiddleware(self.router, handlers=self.exception_handlers,
                                           debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def as_error(exc: Exception, req: Request) -> GureumError:
    """Any exception as a GureumError (Starlette's own HTTP errors included)."""
    if isinstance(exc, GureumError):
        return exc
    if isinstance(exc, HTTPException):
        if exc.status_code == 405:
            allowed = tuple(sorted(m.strip() for m in (exc.headers or {}).get("Allow", "")
                                   .split(",") if m.strip()))
            return MethodNotAllowed(
                f"The method {req.method} is not allowed for this resource "
                f"(allowed: {', '.join(allowed)}).", allowed=allowed)
        if exc.status_code == 404:
            return NotFound("The resource could not be found.")
        if exc.status_code == 413:
            return PayloadTooLarge(exc.detail)
        err = GureumError(exc.detail)
        err.status = exc.status_code
        return err
    return internal_error(req.request_id)


def internal_error(request_id: str) -> GureumError:
    return GureumError("The server has either erred or is incapable of performing the "
                       f"requested operation (request {request_id}).")


def root_fault(err: GureumError, req: Request) -> Response:
    """Outside every family: Keystone's shape, the first thing a client talks to."""
    return json_response({"error": {"code": err.status, "title": err.title,
                                    "message": err.message}}, err.status)


class Endpoint:
    """The ASGI app behind one path pattern of a family.

    Starlette has matched the path and answered a method the pattern lacks
    (405); this picks the handler for the method, reads the body, authenticates
    the caller and runs the handler (a sync one in the worker pool).
    """

    def __init__(self, app: GureumApp, family: Family, routes: dict[str, Route]) -> None:
        self.app = app
        self.family = family
        self.routes = dict(routes)
        if "GET" in routes and "HEAD" not in routes:
            self.routes["HEAD"] = routes["GET"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes[scope["method"]]
        req = Request(scope, receive)
        req.route = route
        req.app_state = self.app.state
        req.loop = asyncio.get_running_loop()
        req.body_timeout = self.app.body_timeout
        try:
            refuse_nul_in_url(req)
            if self.family.before is not None:
                self.family.before(req)
            if not route.stream and ("content-length" in req.headers
                                     or "transfer-encoding" in req.headers):
                req.body = await read_body(req)
            if route.auth:
                req.context = await self.app.authenticate(req)
            response = await self.app.invoke(route, req)
        except GureumError:
            raise
        except Exception:
            log.exception("%s %s %s failed", req.request_id, req.method, scope["path"])
            raise internal_error(req.request_id) from None
        await response(scope, receive, send)


class RequestIdMiddleware:
    """Gives every request an id and every response the x-openstack-request-id header
    (and ``connection: close`` when the request's body was left unread)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, with_request_id(scope, send))


def with_request_id(scope: Scope, send: Send) -> Send:
    """Give the request an id; ``send`` with the id's header (and ``connection: close``
    when the request's body was left unread) on the response."""
    request_id = new_request_id()
    scope[REQUEST_ID] = request_id
    header = (b"x-openstack-request-id", request_id.encode())

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
            if scope.get(CLOSE):
                message["headers"].append((b"connection", b"close"))
        await send(message)

    return send_with_id
