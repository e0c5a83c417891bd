"""Routers: gateway on an external network, interfaces on subnets, static routes.

A router's ports are ordinary ports with ``device_id`` = the router's id: its
gateway (``network:router_gateway`` on the external network, no project) and
its interfaces (``network:router_interface``, the router's project), an
interface added by subnet taking the subnet's gateway address. A router is
scheduled onto an L3 agent once it has a gateway or an interface
(``agents.schedule_router``). Functions take an open session; the caller owns
the transaction.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.network import agents, ipam, policy, ports, resources
from gureum.network import errors as e
from gureum.network import l3_models as l3
from gureum.network import models as m

MAX_ROUTES = 30  # Neutron's max_routes


def not_found(router_id: str) -> Exception:
    return e.typed_not_found("RouterNotFound", f"Router {router_id} could not be found")


def get_router(s: Session, ctx: RequestContext | None, router_id: str) -> l3.Router:
    router = s.get(l3.Router, router_id)
    if router is None or (ctx is not None and not policy.owns(ctx, router.project_id)):
        raise not_found(router_id)
    return router


def router_visible(ctx: RequestContext) -> Any:
    if ctx.is_admin:
        return None
    return l3.Router.project_id == (ctx.project_id or "")


def gateway_port(s: Session, router: l3.Router) -> m.Port | None:
    return s.get(m.Port, router.gw_port_id) if router.gw_port_id else None


def interface_ports(s: Session, router_id: str) -> list[m.Port]:
    return list(s.scalars(select(m.Port).where(
        m.Port.device_id == router_id, m.Port.device_owner == l3.ROUTER_INTERFACE)
        .order_by(m.Port.created_at, m.Port.id)))


def interface_subnets(s: Session, router_id: str) -> list[m.Subnet]:
    out: list[m.Subnet] = []
    for port in interface_ports(s, router_id):
        for alloc in port.fixed_ips:
            sn = s.get(m.Subnet, alloc.subnet_id)
            if sn is not None:
                out.append(sn)
    return out


def _down_time(settings_down_time: float | None) -> float:
    return settings_down_time if settings_down_time is not None else 75.0


# -- create / update / delete -----------------------------------------------------------

def create_router(s: Session, ctx: RequestContext, body: dict[str, Any],
                  down_time: float | None = None) -> l3.Router:
    policy.writer(ctx, "create_router")
    policy.check_admin_attrs(ctx, body, ("ha", "distributed"), "create_router")
    if body.get("distributed"):
        raise e.bad_request("Distributed routers are not supported here.", "distributed")
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "router")
    router = l3.Router(project_id=project_id, name=body.get("name") or "",
                       description=body.get("description") or "",
                       admin_state_up=body.get("admin_state_up", True),
                       ha=bool(body.get("ha", False)),
                       availability_zone_hints=list(body.get("availability_zone_hints") or []))
    _check_zones(router.availability_zone_hints)
    s.add(router)
    s.flush()
    if body.get("external_gateway_info"):
        set_gateway(s, ctx, router, body["external_gateway_info"], down_time)
    if body.get("tags"):
        resources.set_tags(s, router, body["tags"])
    return router


def _check_zones(hints: list[str]) -> None:
    from gureum.network.views import AVAILABILITY_ZONE

    for zone in hints:
        if zone != AVAILABILITY_ZONE:
            raise e.typed_not_found("AvailabilityZoneNotFound", f"AvailabilityZone {zone} "
                                    "could not be found.")


def update_router(s: Session, ctx: RequestContext, router_id: str, body: dict[str, Any],
                  down_time: float | None = None) -> l3.Router:
    router = get_router(s, ctx, router_id)
    policy.writer(ctx, "update_router")
    policy.check_admin_attrs(ctx, body, ("ha", "distributed"), "update_router")
    if body.get("distributed"):
        raise e.bad_request("Distributed routers are not supported here.", "distributed")
    if "ha" in body and body["ha"] != router.ha:
        if router.admin_state_up:
            raise e.bad_request("Cannot change HA attribute of active routers. Please set "
                                "router admin_state_up to False prior to upgrade", "ha")
        router.ha = bool(body["ha"])
    for key in ("name", "description"):
        if key in body:
            setattr(router, key, body[key] or "")
    if "admin_state_up" in body:
        router.admin_state_up = bool(body["admin_state_up"])
    if "external_gateway_info" in body:
        info = body["external_gateway_info"]
        if info:
            set_gateway(s, ctx, router, info, down_time)
        else:
            clear_gateway(s, router)
    if "routes" in body:
        router.routes = check_routes(s, router, body["routes"] or [])
    resources.touch(router)
    s.flush()
    return router


def delete_router(s: Session, ctx: RequestContext, router_id: str) -> None:
    router = get_router(s, ctx, router_id)
    policy.writer(ctx, "delete_router")
    if interface_ports(s, router.id):
        raise e.conflict("RouterInUse", f"Router {router.id} still has ports")
    if router.gw_port_id:
        clear_gateway(s, router)
    resources.drop_tags(s, router.id)
    s.delete(router)
    s.flush()


# -- the gateway ------------------------------------------------------------------------

def set_gateway(s: Session, ctx: RequestContext, router: l3.Router, info: dict[str, Any],
                down_time: float | None = None) -> None:
    """external_gateway_info: {network_id, enable_snat, external_fixed_ips}."""
    if "enable_snat" in info and not ctx.is_admin:
        raise e.policy("update_router:external_gateway_info:enable_snat")
    if "external_fixed_ips" in info and not ctx.is_admin:
        raise e.policy("update_router:external_gateway_info:external_fixed_ips")
    network_id = info.get("network_id")
    if not network_id:
        raise e.bad_request("Invalid input for external_gateway_info. Reason: network_id "
                            "is required.", "external_gateway_info")
    net = s.get(m.Network, network_id)
    if net is None:
        raise e.not_found("network", network_id)
    if not net.external:
        raise e.bad_request(f"Network {network_id} is not a valid external network",
                            "external_gateway_info")
    current = gateway_port(s, router)
    fixed = info.get("external_fixed_ips")
    if current is not None and current.network_id != net.id:
        clear_gateway(s, router)
        current = None
    if current is None:
        # An external network without subnets still takes a gateway (a port with no
        # address), as Neutron's does.
        body: dict[str, Any] = {"device_owner": l3.ROUTER_GATEWAY, "device_id": router.id}
        if fixed:
            body["fixed_ips"] = fixed
        port = ports.new_port(s, net, "", body)
        router.gw_port_id = port.id
    elif fixed is not None:
        ports._reassign_ips(s, current, fixed)
    if "enable_snat" in info:
        router.enable_snat = bool(info["enable_snat"])
    elif current is None:
        router.enable_snat = True
    s.flush()
    agents.schedule_router(s, router, _down_time(down_time))


def clear_gateway(s: Session, router: l3.Router) -> None:
    port = gateway_port(s, router)
    if port is not None:
        used = s.scalar(select(l3.FloatingIP.id).where(
            l3.FloatingIP.router_id == router.id,
            l3.FloatingIP.floating_network_id == port.network_id).limit(1))
        if used is not None:
            raise e.conflict("RouterExternalGatewayInUseByFloatingIp", "Gateway cannot be "
                             f"updated for router {router.id}, since a gateway to external "
                             f"network {port.network_id} is required by one or more "
                             "floating IPs.")
        ports.remove_port(s, port)
    router.gw_port_id = None
    router.enable_snat = True


# -- interfaces -------------------------------------------------------------------------

def _interface_info(router: l3.Router, port: m.Port, subnet_id: str) -> dict[str, Any]:
    return {"id": router.id, "tenant_id": router.project_id,
            "project_id": router.project_id, "port_id": port.id,
            "network_id": port.network_id, "subnet_id": subnet_id,
            "subnet_ids": [a.subnet_id for a in port.fixed_ips] or [subnet_id]}


def _check_overlap(s: Session, router: l3.Router, subnet: m.Subnet) -> None:
    new = ipaddress.ip_network(subnet.cidr)
    for other in interface_subnets(s, router.id):
        if other.id == subnet.id:
            raise e.bad_request(f"Router already has a port on subnet {subnet.id}",
                                "subnet_id")
        if ipaddress.ip_network(other.cidr).overlaps(new):
            raise e.bad_request(f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps with "
                                f"cidr {other.cidr} of subnet {other.id}", "subnet_id")


def add_interface(s: Session, ctx: RequestContext, router_id: str, body: dict[str, Any],
                  down_time: float | None = None) -> dict[str, Any]:
    router = get_router(s, ctx, router_id)
    policy.writer(ctx, "add_router_interface")
    if not isinstance(body, dict):
        raise e.bad_request("Either subnet_id or port_id must be specified")
    unknown = sorted(set(body) - {"subnet_id", "port_id"})
    if unknown:
        raise e.bad_request(f"Unrecognized attribute(s) {', '.join(unknown)}", unknown[0])
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    if subnet_id and port_id:
        raise e.bad_request("Cannot specify both subnet-id and port-id")
    if not subnet_id and not port_id:
        raise e.bad_request("Either subnet_id or port_id must be specified")
    if port_id:
        if not isinstance(port_id, str):
            raise e.invalid_attribute("port_id", f"'{port_id}' is not a valid UUID")
        port = resources.get_port(s, ctx, port_id)
        if port.device_owner or port.device_id:
            raise e.conflict("PortInUse", f"Unable to complete operation on port {port.id} "
                             f"for network {port.network_id}. Port already has an attached "
                             f"device {port.device_id}.")
        if not port.fixed_ips:
            raise e.bad_request("Bad router request: Router port must have at least one "
                                "fixed IP.", "port_id")
        subnets = [s.get(m.Subnet, a.subnet_id) for a in port.fixed_ips]
        for sn in subnets:
            if sn is not None:
                _check_overlap(s, router, sn)
        port.device_owner = l3.ROUTER_INTERFACE
        port.device_id = router.id
        resources.touch(port)
        first = port.fixed_ips[0].subnet_id
    else:
        if not isinstance(subnet_id, str):
            raise e.invalid_attribute("subnet_id", f"'{subnet_id}' is not a valid UUID")
        subnet = resources.get_subnet(s, ctx, subnet_id)
        if not subnet.gateway_ip:
            raise e.bad_request(f"Bad router request: Subnet {subnet.id} does not have a "
                                "gateway IP.", "subnet_id")
        if subnet.network.external:
            raise e.bad_request(f"Bad router request: Router interface on subnet "
                                f"{subnet.id} cannot be on an external network; set it as "
                                "the router's gateway instead.", "subnet_id")
        _check_overlap(s, router, subnet)
        port = ports.new_port(s, subnet.network, router.project_id, {
            "device_owner": l3.ROUTER_INTERFACE, "device_id": router.id,
            "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}]})
        first = subnet.id
    s.flush()
    s.refresh(port, ["fixed_ips"])
    resources.touch(router)
    agents.schedule_router(s, router, _down_time(down_time))
    return _interface_info(router, port, first)


def remove_interface(s: Session, ctx: RequestContext, router_id: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
    router = get_router(s, ctx, router_id)
    policy.writer(ctx, "remove_router_interface")
    if not isinstance(body, dict):
        raise e.bad_request("Either subnet_id or port_id must be specified")
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    if not subnet_id and not port_id:
        raise e.bad_request("Either subnet_id or port_id must be specified")
    found: m.Port | None = None
    for port in interface_ports(s, router.id):
        if port_id and port.id != port_id:
            continue
        if subnet_id and subnet_id not in [a.subnet_id for a in port.fixed_ips]:
            continue
        found = port
        break
    if found is None:
        if port_id:
            raise e.typed_not_found("RouterInterfaceNotFound", f"Router {router.id} does not "
                                    f"have an interface with id {port_id}")
        raise e.typed_not_found("RouterInterfaceNotFoundForSubnet", f"Router {router.id} "
                                f"has no interface on subnet {subnet_id}")
    subnet_ids = [a.subnet_id for a in found.fixed_ips]
    _check_interface_unused(s, router, found, subnet_ids)
    info = _interface_info(router, found, subnet_id or (subnet_ids[0] if subnet_ids else ""))
    ports.remove_port(s, found)
    resources.touch(router)
    return info


def _check_interface_unused(s: Session, router: l3.Router, port: m.Port,
                            subnet_ids: list[str]) -> None:
    for sid in subnet_ids:
        sn = s.get(m.Subnet, sid)
        if sn is None:
            continue
        cidr = ipaddress.ip_network(sn.cidr)
        for route in router.routes or []:
            if ipaddress.ip_address(route["nexthop"]) in cidr:
                raise e.conflict("RouterInterfaceInUseByRoute", f"Router interface for "
                                 f"subnet {sid} on router {router.id} cannot be deleted, as "
                                 "it is required by one or more routes.")
        fips = s.scalars(select(l3.FloatingIP).where(l3.FloatingIP.router_id == router.id,
                                                     l3.FloatingIP.fixed_port_id.is_not(None)))
        for fip in fips:
            fixed = s.get(m.Port, fip.fixed_port_id or "")
            if fixed is not None and any(a.subnet_id == sid for a in fixed.fixed_ips):
                raise e.conflict("RouterInterfaceInUseByFloatingIP", f"Router interface for "
                                 f"subnet {sid} on router {router.id} cannot be deleted, as "
                                 "it is required by one or more floating IPs.")


# -- routes -----------------------------------------------------------------------------

def _route(item: Any) -> dict[str, str]:
    if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
        raise e.invalid_attribute("routes", f"{item!r} is not a route: destination and "
                                  "nexthop are needed")
    destination = str(ipam.parse_cidr(item["destination"], "routes"))
    nexthop = str(ipam.parse_ip(item["nexthop"], "routes"))
    return {"destination": destination, "nexthop": nexthop}


def check_routes(s: Session, router: l3.Router, routes: list[Any]) -> list[dict[str, str]]:
    """Each nexthop must be on a subnet the router has an interface on (400 otherwise)."""
    if not isinstance(routes, list):
        raise e.invalid_attribute("routes", f"'{routes}' is not a list")
    out: list[dict[str, str]] = []
    for item in routes:
        route = _route(item)
        if route not in out:
            out.append(route)
    if len(out) > MAX_ROUTES:
        raise e.typed_bad_request("RoutesExhausted", f"Unable to complete operation for "
                                  f"{router.id}. The number of routes exceeds the maximum "
                                  f"{MAX_ROUTES}.", "routes")
    # Neutron looks at every port of the router, its gateway's included: a nexthop must
    # be on one of their subnets and must not be one of their own addresses.
    router_ports = interface_ports(s, router.id)
    gw = gateway_port(s, router)
    if gw is not None:
        router_ports.append(gw)
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    own: set[str] = set()
    for port in router_ports:
        for alloc in port.fixed_ips:
            own.add(alloc.ip_address)
            sn = s.get(m.Subnet, alloc.subnet_id)
            if sn is not None:
                cidrs.append(ipaddress.ip_network(sn.cidr))
    for route in out:
        hop = ipaddress.ip_address(route["nexthop"])
        if not any(hop in c for c in cidrs):
            raise e.typed_bad_request("InvalidRoutes", f"Invalid format for routes: {[route]}, "
                                      "the nexthop is not connected with router", "routes")
        if route["nexthop"] in own or any(
                hop == ipaddress.ip_address(sn.gateway_ip)
                for sn in interface_subnets(s, router.id) if sn.gateway_ip):
            raise e.typed_bad_request("InvalidRoutes", f"Invalid format for routes: {[route]}, "
                                      "the nexthop is used by router", "routes")
    return out


def add_extraroutes(s: Session, ctx: RequestContext, router_id: str, body: Any
                    ) -> l3.Router:
    """PUT /routers/{id}/add_extraroutes (extraroute-atomic)."""
    router = get_router(s, ctx, router_id)
    policy.writer(ctx, "add_extraroutes")
    routes = _routes_of(body)
    merged = list(router.routes or [])
    for route in (_route(r) for r in routes):
        if route not in merged:
            merged.append(route)
    router.routes = check_routes(s, router, merged)
    resources.touch(router)
    return router


def remove_extraroutes(s: Session, ctx: RequestContext, router_id: str, body: Any
                       ) -> l3.Router:
    router = get_router(s, ctx, router_id)
    policy.writer(ctx, "remove_extraroutes")
    gone = [_route(r) for r in _routes_of(body)]
    router.routes = [r for r in router.routes or [] if r not in gone]
    resources.touch(router)
    return router


def _routes_of(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("router"), dict) or \
            not isinstance(body["router"].get("routes"), list):
        raise e.bad_request("Resource body required: expected {'router': {'routes': [...]}}.",
                            "routes")
    routes: list[Any] = body["router"]["routes"]
    return routes
