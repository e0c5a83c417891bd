"""Port options beyond addresses: extra DHCP options, SLAAC addresses, subnet updates."""

from __future__ import annotations

import ipaddress

from tests.functional.network_helpers import N, create, error, get, update
from tests.harness import Api


def test_extra_dhcp_opts_are_kept_merged_and_removed(api: Api, demo_token: str) -> None:
    net = create(api, demo_token, "network", name="dhcp-opts")
    port = create(api, demo_token, "port", network_id=net["id"], extra_dhcp_opts=[
        {"opt_name": "tftp-server", "opt_value": "10.0.0.5"},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 6}])
    assert port["extra_dhcp_opts"] == [
        {"opt_name": "tftp-server", "opt_value": "10.0.0.5", "ip_version": 4},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 6}]
    # An update replaces the options it names and removes those set to null.
    changed = update(api, demo_token, "port", port["id"], extra_dhcp_opts=[
        {"opt_name": "tftp-server", "opt_value": "10.0.0.6"},
        {"opt_name": "bootfile-name", "opt_value": None}])
    assert {(o["opt_name"], o["opt_value"]) for o in changed["extra_dhcp_opts"]} == {
        ("tftp-server", "10.0.0.6"), ("dns-server", "2001:db8::53")}
    assert get(api, demo_token, "port", port["id"])["extra_dhcp_opts"] == \
        changed["extra_dhcp_opts"]
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "extra_dhcp_opts": [{"opt_value": "x"}]}})
    assert "opt_name" in error(r, 400)["message"]


def test_slaac_port_address_comes_from_its_mac(api: Api, demo_token: str) -> None:
    net = create(api, demo_token, "network", name="v6-slaac")
    # No DHCP on IPv4: its port (made when the network is scheduled) would take .2.
    v4 = create(api, demo_token, "subnet", network_id=net["id"], ip_version=4,
                cidr="10.61.0.0/24", enable_dhcp=False)
    v6 = create(api, demo_token, "subnet", network_id=net["id"], ip_version=6,
                cidr="2001:db8:61::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = create(api, demo_token, "port", network_id=net["id"],
                  mac_address="fa:16:3e:12:34:56")
    by_subnet = {ip["subnet_id"]: ip["ip_address"] for ip in port["fixed_ips"]}
    assert by_subnet[v4["id"]] == "10.61.0.2"
    # EUI-64: the MAC with its U/L bit flipped and ff:fe in the middle.
    assert by_subnet[v6["id"]] == "2001:db8:61:0:f816:3eff:fe12:3456"
    assert ipaddress.ip_address(by_subnet[v6["id"]]) in ipaddress.ip_network(v6["cidr"])
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"subnet_id": v6["id"],
                                                "ip_address": "2001:db8:61::99"}]}})
    error(r, 400, "AllocationOnAutoAddressSubnet")
    # Stateful DHCPv6 hands out addresses from the pool instead.
    stateful = create(api, demo_token, "subnet", network_id=net["id"], ip_version=6,
                      cidr="2001:db8:62::/64", ipv6_address_mode="dhcpv6-stateful")
    p2 = create(api, demo_token, "port", network_id=net["id"],
                fixed_ips=[{"subnet_id": stateful["id"]}])
    ((fixed,),) = [p2["fixed_ips"]]
    assert fixed["subnet_id"] == stateful["id"]
    assert ipaddress.ip_address(fixed["ip_address"]) in ipaddress.ip_network(stateful["cidr"])
    assert fixed["ip_address"] != stateful["gateway_ip"]


def test_subnet_pools_routes_and_dns_update(api: Api, demo_token: str) -> None:
    net = create(api, demo_token, "network", name="sn-update")
    sn = create(api, demo_token, "subnet", network_id=net["id"], ip_version=4,
                cidr="10.62.0.0/24", enable_dhcp=False)
    changed = update(api, demo_token, "subnet", sn["id"],
                     allocation_pools=[{"start": "10.62.0.100", "end": "10.62.0.199"}],
                     host_routes=[{"destination": "10.63.0.0/16", "nexthop": "10.62.0.254"}],
                     dns_nameservers=["10.62.0.53", "1.1.1.1"])
    assert changed["allocation_pools"] == [{"start": "10.62.0.100", "end": "10.62.0.199"}]
    assert changed["host_routes"] == [{"destination": "10.63.0.0/16",
                                       "nexthop": "10.62.0.254"}]
    assert changed["dns_nameservers"] == ["10.62.0.53", "1.1.1.1"]
    assert create(api, demo_token, "port", network_id=net["id"])["fixed_ips"][0][
        "ip_address"] == "10.62.0.100"
    assert update(api, demo_token, "subnet", sn["id"], enable_dhcp=True)["enable_dhcp"]
    # The gateway inside the new pool: Neutron's 409.
    r = api.request("PUT", f"{N}/subnets/{sn['id']}", demo_token, json={"subnet": {
        "allocation_pools": [{"start": "10.62.0.1", "end": "10.62.0.50"}]}})
    error(r, 409, "GatewayConflictWithAllocationPools")
    cleared = update(api, demo_token, "subnet", sn["id"], host_routes=[], dns_nameservers=[])
    assert cleared["host_routes"] == [] and cleared["dns_nameservers"] == []
