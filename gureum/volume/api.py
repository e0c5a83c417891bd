"""The Block Storage v3 API family (Cinder-compatible), mounted at /volume.

Version discovery (unauthenticated) and the family's routes. Every resource is
served both at ``/v3/<resource>`` (the catalog's endpoint, as devstack
registers it since Cinder 3.x made the project optional) and at
``/v3/{project_id}/<resource>`` (older catalogs and cinderclient). Handlers are
registered with :func:`route`, which adds both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gureum.api.app import Family
from gureum.api.faults import compute_fault
from gureum.api.microversion import Microversions, fmt
from gureum.api.web import Handler, Request, Response, Router, json_response

# 3.71 is the newest openstacksdk's block-storage proxy and the CLI ask for.
MICROVERSIONS = Microversions("volume", (3, 0), (3, 71))

# (method, path under /v3, handler, options), in registration order.
_ROUTES: list[tuple[str, str, Handler, dict[str, Any]]] = []


def route(method: str, path: str, **opts: Any) -> Callable[[Handler], Handler]:
    """Register a handler for ``/v3{path}`` and ``/v3/{project_id}{path}``."""
    opts.setdefault("tx", True)

    def deco(fn: Handler) -> Handler:
        _ROUTES.append((method, path, fn, opts))
        return fn
    return deco


def version_doc(req: Request) -> dict[str, Any]:
    return {"id": "v3.0", "status": "CURRENT", "version": fmt(MICROVERSIONS.maximum),
            "min_version": fmt(MICROVERSIONS.minimum), "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{req.base_url}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


async def versions(req: Request) -> Response:
    return json_response({"versions": [version_doc(req)]}, 300)


async def version(req: Request) -> Response:
    return json_response({"versions": [version_doc(req)]})


def _before(req: Request) -> None:
    if "\x00" in req.path:
        from gureum.volume import errors as e

        raise e.bad_request("The request path contains a NUL character.")


def family() -> Family:
    from gureum.volume import (  # noqa: F401  (their routes register on import)
        api_actions,
        api_attachments,
        api_backups,
        api_discovery,
        api_groups,
        api_limits,
        api_messages,
        api_services,
        api_snapshots,
        api_transfers,
        api_types,
        api_volumes,
    )

    router = Router()
    router.add("GET", "/", versions, auth=False)
    router.add("GET", "/v3", version, auth=False)
    router.add("GET", "/v3/", version, auth=False)
    for method, path, fn, opts in _ROUTES:
        router.add(method, f"/v3{path}", fn, **opts)
    for method, path, fn, opts in _ROUTES:
        router.add(method, f"/v3/{{url_project}}{path}", fn, **opts)
    return Family("volume", "/volume", router, compute_fault, before=_before,
                  microversions=MICROVERSIONS)
