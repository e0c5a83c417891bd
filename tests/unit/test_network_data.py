"""network_data.json (gureum/virt/network_data.py): Nova's shape from network_info."""

from __future__ import annotations

from typing import Any

from gureum.virt.network_data import network_data

PORT1 = "0b6c7c3e-aaaa-4a4a-8b8b-000000000001"
PORT2 = "0b6c7c3e-bbbb-4a4a-8b8b-000000000002"


def port(port_id: str, mac: str, mtu: int | None, ips: list[tuple[str, dict[str, Any]]],
         vif_type: str = "bridge") -> dict[str, Any]:
    return {"port_id": port_id, "network_id": f"net-{port_id[-1]}", "mac_address": mac,
            "mtu": mtu, "vif_type": vif_type,
            "fixed_ips": [{"ip_address": ip, "subnet_id": sn["id"]} for ip, sn in ips],
            "subnets": [sn for _, sn in ips]}


def subnet(id_: str, cidr: str, gateway: str | None = None, dhcp: bool = False,
           dns: tuple[str, ...] = (), routes: tuple[tuple[str, str], ...] = (),
           mode: str | None = None) -> dict[str, Any]:
    return {"id": id_, "cidr": cidr, "ip_version": 6 if ":" in cidr else 4,
            "gateway_ip": gateway, "enable_dhcp": dhcp, "dns_nameservers": list(dns),
            "host_routes": [{"destination": d, "nexthop": n} for d, n in routes],
            "ipv6_address_mode": mode, "ipv6_ra_mode": mode}


def test_static_ipv4_and_slaac_ipv6_on_one_port_and_a_dhcp_port() -> None:
    v4 = subnet("s4", "10.0.0.0/24", "10.0.0.1", dns=("8.8.8.8", "9.9.9.9"),
                routes=(("192.168.0.0/16", "10.0.0.9"),))
    v6 = subnet("s6", "fd00:1::/64", "fd00:1::1", dhcp=True, dns=("8.8.8.8",), mode="slaac")
    dhcp4 = subnet("d4", "10.1.0.0/24", "10.1.0.1", dhcp=True, dns=("1.1.1.1",))
    data = network_data([
        port(PORT1, "fa:16:3e:00:00:01", 1450, [("10.0.0.5", v4), ("fd00:1::5", v6)]),
        port(PORT2, "fa:16:3e:00:00:02", 1500, [("10.1.0.7", dhcp4)], vif_type="ethernet"),
    ])
    assert data["links"] == [
        {"id": "tap0b6c7c3e-aa", "vif_id": PORT1, "type": "bridge", "mtu": 1450,
         "ethernet_mac_address": "fa:16:3e:00:00:01"},
        {"id": "tap0b6c7c3e-bb", "vif_id": PORT2, "type": "phy", "mtu": 1500,
         "ethernet_mac_address": "fa:16:3e:00:00:02"},
    ]
    assert data["networks"] == [
        {"id": "network0", "type": "ipv4", "link": "tap0b6c7c3e-aa", "network_id": "net-1",
         "ip_address": "10.0.0.5", "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                    {"network": "192.168.0.0", "netmask": "255.255.0.0",
                     "gateway": "10.0.0.9"}],
         "services": [{"type": "dns", "address": "8.8.8.8"},
                      {"type": "dns", "address": "9.9.9.9"}]},
        {"id": "network1", "type": "ipv6_slaac", "link": "tap0b6c7c3e-aa",
         "network_id": "net-1", "ip_address": "fd00:1::5",
         "netmask": "ffff:ffff:ffff:ffff::",
         "routes": [{"network": "::", "netmask": "::", "gateway": "fd00:1::1"}],
         "services": [{"type": "dns", "address": "8.8.8.8"}]},
        # An IPv4 subnet with DHCP: the lease says the rest (Nova's short form).
        {"id": "network2", "type": "ipv4_dhcp", "link": "tap0b6c7c3e-bb",
         "network_id": "net-2"},
    ]
    # Every DNS server once, in order of first appearance.
    assert data["services"] == [{"type": "dns", "address": "8.8.8.8"},
                                {"type": "dns", "address": "9.9.9.9"},
                                {"type": "dns", "address": "1.1.1.1"}]


def test_ipv6_modes_name_the_network_type_and_no_gateway_means_no_default_route() -> None:
    kinds = []
    for mode in (None, "slaac", "dhcpv6-stateful", "dhcpv6-stateless"):
        v6 = subnet("s6", "fd00:2::/64", mode=mode)
        data = network_data([port(PORT1, "fa:16:3e:00:00:01", 1400,
                                  [("fd00:2::9", v6)])])
        (net,) = data["networks"]
        assert net["routes"] == [] and net["services"] == []
        kinds.append(net["type"])
    assert kinds == ["ipv6", "ipv6_slaac", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless"]


def test_ports_without_subnets_have_no_link_and_an_empty_list_is_empty() -> None:
    bare = port(PORT1, "fa:16:3e:00:00:01", 1500, [])
    assert network_data([bare]) == {"links": [], "networks": [], "services": []}
    assert network_data([]) == {"links": [], "networks": [], "services": []}
    # The first subnet of each version only, as Nova.
    a, b = subnet("a", "10.0.0.0/24"), subnet("b", "10.9.0.0/24")
    data = network_data([port(PORT1, "fa:16:3e:00:00:01", 1500,
                              [("10.0.0.2", a), ("10.9.0.2", b)])])
    assert [n["ip_address"] for n in data["networks"]] == ["10.0.0.2"]
