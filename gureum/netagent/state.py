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
    ipv6_ra_mode: str | None  # who advertises the IPv6 subnet (radvd.py), and how
    ipv6_address_mode: str | None  # how its ports get addresses (SLAAC or DHCPv6)


class RouterSubnet(TypedDict):
    """An IPv6 subnet on a router leg (the router advertises it when ipv6_ra_mode is set)."""

    id: str
    cidr: str
    ipv6_ra_mode: str | None
    ipv6_address_mode: str | None
    dns_nameservers: list[str]


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
    ipv6_subnets: list[RouterSubnet]  # the leg's IPv6 subnets (its addresses there)


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


# Neutron's protocol names and their IP protocol numbers (neutron_lib's
# IP_PROTOCOL_MAP): the API takes these names or a number 0-255, and a data plane
# matches the number (``protocol_number``), which needs no name table of its own.
IP_PROTOCOLS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
    "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
    "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89,
    "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
# The protocols whose rules may have a port range (all carry their ports in the
# first four bytes of their header); ICMP's "range" is its type and code.
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})  # tcp, udp, dccp, sctp, udplite
ICMP_PROTOCOLS = frozenset({1, 58})


def protocol_number(value: str | int | None) -> int | None:
    """A rule's protocol as its IP protocol number: None for any protocol (None, "",
    "any", and 0, which Neutron's firewalls treat as any), else 1-255; a name or
    number that is none of these raises ValueError."""
    if value is None or value in ("", "any"):
        return None
    text = str(value).strip().lower()
    number = IP_PROTOCOLS[text] if text in IP_PROTOCOLS else int(text)
    if not 0 <= number <= 255:
        raise ValueError(f"protocol {value!r} is not 0-255")
    return number or None


class SecurityGroupRule(TypedDict):
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None  # a name of IP_PROTOCOLS or a number "0".."255"; None: any
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
    # Its security groups are stateful (Neutron's default): replies to what the rules
    # let through pass on their own. False (stateless groups; a port never mixes
    # the two): every packet, replies too, needs a rule.
    stateful: bool


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
