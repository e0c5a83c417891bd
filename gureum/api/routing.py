"""Starlette routing for the API families: a Mount per family, a Route per path pattern.

Starlette's router tries its routes one by one, and a family has a few hundred:
the family router looks exact paths up in a dict and tries a pattern only when
its leading literal segments are the path's, in registration order, so the
first pattern that matches still wins and token validation (an exact path)
costs one dict lookup. A trailing slash is ignored, as OpenStack services do
(never redirected: clients POST to such URLs too), and a family's bare prefix
(``/identity``) is its root document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import Match, Mount, Route
from starlette.routing import Router as StarletteRouter
from starlette.types import ASGIApp, Receive, Scope, Send

from gureum.api.web import FAMILY
from gureum.errors import NotFound

Head = tuple[str, ...]


def route_path(scope: Scope) -> str:
    """The request path below the mount it is in (the scope's root_path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _head(pattern: str) -> Head:
    """The leading literal segments of a pattern, at most two."""
    head: list[str] = []
    for segment in pattern.split("/")[1:3]:
        if "{" in segment:
            break
        head.append(segment)
    return tuple(head)


class FamilyRouter(StarletteRouter):
    """One family's routes (Starlette ``Route`` objects, one per path pattern)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        super().__init__(list(routes), redirect_slashes=False)
        self._exact: dict[str, Route] = {}
        dynamic: list[tuple[Head, Route]] = []
        for route in routes:
            if route.param_convertors:
                dynamic.append((_head(route.path), route))
            else:
                self._exact.setdefault(route.path, route)
        heads = {head for head, _ in dynamic}
        heads |= {head[:1] for head in heads}
        self._candidates: dict[Head, list[Route]] = {
            head: [r for h, r in dynamic if h == head[:len(h)]] for head in heads | {()}}

    def candidates(self, path: str) -> list[Route]:
        segments = tuple(path.split("/", 3)[1:3])
        for n in (2, 1):
            found = self._candidates.get(segments[:n]) if len(segments) >= n else None
            if found is not None:
                return found
        return self._candidates[()]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = route_path(scope)
        if not path or (len(path) > 1 and path.endswith("/")):
            path = path.rstrip("/") or "/"
            scope["path"] = root + path
        route = self._exact.get(path)
        if route is not None:
            scope["route"] = route
            scope["endpoint"] = route.endpoint
            scope["path_params"] = {}
            await route.handle(scope, receive, send)
            return
        for route in self.candidates(path):
            match, child_scope = route.matches(scope)
            if match is not Match.NONE:  # PARTIAL: the path is this one's, not the method
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
        raise NotFound("The resource could not be found.")


class FamilyMount(Mount):
    """A family's prefix; also matches the bare prefix, and marks the scope with the
    family so that errors anywhere below are written as the family's faults."""

    def __init__(self, path: str, app: ASGIApp, family: Any,
                 middleware: Sequence[Middleware] | None = None) -> None:
        super().__init__(path, app=app, middleware=middleware)
        self.family = family

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return super().matches(scope)
        path = route_path(scope)
        prefix = self.path
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            root = scope.get("root_path", "")
            return Match.FULL, {"path_params": dict(scope.get("path_params", {})),
                                "app_root_path": scope.get("app_root_path", root),
                                "root_path": root + prefix, "endpoint": self.app,
                                FAMILY: self.family}
        return Match.NONE, {}
