"""The Compute v2.1 API family (Nova-compatible), mounted at /compute."""

from __future__ import annotations

from gureum.api.app import Family
from gureum.api.faults import compute_fault
from gureum.api.microversion import Microversions, fmt
from gureum.api.web import Request, Response, Router, json_response

MICROVERSIONS = Microversions("compute", (2, 1), (2, 100), "x-openstack-nova-api-version")


def _version(req: Request) -> dict[str, object]:
    return {"id": "v2.1", "status": "CURRENT", "version": fmt(MICROVERSIONS.maximum),
            "min_version": fmt(MICROVERSIONS.minimum), "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{req.base_url}/v2.1/"},
                      {"rel": "describedby", "type": "text/html",
                       "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


async def versions(req: Request) -> Response:
    v2 = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
          "updated": "2011-01-21T11:33:21Z",
          "links": [{"rel": "self", "href": f"{req.base_url}/v2/"}]}
    v21 = {k: v for k, v in _version(req).items() if k != "media-types"}
    v21["links"] = [{"rel": "self", "href": f"{req.base_url}/v2.1/"}]
    return json_response({"versions": [v2, v21]})


async def version(req: Request) -> Response:
    return json_response({"version": _version(req)})


def family() -> Family:
    from gureum.compute.api import (  # the rest of the v2.1 surface
        actions,
        aggregates,
        availability_zones,
        extensions,
        external_events,
        flavors,
        floating_ip_pools,
        host_operations,
        hypervisors,
        images,
        instance_actions,
        interfaces,
        keypairs,
        migrations,
        quota_sets,
        remote_consoles,
        security_groups,
        server_groups,
        server_ips,
        server_metadata,
        server_migrations,
        server_tags,
        servers,
        services,
        usage,
        volume_attachments,
    )

    router = Router()
    router.add("GET", "/", versions, auth=False)
    router.add("GET", "/v2.1", version, auth=False)
    for module in (servers, actions, flavors, keypairs, server_migrations, remote_consoles):
        router.include(module.router)
    for module in (services, hypervisors, availability_zones, aggregates, server_groups,
                   instance_actions, migrations, quota_sets, usage, server_metadata,
                   server_tags, server_ips, extensions, images, security_groups,
                   floating_ip_pools, volume_attachments, interfaces, external_events,
                   host_operations):
        router.include(module.router)
    return Family("compute", "/compute", router, compute_fault, microversions=MICROVERSIONS)

