"""``network_data.json``: a guest's NICs, addresses and DNS as the config drive tells it.

The shape is Nova's (what its metadata service and config drive serve, and what
cloud-init, Ignition and glean read), built from ``GuestSpec.network_info``:

- ``links``: one per NIC that has a subnet: ``id`` (Nova's device name ``tap`` +
  the port id's first 11 characters), ``vif_id`` (the port), ``type`` (the
  binding's ``vif_type``: ``bridge``, ``ovs``…; ``ethernet`` is written ``phy``),
  ``ethernet_mac_address`` and ``mtu`` (the network's: S7, the MTU reaches a guest
  without DHCP too);
- ``networks``: one per NIC and IP version (the first subnet of each, as Nova):
  ``id`` (``network0``…), ``link``, ``network_id`` and ``type``. An IPv4 subnet
  with DHCP is ``ipv4_dhcp`` and says no more (the lease does); any other has its
  address: ``ipv4``, or for IPv6 ``ipv6`` / ``ipv6_slaac`` / ``ipv6_dhcpv6-stateful``
  / ``ipv6_dhcpv6-stateless`` by the subnet's ``ipv6_address_mode``, with
  ``ip_address``, ``netmask``, ``routes`` (the default route through the gateway,
  then the subnet's host routes: ``network``, ``netmask``, ``gateway``) and
  ``services`` (its DNS servers);
- ``services``: every subnet's DNS servers, once each (``{"type": "dns",
  "address"}``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

# Nova's config drive directories (openstack/<version>/); network_data.json is in
# those from 2015-10-15 on, and in ``latest``.
METADATA_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                     "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14")
NETWORK_DATA_SINCE = "2015-10-15"


def link_id(port_id: str) -> str:
    """Nova's device name of a port (``tap`` + 11 characters), the link's id."""
    return f"tap{port_id[:11]}"


def network_data(network_info: list[dict[str, Any]]) -> dict[str, Any]:
    """Nova's ``network_data.json`` for these ports (see the module docstring)."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for vif in network_info:
        subnets = vif.get("subnets") or []
        if not subnets:
            continue
        link_name = link_id(str(vif.get("port_id") or ""))
        links.append({
            "id": link_name,
            "vif_id": vif.get("port_id"),
            "type": "phy" if vif.get("vif_type") == "ethernet" else vif.get("vif_type"),
            "mtu": vif.get("mtu"),
            "ethernet_mac_address": vif.get("mac_address"),
        })
        for version in (4, 6):
            subnet = next((sn for sn in subnets if int(sn.get("ip_version") or 0) == version),
                          None)
            if subnet is None:
                continue
            ip = next((a["ip_address"] for a in vif.get("fixed_ips") or []
                       if a.get("subnet_id") == subnet.get("id")), None)
            if ip is None:
                continue
            dns = [{"type": "dns", "address": str(a)}
                   for a in subnet.get("dns_nameservers") or []]
            services += [d for d in dns if d not in services]
            networks.append(_network(vif, subnet, ip, dns, f"network{len(networks)}",
                                     link_name))
    return {"links": links, "networks": networks, "services": services}


def _network(vif: dict[str, Any], subnet: dict[str, Any], ip: str,
             dns: list[dict[str, str]], net_id: str, link: str) -> dict[str, Any]:
    cidr = ipaddress.ip_network(str(subnet["cidr"]), strict=False)
    head = {"id": net_id, "link": link, "network_id": vif.get("network_id")}
    if cidr.version == 4 and subnet.get("enable_dhcp"):
        return {**head, "type": "ipv4_dhcp"}
    kind = "ipv4"
    if cidr.version == 6:
        mode = subnet.get("ipv6_address_mode")
        kind = f"ipv6_{mode}" if mode else "ipv6"
    any_net = "0.0.0.0" if cidr.version == 4 else "::"
    routes = []
    if subnet.get("gateway_ip"):
        routes.append({"network": any_net, "netmask": any_net,
                       "gateway": str(subnet["gateway_ip"])})
    for route in subnet.get("host_routes") or []:
        dest = ipaddress.ip_network(str(route.get("destination")), strict=False)
        routes.append({"network": str(dest.network_address), "netmask": str(dest.netmask),
                       "gateway": str(route.get("nexthop"))})
    return {**head, "type": kind, "ip_address": ip, "netmask": str(cidr.netmask),
            "routes": routes, "services": dns}
