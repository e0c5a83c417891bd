"""The Networking v2.0 API family (Neutron-compatible), mounted at /network.

Version discovery (unauthenticated), the resource index, and the extensions
gureum honours — each alias listed here is one whose attributes and behaviour
the API really implements, so clients that probe for an extension (the CLI
does for tags, openstacksdk for AZs and QoS) get true answers.
"""

from __future__ import annotations

from typing import Any

from gureum.api.app import Family
from gureum.api.faults import network_fault
from gureum.api.web import Request, Response, Router, json_response
from gureum.errors import NotFound
from gureum.network import (
    api_bindings,
    api_extras,
    api_ip_availability,
    api_l3,
    api_resources,
    policy,
)
from gureum.network import errors as e

router = Router()

# (alias, name, description, updated) — Neutron's own metadata for each extension.
EXTENSIONS = [
    ("address-scope", "Address scope", "Address scopes extension.",
     "2015-07-26T10:00:00-00:00"),
    ("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents",
     "2013-02-07T10:00:00-00:00"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the "
     "external gateway", "2013-03-28T10:00:00-00:00"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router",
     "2013-02-01T10:00:00-00:00"),
    ("extraroute-atomic", "Atomically add/remove extra routes",
     "Edit extra routes of a router on server side by atomically adding/removing extra "
     "routes", "2019-07-10T10:00:00-00:00"),
    ("fip-port-details", "Floating IP Port Details Extension",
     "Add port_details attribute to Floating IP resource", "2018-04-09T10:00:00-00:00"),
    ("floating-ip-port-forwarding", "Floating IP Port Forwarding",
     "Provide a way to configure port forwarding on Floating IP",
     "2018-08-02T10:00:00-00:00"),
    ("l3-ha", "HA Router extension", "Adds HA capability to routers.",
     "2014-04-26T00:00:00-00:00"),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents",
     "2013-02-07T10:00:00-00:00"),
    ("router", "Neutron L3 Router",
     "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to "
     "external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"),
    ("router_availability_zone", "Router Availability Zone",
     "Availability zone support for router.", "2015-01-01T10:00:00-00:00"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs",
     "2013-07-23T10:00:00-00:00"),
    ("availability_zone", "Availability Zone", "The availability zone extension.",
     "2015-01-01T10:00:00-00:00"),
    ("binding", "Port Binding",
     "Expose port bindings of a virtual port to external application",
     "2014-02-03T10:00:00-00:00"),
    ("binding-extended", "Port Bindings Extended",
     "Expose port bindings of a virtual port to external application",
     "2017-07-17T10:00:00-00:00"),
    ("dns-domain-ports", "dns_domain for ports",
     "Allows the DNS domain to be specified for a network port.",
     "2019-02-19T00:00:00-00:00"),
    ("dns-integration", "DNS Integration", "Provides integration with DNS.",
     "2015-08-15T18:00:00-00:00"),
    ("default-subnetpools", "Default Subnetpools",
     "Provides ability to mark and use a subnetpool as the default.",
     "2016-02-18T18:00:00-00:00"),
    ("empty-string-filtering", "Empty String Filtering Extension",
     "Allow filtering by attributes with empty string value", "2018-05-01T10:00:00-00:00"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options",
     "Extra options configuration for DHCP. For example PXE boot options to DHCP clients "
     "can be specified (e.g. tftp-server, server-ip-address, bootfile-name)",
     "2013-03-17T12:00:00-00:00"),
    ("external-net", "Neutron external network",
     "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"),
    ("filter-validation", "Filter parameters validation",
     "Provides validation on filter parameters.", "2018-07-04T10:00:00-00:00"),
    ("ip-substring-filtering", "IP address substring filtering",
     "Provides IP address substring filtering when listing ports",
     "2017-11-28T09:00:00-00:00"),
    ("ip_allocation", "IP Allocation", "IP allocation extension.",
     "2016-06-10T23:00:00-00:00"),
    ("l2_adjacency", "L2 Adjacency", "Display L2 Adjacency for Neutron Networks.",
     "2016-04-12T16:00:00-00:00"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource.",
     "2015-03-25T10:00:00-00:00"),
    ("net-mtu-writable", "Network MTU (writable)",
     "Provides a writable MTU attribute for a network resource.",
     "2017-07-12T00:00:00-00:00"),
    ("network-ip-availability", "Network IP Availability",
     "Provides IP availability data for each network and subnet.",
     "2015-09-24T00:00:00-00:00"),
    ("network_availability_zone", "Network Availability Zone",
     "Availability zone support for network.", "2015-01-01T10:00:00-00:00"),
    ("pagination", "Pagination support",
     "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00"),
    ("port-security", "Port Security", "Provides port security",
     "2012-07-23T10:00:00-00:00"),
    ("project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled.",
     "2016-09-09T09:09:09-09:09"),
    ("provider", "Provider Network",
     "Expose mapping of virtual networks to physical networks",
     "2012-09-07T10:00:00-00:00"),
    ("quota-check-limit", "Quota engine limit check",
     "Support for checking the resource usage before applying a new quota limit",
     "2021-09-08T16:00:00-00:00"),
    ("quota-check-limit-default", "Quota engine limit check by default",
     "By default, the Neutron quota engine checks the resource usage before applying a new "
     "quota limit", "2024-08-21T16:00:00-00:00"),
    ("quotas", "Quota management support",
     "Expose functions for quotas management per project", "2012-07-29T10:00:00-00:00"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project",
     "2017-02-10T10:00:00-00:00"),
    ("rbac-policies", "RBAC Policies",
     "Allows creation and modification of policies that control tenant access to "
     "resources.", "2015-06-17T12:15:12-00:00"),
    ("security-group", "security-group", "The security groups extension.",
     "2012-10-05T10:00:00-00:00"),
    ("security-groups-default-rules", "Default rules for security groups",
     "Configure set of security group rules used in newly created security groups",
     "2023-02-07T10:00:00-00:00"),
    ("service-type", "Neutron Service Type Management",
     "API for retrieving service providers for Neutron advanced services",
     "2013-01-20T00:00:00-00:00"),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled.",
     "2016-06-12T00:00:00-00:00"),
    ("subnet-dns-publish-fixed-ip", "Subnet DNS publish fixed IP",
     "Support choosing to publish DNS records for IPs from a subnet",
     "2019-08-26T10:00:00-00:00"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources.",
     "2016-04-11T10:00:00-00:00"),
    ("stateful-security-group", "Stateful security group",
     "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute.",
     "2017-01-01T00:00:00-00:00"),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
     "standard attributes.", "2016-09-12T10:00:00-00:00"),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a "
     "subnet pool", "2015-03-30T10:00:00-00:00"),
    ("tag-creation", "Tag creation extension",
     "Allow to create multiple tags for a resource", "2024-07-23T10:00:00-00:00"),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation",
     "Allow to tag ports during bulk creation", "2019-12-29T19:00:00-00:00"),
]


def extension(alias: str, name: str, description: str, updated: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "updated": updated,
            "links": []}


def versions_doc(req: Request) -> dict[str, Any]:
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"{req.base_url}/v2.0/"}]}]}


@router.get("/", auth=False)
async def versions(req: Request) -> Response:
    return json_response(versions_doc(req))


@router.get("/v2.0")
async def resources(req: Request) -> Response:
    policy.reader(req.context, "get_resources")
    # Neutron's index names its core resources (and gureum, as ever, those others add).
    names = [("network", "networks"), ("subnet", "subnets"), ("subnetpool", "subnetpools"),
             ("port", "ports"), ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules"),
             ("default_security_group_rule", "default-security-group-rules"),
             ("router", "routers"),
             ("floatingip", "floatingips"), ("agent", "agents")]
    return json_response({"resources": [
        {"name": name, "collection": plural,
         "links": [{"rel": "self", "href": f"{req.base_url}/v2.0/{plural}"}]}
        for name, plural in names]})


# The router flavours the L3 service offers (Neutron's L3_ROUTER_NAT providers).
SERVICE_PROVIDERS = [{"service_type": "L3_ROUTER_NAT", "name": name, "default": False}
                     for name in ("single_node", "ha")]


@router.get("/v2.0/service-providers")
async def list_service_providers(req: Request) -> Response:
    policy.reader(req.context, "get_service_provider")
    return json_response({"service_providers": SERVICE_PROVIDERS})


@router.get("/v2.0/extensions")
async def list_extensions(req: Request) -> Response:
    policy.reader(req.context, "get_extension")
    return json_response({"extensions": [extension(*ext) for ext in EXTENSIONS]})


@router.get("/v2.0/extensions/{alias}")
async def show_extension(req: Request) -> Response:
    policy.reader(req.context, "get_extension")
    alias = req.path_params["alias"]
    for ext in EXTENSIONS:
        if ext[0] == alias:
            return json_response({"extension": extension(*ext)})
    raise NotFound(f"Extension with alias {alias} does not exist",
                   neutron_type="HTTPNotFound")


def _before(req: Request) -> None:
    # No database can store a NUL; no id of ours contains one.
    if "\x00" in req.path:
        raise e.bad_request("The request path contains a NUL character.")


def family() -> Family:
    top = Router()
    for module_router in (router, api_resources.router, api_extras.router,
                          api_bindings.router, api_l3.router, api_ip_availability.router):
        top.include(module_router)
    return Family("network", "/network", top, network_fault, before=_before)
