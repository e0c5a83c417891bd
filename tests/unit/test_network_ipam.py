"""Subnet arithmetic, pools, EUI-64, MACs and Neutron-style validation messages."""

from __future__ import annotations

import ipaddress

import pytest

from gureum.errors import Conflict, InvalidInput
from gureum.network import ipam, networks, schemas
from gureum.network import models as m
from gureum.network.ports import check_mac, random_mac


def net(cidr: str) -> ipam.IPNetwork:
    return ipaddress.ip_network(cidr)


def test_parse_cidr_takes_host_bits_as_neutron_does() -> None:
    assert str(ipam.parse_cidr("10.0.0.0/24")) == "10.0.0.0/24"
    assert str(ipam.parse_cidr("2001:DB8::/64")) == "2001:db8::/64"
    # neutron-lib's validate_subnet accepts what netaddr prints back unchanged…
    assert str(ipam.parse_cidr("10.0.0.7/24")) == "10.0.0.0/24"
    assert str(ipam.parse_cidr("10.99.99.0/16")) == "10.99.0.0/16"
    # …and recommends the network form for anything else.
    with pytest.raises(InvalidInput, match=r"'10\.0\.0\.0/24' is recommended"):
        ipam.parse_cidr("10.0.0.0/024")
    for bad in ("10.0.0.0", "10.0.0.0/33", "x/24", 5, None):
        with pytest.raises(InvalidInput, match="cidr"):
            ipam.parse_cidr(bad)


@pytest.mark.parametrize("cidr,gateway,pools", [
    ("10.0.0.0/24", "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
    ("10.0.0.0/26", "10.0.0.1", [("10.0.0.2", "10.0.0.62")]),
    ("10.0.0.0/30", "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
    ("10.0.0.0/31", "10.0.0.0", [("10.0.0.1", "10.0.0.1")]),
    ("10.0.0.4/32", "10.0.0.4", []),
    ("2001:db8::/64", "2001:db8::1", [("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]),
])
def test_default_gateway_and_pools(cidr: str, gateway: str, pools: list[tuple[str, str]]
                                   ) -> None:
    assert ipam.default_gateway(net(cidr)) == gateway
    assert ipam.default_pools(net(cidr), gateway) == [{"start": a, "end": b} for a, b in pools]


def test_default_pools_around_a_middle_gateway() -> None:
    assert ipam.default_pools(net("10.0.0.0/29"), "10.0.0.3") == [
        {"start": "10.0.0.1", "end": "10.0.0.2"}, {"start": "10.0.0.4", "end": "10.0.0.6"}]
    assert ipam.default_pools(net("10.0.0.0/29"), None) == [
        {"start": "10.0.0.1", "end": "10.0.0.6"}]


def test_check_pools() -> None:
    n = net("10.0.0.0/24")
    pools = [{"start": "10.0.0.100", "end": "10.0.0.110"},
             {"start": "10.0.0.10", "end": "10.0.0.20"}]
    assert ipam.check_pools(n, pools, "10.0.0.1") == [pools[1], pools[0]]  # sorted
    with pytest.raises(InvalidInput) as bad:
        ipam.check_pools(n, [{"start": "10.0.0.0", "end": "10.0.0.5"}], None)
    assert bad.value.details["neutron_type"] == "OutOfBoundsAllocationPool"
    with pytest.raises(InvalidInput) as bad:
        ipam.check_pools(n, [{"start": "10.0.0.9", "end": "10.0.0.5"}], None)
    assert bad.value.details["neutron_type"] == "InvalidAllocationPool"
    with pytest.raises(InvalidInput):
        ipam.check_pools(n, [{"start": "2001:db8::1", "end": "2001:db8::5"}], None)
    with pytest.raises(Conflict) as conflict:
        ipam.check_pools(n, [*pools, {"start": "10.0.0.15", "end": "10.0.0.30"}], None)
    assert conflict.value.details["neutron_type"] == "OverlappingAllocationPools"
    with pytest.raises(Conflict) as conflict:
        ipam.check_pools(n, pools, "10.0.0.15")
    assert conflict.value.details["neutron_type"] == "GatewayConflictWithAllocationPools"


def test_check_gateway() -> None:
    assert ipam.check_gateway(net("10.0.0.0/24"), "10.0.0.254") == "10.0.0.254"
    for bad in ("10.0.0.0", "10.0.0.255", "10.0.1.1", "2001:db8::1", "nope"):
        with pytest.raises(InvalidInput):
            ipam.check_gateway(net("10.0.0.0/24"), bad)


def test_eui64_matches_what_a_guest_configures() -> None:
    assert ipam.eui64(net("2001:db8::/64"), "fa:16:3e:00:00:01") == "2001:db8::f816:3eff:fe00:1"


def test_free_addresses_skip_the_used_and_the_gateway() -> None:
    subnet = m.Subnet(cidr="10.0.0.0/29", gateway_ip="10.0.0.3",
                      allocation_pools=[{"start": "10.0.0.1", "end": "10.0.0.6"}])
    used = {int(ipaddress.ip_address("10.0.0.1"))}
    assert list(ipam.free_addresses(subnet, used)) == ["10.0.0.2", "10.0.0.4", "10.0.0.5",
                                                       "10.0.0.6"]


def test_macs() -> None:
    mac = random_mac()
    assert mac.startswith("fa:16:3e:") and check_mac(mac) == mac
    assert check_mac("FA-16-3E-01-02-03") == "fa:16:3e:01:02:03"
    for bad in ("fa:16:3e:01:02", "01:00:5e:00:00:01", "00:00:00:00:00:00", "gg:16:3e:0:0:0"):
        with pytest.raises(InvalidInput, match="mac_address"):
            check_mac(bad)


def test_mtu_follows_the_network_type() -> None:
    types = ("vxlan", "geneve", "gre", "vlan", "flat", "local")
    assert [networks.max_mtu(t) for t in types] == [1450, 1450, 1458, 1500, 1500, 1500]
    assert networks.max_mtu("vxlan", physnet_mtu=9000) == 8950


def test_path_mtu_bounds_overlays_only() -> None:
    """Neutron's rule: an overlay gets min(physnet_mtu, path_mtu) less its headers."""
    jumbo = networks.Underlay(physnet_mtu=9000, path_mtu=1600)
    types = ("vxlan", "geneve", "gre", "vlan", "flat")
    assert [networks.max_mtu(t, underlay=jumbo) for t in types] == [
        1550, 1550, 1558, 9000, 9000]
    wide_path = networks.Underlay(physnet_mtu=1500, path_mtu=9000)
    assert networks.max_mtu("vxlan", underlay=wide_path) == 1450
    ovn_like = networks.Underlay(geneve_max_header_size=38)
    assert networks.max_mtu("geneve", underlay=ovn_like) == 1442


def test_schema_errors_read_like_neutrons() -> None:
    with pytest.raises(InvalidInput, match=r"^Unrecognized attribute\(s\) 'x'$"):
        schemas.check(schemas.network_create, {"x": 1})
    with pytest.raises(InvalidInput, match=r"^Invalid input for name\. Reason: "):
        schemas.check(schemas.network_create, {"name": 1})
    with pytest.raises(InvalidInput, match="Required attribute 'network_id'"):
        schemas.check(schemas.port_create, {})
    with pytest.raises(InvalidInput, match=r"fixed_ips|ip_address"):
        schemas.check(schemas.port_create, {"network_id": "n", "fixed_ips": [{"ip": 1}]})
    items, bulk = schemas.body_items({"ports": [{"network_id": "a"}, {"network_id": "b"}]},
                                     "port", "ports", schemas.port_create)
    assert bulk and len(items) == 2
    for body in (None, [], {"port": 1}, {"ports": []}, {"port": {}, "ports": []},
                 {"port": {"network_id": "a"}, "x": 1}):
        with pytest.raises(InvalidInput):
            schemas.body_items(body, "port", "ports", schemas.port_create)
    with pytest.raises(InvalidInput, match="read-only attribute network_id"):
        schemas.update_item({"port": {"network_id": "x"}}, "port", schemas.port_update,
                            schemas.PORT_READ_ONLY)
