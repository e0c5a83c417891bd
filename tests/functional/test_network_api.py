"""Networking v2.0: networks, subnets and ports over HTTP, IPAM, MACs, Neutron's errors."""

from __future__ import annotations

import re

from tests.functional.network_helpers import (
    N,
    create,
    delete,
    error,
    get,
    listing,
    network_with_subnet,
    update,
)
from tests.harness import Api


def test_version_discovery_needs_no_token(api: Api) -> None:
    r = api.request("GET", "/network/")
    assert r.status_code == 200
    (version,) = r.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"].endswith("/network/v2.0/")


def test_resource_index_and_extensions(api: Api, demo_token: str) -> None:
    r = api.request("GET", f"{N}", demo_token)
    assert {x["collection"] for x in r.json()["resources"]} >= {
        "networks", "subnets", "subnetpools", "ports", "security-groups",
        "security-group-rules", "routers", "floatingips", "agents"}
    aliases = {x["alias"] for x in api.request("GET", f"{N}/extensions",
                                               demo_token).json()["extensions"]}
    assert {"binding", "external-net", "provider", "port-security", "standard-attr-tag",
            "tag-ports-during-bulk-creation", "quotas", "net-mtu", "allowed-address-pairs",
            "pagination", "sorting", "project-id"} <= aliases
    assert {"security-group", "stateful-security-group", "router"} <= aliases
    assert "dvr" not in aliases
    r = api.request("GET", f"{N}/extensions/binding", demo_token)
    assert r.json()["extension"]["name"] == "Port Binding"
    error(api.request("GET", f"{N}/extensions/dvr", demo_token), 404)


def test_first_start_gives_demo_a_private_network(api: Api, demo_token: str) -> None:
    (net,) = [n for n in listing(api, demo_token, "network") if n["name"] == "private"]
    (sn,) = listing(api, demo_token, "subnet", f"network_id={net['id']}")
    assert net["subnets"] == [sn["id"]] and net["status"] == "ACTIVE"
    assert sn["name"] == "private-subnet" and sn["cidr"] == "10.0.0.0/26"
    assert sn["gateway_ip"] == "10.0.0.1" and sn["enable_dhcp"] is True
    assert sn["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.62"}]


def test_network_has_neutrons_fields(api: Api, demo_token: str, admin_token: str) -> None:
    net = create(api, demo_token, "network", name="shape", description="d")
    for key, value in {"admin_state_up": True, "status": "ACTIVE", "shared": False,
                       "router:external": False, "port_security_enabled": True,
                       "subnets": [], "tags": [], "is_default": False, "mtu": 1450,
                       "ipv4_address_scope": None, "ipv6_address_scope": None,
                       "l2_adjacency": True, "availability_zones": ["nova"],
                       "description": "d"}.items():
        assert net[key] == value, key
    assert net["tenant_id"] == net["project_id"] and net["revision_number"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", net["created_at"])
    assert not any(k.startswith("provider:") for k in net)  # admin-only
    seen = get(api, admin_token, "network", net["id"])
    assert seen["provider:network_type"] == "vxlan"
    assert seen["provider:physical_network"] is None
    assert isinstance(seen["provider:segmentation_id"], int)


def test_network_update_and_delete(api: Api, demo_token: str) -> None:
    net = create(api, demo_token, "network", name="before")
    after = update(api, demo_token, "network", net["id"], name="after", mtu=1400,
                   admin_state_up=False)
    assert (after["name"], after["mtu"], after["admin_state_up"]) == ("after", 1400, False)
    assert after["revision_number"] > net["revision_number"]
    body = update(api, demo_token, "network", net["id"], status=400, mtu=9000)
    assert "1450" in body["NeutronError"]["message"]
    update(api, demo_token, "network", net["id"], status=400, project_id="x")
    delete(api, demo_token, "network", net["id"])
    body = get(api, demo_token, "network", net["id"], status=404)
    assert body["NeutronError"]["type"] == "NetworkNotFound"
    assert body["NeutronError"]["message"] == f"Network {net['id']} could not be found."


def test_a_network_in_use_cannot_be_deleted(api: Api, demo_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "busy", "192.168.10.0/24")
    port = create(api, demo_token, "port", network_id=net["id"])
    error(api.request("DELETE", f"{N}/networks/{net['id']}", demo_token), 409, "NetworkInUse")
    error(api.request("DELETE", f"{N}/subnets/{sn['id']}", demo_token), 409, "SubnetInUse")
    delete(api, demo_token, "port", port["id"])
    delete(api, demo_token, "network", net["id"])  # its subnet goes with it
    get(api, demo_token, "subnet", sn["id"], status=404)


def test_subnet_defaults_and_validation(api: Api, demo_token: str) -> None:
    net = create(api, demo_token, "network", name="subnets")
    nid = net["id"]

    def bad(status: int, kind: str | None, **body: object) -> str:
        r = api.request("POST", f"{N}/subnets", demo_token,
                        json={"subnet": {"network_id": nid, "ip_version": 4, **body}})
        return str(error(r, status, kind)["message"])

    assert "cidr" in bad(400, None, cidr="nonsense")
    assert "'10.1.0.0/24' is recommended" in bad(400, None, cidr="10.1.0.0/024")
    assert "cidr" in bad(400, None)
    assert "ip_version" in bad(400, None, cidr="2001:db8::/64")
    bad(400, "OutOfBoundsAllocationPool", cidr="10.1.0.0/24",
        allocation_pools=[{"start": "10.1.0.0", "end": "10.1.0.10"}])
    bad(400, "InvalidAllocationPool", cidr="10.1.0.0/24",
        allocation_pools=[{"start": "10.1.0.20", "end": "10.1.0.10"}])
    bad(409, "OverlappingAllocationPools", cidr="10.1.0.0/24",
        allocation_pools=[{"start": "10.1.0.2", "end": "10.1.0.20"},
                          {"start": "10.1.0.10", "end": "10.1.0.30"}])
    bad(409, "GatewayConflictWithAllocationPools", cidr="10.1.0.0/24",
        gateway_ip="10.1.0.5", allocation_pools=[{"start": "10.1.0.2", "end": "10.1.0.20"}])
    assert "Unrecognized attribute(s) 'colour'" in bad(400, None, cidr="10.1.0.0/24",
                                                        colour="red")
    # Neutron's convert_to_boolean takes oslo's words ("yes", "t", "0"…), nothing else.
    assert "enable_dhcp" in bad(400, None, cidr="10.1.0.0/24", enable_dhcp="maybe")
    assert "ipv6_ra_mode" in bad(400, None, cidr="10.1.0.0/24", ipv6_ra_mode="slaac")
    bad(400, "DNSNameServersExhausted", cidr="10.1.0.0/24",
        dns_nameservers=[f"10.9.9.{i}" for i in range(6)])

    sn = create(api, demo_token, "subnet", network_id=nid, ip_version=4,
                cidr="10.1.0.0/24", gateway_ip=None, dns_nameservers=["8.8.8.8"],
                host_routes=[{"destination": "10.2.0.0/16", "nexthop": "10.1.0.254"}])
    assert sn["gateway_ip"] is None
    assert sn["allocation_pools"] == [{"start": "10.1.0.1", "end": "10.1.0.254"}]
    assert sn["dns_nameservers"] == ["8.8.8.8"] and sn["subnetpool_id"] is None
    assert "overlaps" in bad(400, "InvalidInput", cidr="10.1.0.128/25")
    v6 = create(api, demo_token, "subnet", network_id=nid, ip_version=6,
                cidr="2001:db8:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert v6["gateway_ip"] == "2001:db8:1::1"
    assert v6["allocation_pools"] == [{"start": "2001:db8:1::2",
                                       "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}]
    upd = update(api, demo_token, "subnet", sn["id"], gateway_ip="10.1.0.1",
                 allocation_pools=[{"start": "10.1.0.10", "end": "10.1.0.20"}], name="s2")
    assert upd["gateway_ip"] == "10.1.0.1" and upd["name"] == "s2"
    body = update(api, demo_token, "subnet", sn["id"], status=400, cidr="10.3.0.0/24")
    assert "read-only attribute cidr" in body["NeutronError"]["message"]


def test_exact_address_requests(api: Api, demo_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "exact", "192.168.20.0/24")
    port = create(api, demo_token, "port", network_id=net["id"],
                  fixed_ips=[{"ip_address": "192.168.20.50"}])
    assert port["fixed_ips"] == [{"subnet_id": sn["id"], "ip_address": "192.168.20.50"}]

    def post(fixed_ips: list[dict[str, str]]) -> object:
        return api.request("POST", f"{N}/ports", demo_token, json={"port": {
            "network_id": net["id"], "fixed_ips": fixed_ips}})

    body = error(post([{"ip_address": "192.168.20.50"}]), 409, "IpAddressAlreadyAllocated")
    assert body["message"] == f"IP address 192.168.20.50 already allocated in subnet {sn['id']}"
    error(post([{"ip_address": "10.99.0.1"}]), 400, "InvalidIpForNetwork")
    error(post([{"subnet_id": sn["id"], "ip_address": "10.99.0.1"}]), 400, "InvalidIpForSubnet")
    error(post([{"ip_address": "192.168.20.255"}]), 400, "InvalidIpForSubnet")
    error(post([{"ip_address": "192.168.20.1"}]), 409, "IpAddressAlreadyAllocated")  # gateway
    assert "fixed_ips" in error(post([{"ip_address": "not-an-ip"}]), 400)["message"]
    error(post([{"subnet_id": "no-such-subnet"}]), 400, "InvalidInput")
    # An address outside the pools but inside the CIDR may be asked for by name.
    update(api, demo_token, "subnet", sn["id"],
           allocation_pools=[{"start": "192.168.20.100", "end": "192.168.20.110"}])
    outside = create(api, demo_token, "port", network_id=net["id"],
                     fixed_ips=[{"ip_address": "192.168.20.7"}])
    assert outside["fixed_ips"][0]["ip_address"] == "192.168.20.7"
    auto = create(api, demo_token, "port", network_id=net["id"])
    assert auto["fixed_ips"][0]["ip_address"] == "192.168.20.100"


def test_address_exhaustion_is_a_409(api: Api, demo_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "tiny", "192.168.30.0/29")
    assert sn["allocation_pools"] == [{"start": "192.168.30.2", "end": "192.168.30.6"}]
    ports = [create(api, demo_token, "port", network_id=net["id"]) for _ in range(5)]
    assert [p["fixed_ips"][0]["ip_address"] for p in ports] == [
        f"192.168.30.{i}" for i in range(2, 7)]
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {"network_id": net["id"]}})
    body = error(r, 409, "IpAddressGenerationFailure")
    assert body["message"] == f"No more IP addresses available on network {net['id']}."
    delete(api, demo_token, "port", ports[2]["id"])
    again = create(api, demo_token, "port", network_id=net["id"])
    assert again["fixed_ips"][0]["ip_address"] == "192.168.30.4"


def test_a_full_subnet_spills_to_the_next_one(api: Api, demo_token: str) -> None:
    net, _ = network_with_subnet(api, demo_token, "spill", "192.168.31.0/30")
    second = create(api, demo_token, "subnet", network_id=net["id"], ip_version=4,
                    cidr="192.168.32.0/29")
    create(api, demo_token, "port", network_id=net["id"])  # the /30's only address
    port = create(api, demo_token, "port", network_id=net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == second["id"]


def test_macs_are_unique_per_network(api: Api, demo_token: str) -> None:
    net, _ = network_with_subnet(api, demo_token, "macs", "192.168.40.0/24")
    other, _ = network_with_subnet(api, demo_token, "macs2", "192.168.41.0/24")
    generated = create(api, demo_token, "port", network_id=net["id"])
    assert re.fullmatch(r"fa:16:3e(:[0-9a-f]{2}){3}", generated["mac_address"])
    mine = create(api, demo_token, "port", network_id=net["id"],
                  mac_address="FA:16:3E:AA:BB:CC")
    assert mine["mac_address"] == "fa:16:3e:aa:bb:cc"
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "mac_address": "fa:16:3e:aa:bb:cc"}})
    body = error(r, 409, "MacAddressInUse")
    assert "fa:16:3e:aa:bb:cc is in use" in body["message"]
    create(api, demo_token, "port", network_id=other["id"], mac_address="fa:16:3e:aa:bb:cc")
    for bad_mac in ("zz:16:3e:aa:bb:cc", "01:00:5e:00:00:01", "00:00:00:00:00:00"):
        r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
            "network_id": net["id"], "mac_address": bad_mac}})
        assert "mac_address" in error(r, 400)["message"]


def test_port_has_neutrons_fields(api: Api, demo_token: str, admin_token: str) -> None:
    net, _sn = network_with_subnet(api, demo_token, "portshape", "192.168.50.0/24")
    port = create(api, demo_token, "port", network_id=net["id"], name="p",
                  dns_name="web", allowed_address_pairs=[{"ip_address": "192.168.50.0/28"}])
    for key, value in {"status": "DOWN", "admin_state_up": True, "device_id": "",
                       "device_owner": "", "port_security_enabled": True,
                       "binding:vnic_type": "normal",
                       "tags": [], "name": "p", "dns_name": "web"}.items():
        assert port[key] == value, key
    (default,) = api.request("GET", f"{N}/security-groups?name=default",
                             demo_token).json()["security_groups"]
    assert port["security_groups"] == [default["id"]]
    assert port["allowed_address_pairs"] == [{"ip_address": "192.168.50.0/28",
                                              "mac_address": port["mac_address"]}]
    assert port["dns_assignment"][0]["hostname"] == "web"
    assert not any(k in port for k in ("binding:host_id", "binding:vif_type",
                                       "binding:profile", "binding:vif_details"))
    seen = get(api, admin_token, "port", port["id"])
    assert (seen["binding:host_id"], seen["binding:vif_type"]) == ("", "unbound")
    assert seen["binding:profile"] == {} and seen["binding:vif_details"] == {}


def test_port_fixed_ips_update(api: Api, demo_token: str) -> None:
    net, _sn = network_with_subnet(api, demo_token, "renumber", "192.168.60.0/24")
    sn2 = create(api, demo_token, "subnet", network_id=net["id"], ip_version=4,
                 cidr="192.168.61.0/24")
    port = create(api, demo_token, "port", network_id=net["id"],
                  fixed_ips=[{"ip_address": "192.168.60.10"}])
    port = update(api, demo_token, "port", port["id"], fixed_ips=[
        {"ip_address": "192.168.60.10"}, {"subnet_id": sn2["id"]}])
    assert [f["ip_address"] for f in port["fixed_ips"]] == ["192.168.60.10", "192.168.61.2"]
    port = update(api, demo_token, "port", port["id"], fixed_ips=[
        {"subnet_id": sn2["id"]}, {"ip_address": "192.168.60.11"}])
    assert [f["ip_address"] for f in port["fixed_ips"]] == ["192.168.61.2", "192.168.60.11"]
    # The released address is free again.
    create(api, demo_token, "port", network_id=net["id"],
           fixed_ips=[{"ip_address": "192.168.60.10"}])
    update(api, demo_token, "port", port["id"], status=400, network_id=net["id"])


def test_detach_the_s11_way(api: Api, demo_token: str, admin_token: str) -> None:
    """`openstack port set --device "" --device-owner "" --no-binding-profile` detaches."""
    net, _ = network_with_subnet(api, demo_token, "keepip", "192.168.70.0/24")
    port = create(api, demo_token, "port", network_id=net["id"], device_id="vm-1",
                  device_owner="compute:nova", fixed_ips=[{"ip_address": "192.168.70.9"}])
    update(api, admin_token, "port", port["id"], **{"binding:host_id": "c01"})
    assert get(api, admin_token, "port", port["id"])["status"] == "ACTIVE"
    # The CLI drops the empty --device; what arrives is this.
    port = update(api, demo_token, "port", port["id"],
                  **{"device_owner": "", "binding:profile": {}})
    assert (port["device_id"], port["device_owner"], port["status"]) == ("", "", "DOWN")
    seen = get(api, admin_token, "port", port["id"])
    assert seen["binding:host_id"] == "" and seen["binding:vif_type"] == "unbound"
    assert seen["fixed_ips"][0]["ip_address"] == "192.168.70.9"
    # A member may clear the profile, never set it.
    r = api.request("PUT", f"{N}/ports/{port['id']}", demo_token,
                    json={"port": {"binding:profile": {"a": "b"}}})
    error(r, 403, "PolicyNotAuthorized")


def test_bulk_create_is_one_transaction(api: Api, demo_token: str) -> None:
    net, _ = network_with_subnet(api, demo_token, "bulk", "192.168.80.0/24")
    r = api.request("POST", f"{N}/ports", demo_token, json={"ports": [
        {"network_id": net["id"], "name": "b1", "tags": ["x"]},
        {"network_id": net["id"], "name": "b2"}]})
    assert r.status_code == 201, r.text
    assert [p["name"] for p in r.json()["ports"]] == ["b1", "b2"]
    assert r.json()["ports"][0]["tags"] == ["x"]
    r = api.request("POST", f"{N}/ports", demo_token, json={"ports": [
        {"network_id": net["id"], "name": "b3"},
        {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.1"}]}]})
    error(r, 400, "InvalidIpForNetwork")
    assert not listing(api, demo_token, "port", "name=b3")


def test_bodies_are_validated_naming_the_field(api: Api, demo_token: str) -> None:
    cases = [
        ({"network": {"name": 5}}, "name"),
        ({"network": {"admin_state_up": "maybe"}}, "admin_state_up"),
        ({"network": {"mtu": 10}}, "mtu"),
        ({"network": {"bogus": 1}}, "bogus"),
        ({"net": {}}, "network"),
        ({"network": {"name": "a\x00b"}}, "name"),
    ]
    for body, field in cases:
        r = api.request("POST", f"{N}/networks", demo_token, json=body)
        assert field in error(r, 400)["message"], (body, r.text)
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {}})
    assert "network_id" in error(r, 400)["message"]
    r = api.request("POST", f"{N}/networks", demo_token, content=b"{nope",
                    headers={"content-type": "application/json"})
    error(r, 400)
    r = api.request("GET", f"{N}/networks?admin_state_up=perhaps", demo_token)
    assert "admin_state_up" in error(r, 400)["message"] or "perhaps" in r.text
