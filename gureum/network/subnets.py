"""Subnets: CIDR, gateway, allocation pools, DNS servers, host routes, IPv6 modes."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import ipam, policy, resources, subnetpools
from gureum.network import models as m

MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
IPV6_MIN_MTU = 1280  # RFC 8200


def _nameservers(values: list[str], version: int, subnet_id: str | None) -> list[str]:
    out: list[str] = []
    for value in values:
        ip = ipam.parse_ip(value, "dns_nameservers")
        if str(ip) in out:
            raise e.invalid_input(f"Duplicate nameserver '{value}'", "dns_nameservers")
        out.append(str(ip))
    if len(out) > MAX_DNS_NAMESERVERS:
        raise e.typed_bad_request("DNSNameServersExhausted", f"Unable to complete operation "
                                  f"for {subnet_id}. The number of DNS nameservers exceeds "
                                  f"the limit {MAX_DNS_NAMESERVERS}.", "dns_nameservers")
    return out


def _routes(values: list[dict[str, str]], version: int, subnet_id: str | None
            ) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for route in values:
        dest = ipam.parse_cidr(route["destination"], "host_routes")
        nexthop = ipam.parse_ip(route["nexthop"], "host_routes")
        if dest.version != version or nexthop.version != version:
            raise e.invalid_input(f"Host route {route['destination']} via "
                                  f"{route['nexthop']} is not IPv{version}", "host_routes")
        item = {"destination": str(dest), "nexthop": str(nexthop)}
        if item in out:
            raise e.invalid_input(f"Duplicate hostroute '{route['destination']}'",
                                  "host_routes")
        out.append(item)
    if len(out) > MAX_HOST_ROUTES:
        raise e.typed_bad_request("HostRoutesExhausted", f"Unable to complete operation for "
                                  f"{subnet_id}. The number of host routes exceeds the "
                                  f"limit {MAX_HOST_ROUTES}.", "host_routes")
    return out


def _ipv6_modes(body: dict[str, Any], net: ipam.IPNetwork, enable_dhcp: bool) -> None:
    ra, addr = body.get("ipv6_ra_mode"), body.get("ipv6_address_mode")
    if ra is None and addr is None:
        return
    if net.version == 4:
        raise e.invalid_input("ipv6_ra_mode and ipv6_address_mode are only valid for IPv6 "
                              "subnets", "ipv6_ra_mode" if ra else "ipv6_address_mode")
    if ra and addr and ra != addr:
        raise e.invalid_input(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                              f"'{addr}' is not valid. If both attributes are set, they must "
                              "be the same value", "ipv6_ra_mode")
    if not enable_dhcp:
        raise e.invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when "
                              "enable_dhcp is set to False", "enable_dhcp")
    if addr in ipam.AUTO_ADDRESS_MODES and net.prefixlen != 64:
        raise e.invalid_input(f"Invalid CIDR {net} for IPv6 address mode. OpenStack uses the "
                              "EUI-64 address format, which requires the prefix to be /64",
                              "cidr")


def _cidr(s: Session, ctx: RequestContext, body: dict[str, Any], network: m.Network,
          project_id: str) -> tuple[ipam.IPNetwork, m.SubnetPool | None]:
    """The new subnet's CIDR (given, or allocated from its subnet pool) and the pool."""
    pool = subnetpools.for_subnet(s, ctx, body)
    if pool is not None:
        net = subnetpools.allocate(s, pool, body, project_id)
    else:
        if "ip_version" not in body:
            raise e.bad_request("Failed to parse request. Required attribute 'ip_version' "
                                "not specified", "ip_version")
        if not body.get("cidr"):
            raise e.bad_request("A cidr must be specified in the absence of a subnet pool",
                                "cidr")
        net = ipam.parse_cidr(body["cidr"])
        if net.version != body["ip_version"]:
            raise e.invalid_input(f"Cidr {body['cidr']} does not match ip_version "
                                  f"{body['ip_version']}", "cidr")
    if net.prefixlen == 0:
        raise e.invalid_input("0 is not allowed as CIDR prefix length", "cidr")
    for other in network.subnets:
        if ipaddress.ip_network(other.cidr).overlaps(net):
            raise e.invalid_input(f"Requested subnet with cidr: {net} for network: "
                                  f"{network.id} overlaps with another subnet", "cidr")
    return net, pool


def create_subnet(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.Subnet:
    policy.writer(ctx, "create_subnet")
    network = resources.get_network(s, ctx, body["network_id"])
    policy.check_owner(ctx, network.project_id, "create_subnet")
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "subnet")
    net, pool = _cidr(s, ctx, body, network, project_id)
    if "gateway_ip" not in body:
        gateway = ipam.default_gateway(net)
    elif body["gateway_ip"] is None:
        gateway = None
    else:
        gateway = ipam.check_gateway(net, body["gateway_ip"])
    pools = ipam.check_pools(net, body["allocation_pools"], gateway) \
        if body.get("allocation_pools") else ipam.default_pools(net, gateway)
    enable_dhcp = body.get("enable_dhcp", True)
    _ipv6_modes(body, net, enable_dhcp)
    if net.version == 6 and network.mtu < IPV6_MIN_MTU:
        raise e.invalid_input(f"IPv6 subnet on network {network.id} needs an MTU of at "
                              f"least {IPV6_MIN_MTU}; the network's is {network.mtu}", "cidr")
    subnet = m.Subnet(
        project_id=project_id, network=network, name=body.get("name") or "",
        description=body.get("description") or "", ip_version=net.version, cidr=str(net),
        gateway_ip=gateway, enable_dhcp=enable_dhcp, allocation_pools=pools,
        dns_nameservers=_nameservers(body.get("dns_nameservers") or [], net.version, None),
        host_routes=_routes(body.get("host_routes") or [], net.version, None),
        ipv6_ra_mode=body.get("ipv6_ra_mode"), ipv6_address_mode=body.get("ipv6_address_mode"),
        service_types=list(body.get("service_types") or []),
        dns_publish_fixed_ip=body.get("dns_publish_fixed_ip", False),
        subnetpool_id=pool.id if pool is not None else None)
    s.add(subnet)
    s.flush()
    resources.touch(network)
    if body.get("tags"):
        resources.set_tags(s, subnet, body["tags"])
    return subnet


def update_subnet(s: Session, ctx: RequestContext, subnet_id: str, body: dict[str, Any]
                  ) -> m.Subnet:
    subnet = resources.get_subnet(s, ctx, subnet_id)
    policy.writer(ctx, "update_subnet")
    policy.check_owner(ctx, subnet.project_id, "update_subnet")
    net = ipaddress.ip_network(subnet.cidr)
    gateway = subnet.gateway_ip
    if "gateway_ip" in body:
        gateway = None if body["gateway_ip"] is None else ipam.check_gateway(
            net, body["gateway_ip"])
        if gateway is not None and gateway != subnet.gateway_ip:
            holder = s.scalar(select(m.IPAllocation.port_id).where(
                m.IPAllocation.subnet_id == subnet.id, m.IPAllocation.ip_address == gateway))
            if holder:
                raise e.conflict("GatewayIpInUse", f"Current gateway ip {gateway} already "
                                 f"in use by port {holder}. Unable to update.")
    pools = body.get("allocation_pools")
    if pools is not None or "gateway_ip" in body:
        subnet.allocation_pools = ipam.check_pools(
            net, pools if pools is not None else subnet.allocation_pools, gateway)
    subnet.gateway_ip = gateway
    if "enable_dhcp" in body:
        if not body["enable_dhcp"] and (subnet.ipv6_ra_mode or subnet.ipv6_address_mode):
            raise e.invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when "
                                  "enable_dhcp is set to False", "enable_dhcp")
        subnet.enable_dhcp = body["enable_dhcp"]
    if "dns_nameservers" in body:
        subnet.dns_nameservers = _nameservers(body["dns_nameservers"] or [], net.version,
                                              subnet.id)
    if "host_routes" in body:
        subnet.host_routes = _routes(body["host_routes"] or [], net.version, subnet.id)
    for key in ("name", "description"):
        if key in body:
            setattr(subnet, key, body[key] or "")
    if "service_types" in body:
        subnet.service_types = list(body["service_types"] or [])
    if "dns_publish_fixed_ip" in body:
        subnet.dns_publish_fixed_ip = body["dns_publish_fixed_ip"]
    resources.touch(subnet)
    s.flush()
    return subnet


def delete_subnet(s: Session, ctx: RequestContext, subnet_id: str) -> None:
    subnet = resources.get_subnet(s, ctx, subnet_id)
    policy.writer(ctx, "delete_subnet")
    policy.check_owner(ctx, subnet.project_id, "delete_subnet")
    allocations = list(s.scalars(select(m.IPAllocation).where(
        m.IPAllocation.subnet_id == subnet.id)))
    owners = {p.id: p.device_owner for p in s.scalars(select(m.Port).where(
        m.Port.id.in_({a.port_id for a in allocations})))}
    if any(owners.get(a.port_id) != "network:dhcp" for a in allocations):
        raise e.subnet_in_use(subnet.id)
    for a in allocations:
        s.delete(a)
    network = subnet.network
    resources.drop_tags(s, subnet.id)
    s.delete(subnet)
    s.flush()
    s.expire(network, ["subnets"])
    resources.touch(network)
