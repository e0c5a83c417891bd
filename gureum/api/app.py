"""The ASGI application: API families under path prefixes, one dispatcher.

Every request gets a request id (``x-openstack-request-id``), is routed inside
its family, authenticated from ``X-Auth-Token`` unless the route is public,
and answered; every error becomes the family's fault body. A client can never
cause a 500: unexpected exceptions are logged with the request id and answered
with a generic message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from gureum import __version__
from gureum.api import transaction
from gureum.api.web import (
    Receive,
    Request,
    Response,
    Route,
    Router,
    Scope,
    Send,
    json_response,
    read_body,
    send_response,
)
from gureum.context import RequestContext, new_request_id
from gureum.errors import GureumError, NotFound, Unauthorized

log = logging.getLogger("gureum.api")


class Authenticator(Protocol):
    def validate_fast(self, token: str, req: Request) -> RequestContext | None:
        """The context from caches alone, or None when the database is needed."""

    def validate(self, token: str, req: Request) -> RequestContext:
        """The context for a token; may read the database (runs in a thread)."""


@dataclass
class Family:
    """One API (identity, compute, …): its prefix, routes and fault format."""

    name: str
    prefix: str
    router: Router
    render_error: Callable[[GureumError, Request], Response]
    # Runs before authentication (e.g. microversion negotiation); may raise.
    before: Callable[[Request], None] | None = None
    # Adds family headers to every response (e.g. the microversion).
    decorate: Callable[[Request, Response], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class GureumApp:
    """The ASGI callable serving every family."""

    def __init__(self, state: Any, families: list[Family], authenticator: Authenticator
                 ) -> None:
        self.state = state
        self.families = {f.prefix: f for f in families}
        self.authenticator = authenticator
        self.executor: ThreadPoolExecutor = state.executor
        self.on_startup: list[Callable[[], Any]] = []
        self.on_shutdown: list[Callable[[], Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for fn in self.on_startup:
                    result = fn()
                    if asyncio.iscoroutine(result):
                        await result
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for fn in self.on_shutdown:
                    result = fn()
                    if asyncio.iscoroutine(result):
                        await result
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _family_for(self, path: str) -> Family | None:
        end = path.find("/", 1)
        prefix = path if end < 0 else path[:end]
        return self.families.get(prefix)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        path: str = scope["path"]
        family = self._family_for(path)
        if family is None:
            await self._root(scope, receive, send, loop)
            return
        req = Request(scope, receive, family.prefix, path[len(family.prefix):] or "/")
        req.request_id = new_request_id()
        req.app_state = self.state
        req.loop = loop
        try:
            route, params = family.router.match(req.method, req.path)
            req.route = route
            req.path_params = params
            if family.before is not None:
                family.before(req)
            if not route.stream:
                req.body = await read_body(receive)
            if route.auth:
                req.context = await self._authenticate(req, loop)
            response = await self._invoke(route, req, loop)
        except GureumError as err:
            if err.status >= 500:
                log.error("%s %s %s: %s", req.request_id, req.method, path, err.message)
            response = family.render_error(err, req)
        except Exception:
            log.exception("%s %s %s failed", req.request_id, req.method, path)
            response = family.render_error(
                GureumError("The server has either erred or is incapable of performing the "
                            f"requested operation (request {req.request_id})."), req)
        response.headers["x-openstack-request-id"] = req.request_id
        if family.decorate is not None:
            family.decorate(req, response)
        await send_response(send, response, req.method == "HEAD", loop, self.executor)

    async def _authenticate(self, req: Request, loop: asyncio.AbstractEventLoop
                            ) -> RequestContext:
        token = req.headers.get("x-auth-token")
        if not token:
            raise Unauthorized()
        ctx = self.authenticator.validate_fast(token, req)
        if ctx is None:
            ctx = await loop.run_in_executor(self.executor, self.authenticator.validate,
                                             token, req)
        return ctx

    async def _invoke(self, route: Route, req: Request, loop: asyncio.AbstractEventLoop
                      ) -> Response:
        if route.is_async:
            result: Response = await route.handler(req)
            return result
        return await loop.run_in_executor(self.executor, self._run_sync, route, req)

    def _run_sync(self, route: Route, req: Request) -> Response:
        if route.tx:
            return transaction.run(self.state.db, route.tx, route.handler, req)
        result: Response = route.handler(req)
        return result

    async def _root(self, scope: Scope, receive: Receive, send: Send,
                    loop: asyncio.AbstractEventLoop) -> None:
        req = Request(scope, receive, "", scope["path"])
        if scope["path"] in ("/", ""):
            services = {f.name: req.host_url + f.prefix for f in self.families.values()}
            response = json_response({"gureum": {"version": __version__,
                                                 "services": services}})
        else:
            err = NotFound("The resource could not be found.")
            response = json_response({"error": {"code": 404, "title": err.title,
                                                "message": err.message}}, 404)
        response.headers["x-openstack-request-id"] = new_request_id()
        await send_response(send, response, scope["method"] == "HEAD", loop, self.executor)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
