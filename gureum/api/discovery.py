"""Version discovery for the API families whose services arrive later.

Clients (keystoneauth, openstacksdk) read these documents before anything
else; answering them correctly keeps the CLI from failing on discovery. Each
family replaces its stub with its full API as it lands.
"""

from __future__ import annotations

from typing import Any

from gureum.api.app import Family
from gureum.api.faults import compute_fault, network_fault
from gureum.api.web import Request, Response, Router, json_response

COMPUTE_MAX = "2.1"
VOLUME_MAX = "3.0"


def compute_version(req: Request) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": COMPUTE_MAX, "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{req.base_url}/v2.1/"},
                      {"rel": "describedby", "type": "text/html",
                       "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def compute_family() -> Family:
    router = Router()

    async def versions(req: Request) -> Response:
        v2 = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
              "updated": "2011-01-21T11:33:21Z",
              "links": [{"rel": "self", "href": f"{req.base_url}/v2/"}]}
        v21 = {k: v for k, v in compute_version(req).items() if k != "media-types"}
        v21["links"] = [{"rel": "self", "href": f"{req.base_url}/v2.1/"}]
        return json_response({"versions": [v2, v21]})

    async def version(req: Request) -> Response:
        return json_response({"version": compute_version(req)})

    router.add("GET", "/", versions, auth=False)
    router.add("GET", "/v2.1", version, auth=False)
    return Family("compute", "/compute", router, compute_fault)


def network_family() -> Family:
    router = Router()

    async def versions(req: Request) -> Response:
        return json_response({"versions": [{
            "id": "v2.0", "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{req.base_url}/v2.0/"}]}]})

    async def resources(req: Request) -> Response:
        return json_response({"resources": []})

    router.add("GET", "/", versions, auth=False)
    router.add("GET", "/v2.0", resources)
    return Family("network", "/network", router, network_fault)


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
    return Family("volume", "/volume", router, compute_fault)
