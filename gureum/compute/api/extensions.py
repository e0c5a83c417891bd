"""/v2.1/extensions: the v2-era extension list, kept for old clients.

Microversions replaced extensions; the list names the aliases whose fields
gureum's responses carry, so a client that still checks for one finds it. A
constant list: the handlers run on the event loop and need no transaction.
"""

from __future__ import annotations

from typing import Any

from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import policy
from gureum.compute.api.common import ctx_of
from gureum.errors import NotFound

router = Router()

_UPDATED = "2014-12-03T00:00:00Z"
_ALIASES = (
    ("OS-DCF", "DiskConfig", "Disk Management Extension."),
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
    ("OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."),
    ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
    ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
    ("OS-FLV-DISABLED", "FlavorDisabled", "Support to show the disabled status of a flavor."),
    ("OS-FLV-EXT-DATA", "FlavorExtraData", "Provide additional data for flavors."),
    ("OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
    ("os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create "
     "Server API. 2. Add availability zones describing."),
    ("os-flavor-access", "FlavorAccess", "Flavor access support."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
    ("os-instance-actions", "InstanceActions", "View a log of actions and events taken on "
     "an instance."),
    ("os-keypairs", "Keypairs", "Keypair Support."),
    ("os-migrations", "Migrations", "Provide data on migrations."),
    ("os-quota-sets", "Quotas", "Quotas management support."),
    ("os-server-external-events", "ServerExternalEvents", "Server External Event Triggers."),
    ("os-server-groups", "ServerGroups", "Server group support."),
    ("os-services", "Services", "Services support."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
)


def _extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "links": [],
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
            "updated": _UPDATED}


@router.get("/v2.1/extensions")
async def list_extensions(req: Request) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:extensions")
    return json_response({"extensions": [_extension(*a) for a in _ALIASES]})


@router.get("/v2.1/extensions/{alias}")
async def show_extension(req: Request) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:extensions")
    alias = req.path_params["alias"]
    for entry in _ALIASES:
        if entry[0] == alias:
            return json_response({"extension": _extension(*entry)})
    raise NotFound("The resource could not be found.")
