"""What one host's network agent should carry: plain JSON over the bus.

The conductor builds a ``HostNetState`` from the database (``network_state(host)``);
the agent hands it to its data plane, whose ``sync`` converges the host on it.
Every field is always present (empty list, ``None`` or ``False`` when there is
nothing), so a data plane never needs ``.get``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, TypedDict


class FixedIP(TypedDict):
    subnet_id: str
    ip_address: str


class Route(TypedDict):
    destination: str
    nexthop: str


class AllocationPool(TypedDict):
    start: str
    end: str


class SubnetState(TypedDict):
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: list[str]
    host_routes: list[Route]
    allocation_pools: list[AllocationPool]


class DhcpPort(TypedDict):
    """The network's ``network:dhcp`` port (dnsmasq's address)."""

    id: str
    mac_address: str
    fixed_ips: list[FixedIP]


class NetPort(TypedDict):
    """A port of the network (for dnsmasq's host entries)."""

    id: str
    mac_address: str
    fixed_ips: list[FixedIP]
    device_owner: str
    extra_dhcp_opts: list[dict[str, Any]]


class NetworkState(TypedDict):
    id: str
    mtu: int
    network_type: str
    segmentation_id: int | None
    physical_network: str | None
    bridge: str  # brq… (gureum.network.bindings.bridge_name)
    subnets: list[SubnetState]
    dhcp: bool  # this host serves DHCP for the network
    dhcp_ports: list[DhcpPort]
    ports: list[NetPort]


class RouterGateway(TypedDict):
    network_id: str
    bridge: str
    port_id: str
    mac_address: str
    fixed_ips: list[FixedIP]
    gateway_ip: str | None  # the external subnet's gateway (the default route)
    cidr: str  # the external subnet's CIDR (the gateway address's prefix)


class RouterInterface(TypedDict):
    port_id: str
    network_id: str
    bridge: str
    mac_address: str
    fixed_ips: list[FixedIP]
    cidr: str


class FloatingIPState(TypedDict):
    floating_ip_address: str
    fixed_ip_address: str
    port_id: str


class PortForwardingState(TypedDict):
    floating_ip_address: str  # the external address (the floating IP's)
    protocol: str
    external_port: int
    internal_ip_address: str
    internal_port: int


class RouterState(TypedDict):
    id: str
    name: str
    external: RouterGateway | None
    enable_snat: bool
    interfaces: list[RouterInterface]
    routes: list[Route]
    floating_ips: list[FloatingIPState]
    # Of every floating IP of the router.
    port_forwardings: list[PortForwardingState]


class SecurityGroupRule(TypedDict):
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None  # remote groups already expanded into prefixes


class BoundPort(TypedDict):
    """A port bound to this host (its tap, and its security groups)."""

    id: str
    network_id: str
    tap: str  # the tap the host's hypervisor plugged (``tap_name``)
    mac_address: str
    fixed_ips: list[FixedIP]
    port_security_enabled: bool
    allowed_address_pairs: list[dict[str, str]]
    security_group_rules: list[SecurityGroupRule]


class HostNetState(TypedDict):
    host: str
    networks: list[NetworkState]
    routers: list[RouterState]
    ports: list[BoundPort]


def tap_name(port_id: str, host: str) -> str:
    """A port's tap device on ``host``: the name the QEMU driver gives it
    (``gureum.virt.qemu.vif.tap_name``: "tap" + 8 characters of the id + "-" + a tag
    of the host, so hosts sharing one machine never collide), not Neutron's
    ``("tap" + port_id)[:14]`` — a data plane must find the tap that exists."""
    tag = host if re.fullmatch(r"[A-Za-z0-9]{1,3}", host) else \
        hashlib.sha1(host.encode()).hexdigest()[:3]
    return f"tap{port_id[:8]}-{tag}"[:15]


def empty(host: str) -> HostNetState:
    """Nothing to carry: what a host converges on when it has no work."""
    return {"host": host, "networks": [], "routers": [], "ports": []}
