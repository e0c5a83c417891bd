"""Version discovery for the API families whose services arrive later.

Clients (keystoneauth, openstacksdk) read these documents before anything
else; answering them correctly keeps the CLI from failing on discovery. Each
family replaces its stub with its full API as it lands.
"""

from __future__ import annotations

from typing import Any

from gureum.api.app import Family
from gureum.api.faults import compute_fault
from gureum.api.web import Request, Response, Router, json_response

VOLUME_MAX = "3.0"


def volume_version(req: Request) -> dict[str, Any]:
    return {"id": "v3.0", "status": "CURRENT", "version": VOLUME_MAX, "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{req.base_url}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


def volume_family() -> Family:
    router = Router()

    async def versions(req: Request) -> Response:
        return json_response({"versions": [volume_version(req)]}, 300)

    async def version(req: Request) -> Response:
        return json_response({"versions": [volume_version(req)]})

    router.add("GET", "/", versions, auth=False)
    router.add("GET", "/v3", version, auth=False)
    from gureum.api import volume_quotas  # read-only quotas/limits until Block Storage lands

    router.include(volume_quotas.router)
    return Family("volume", "/volume", router, compute_fault)
