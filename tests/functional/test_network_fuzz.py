"""Networking-shaped fuzzing: no body, query or path a client sends gets a 500.

The general fuzz test draws from every family with generic bodies; this one
sends bodies shaped like networks, subnets and ports (addresses, CIDRs,
pools, MACs, bindings) to the /network routes, as admin and as a member.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gureum.api.web import Route
from tests.harness import Api, InProcessCloud, make_settings

ATTRS = ["name", "description", "admin_state_up", "shared", "router:external", "mtu",
         "port_security_enabled", "provider:network_type", "provider:physical_network",
         "provider:segmentation_id", "is_default", "tags", "project_id", "tenant_id",
         "network_id", "ip_version", "cidr", "gateway_ip", "allocation_pools",
         "dns_nameservers", "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode",
         "subnetpool_id", "mac_address", "fixed_ips", "device_id", "device_owner",
         "binding:host_id", "binding:profile", "binding:vnic_type", "allowed_address_pairs",
         "security_groups", "dns_name", "qos_policy_id", "availability_zone_hints",
         "check_limit", "force", "network", "subnet", "port", "quota"]
QUERY = ["name", "id", "network_id", "fixed_ips", "mac_address", "device_id", "tags",
         "tags-any", "not-tags", "admin_state_up", "mtu", "ip_version", "router:external",
         "binding:host_id", "limit", "marker", "page_reverse", "sort_key", "sort_dir", "fields",
         "tenant_id", "cidr", "gateway_ip", "security_groups"]

addresses = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["10.0.0.1", "10.0.0.0", "10.0.0.63", "10.0.0.64", "fe80::1", "::",
                     "255.255.255.255", "1.2.3", "10.0.0.1/24"]))
cidrs = st.one_of(
    st.builds(lambda ip, n: f"{ip}/{n}", st.ip_addresses(v=4).map(str), st.integers(-1, 33)),
    st.builds(lambda ip, n: f"{ip}/{n}", st.ip_addresses(v=6).map(str), st.integers(0, 129)),
    st.sampled_from(["10.9.0.0/24", "10.9.0.0/30", "2001:db8::/64", "0.0.0.0/0"]))
macs = st.one_of(st.sampled_from(["fa:16:3e:00:00:01", "01:00:5e:00:00:01", "zz"]),
                 st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}"
                                                                         for x in b)))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=20),
                    addresses, cidrs, macs,
                    st.sampled_from(["vxlan", "vlan", "flat", "gre", "physnet1", "4", "6",
                                     "slaac", "normal", "compute:nova", "network:dhcp", "\x00",
                                     "x" * 300, "1450"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["ip_address", "subnet_id", "start", "end",
                                         "destination", "nexthop", *ATTRS]), inner,
                        max_size=4)),
    max_leaves=12)
bodies = st.one_of(
    st.builds(lambda k, d: {k: d}, st.sampled_from(["network", "subnet", "port", "quota"]),
              st.dictionaries(st.sampled_from(ATTRS), values, max_size=6)),
    st.builds(lambda k, d: {k: d}, st.sampled_from(["networks", "ports", "tags"]),
              st.lists(st.dictionaries(st.sampled_from(ATTRS), values, max_size=4),
                       max_size=3)),
    values)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cloud = InProcessCloud(make_settings(tmp_path_factory.mktemp("netfuzz"))).start()
    api = Api(cloud.url)
    admin = api.token("admin", cloud.admin_password, "admin")
    demo = api.token("demo", cloud.demo_password, "demo")
    nets = api.request("GET", "/network/v2.0/networks?name=private", demo).json()["networks"]
    network_id = nets[0]["id"]
    port = api.request("POST", "/network/v2.0/ports", demo, json={"port": {
        "network_id": network_id}}).json()["port"]
    project = nets[0]["project_id"]
    # The fuzzing makes many networks as admin (beside the first start's `public`):
    # no quota may stop the structured test's own.
    admin_project = api.request("GET", "/identity/v3/projects?name=admin",
                                admin).json()["projects"][0]["id"]
    r = api.request("PUT", f"/network/v2.0/quotas/{admin_project}", admin,
                    json={"quota": {"network": -1, "subnet": -1, "port": -1}})
    assert r.status_code == 200, r.text
    ids = {"network_id": network_id, "subnet_id": nets[0]["subnets"][0],
           "port_id": port["id"], "resource_id": network_id, "project_id": project,
           "alias": "binding"}
    assert cloud.cloud is not None
    routes: list[Route] = [r for r in cloud.cloud.app.families["/network"].router.routes()
                           if r.method != "DELETE"]
    yield {"api": api, "admin": admin, "demo": demo, "ids": ids, "routes": routes}
    api.close()
    cloud.stop()


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_networking_input_causes_a_500(env: dict[str, Any], data: st.DataObject) -> None:
    api: Api = env["api"]
    route: Route = data.draw(st.sampled_from(env["routes"]), label="route")
    token = env["admin"] if data.draw(st.booleans(), label="as_admin") else env["demo"]
    tag = data.draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                                   blacklist_characters="/?#%"),
                            min_size=1, max_size=10), label="tag")
    path = "/network" + re.sub(r"{(\w+)(:[^}]+)?}",
                               lambda m: quote(tag, safe="") if m.group(1) == "tag"
                               else env["ids"].get(m.group(1), "nope"), route.pattern)
    query = data.draw(st.dictionaries(st.sampled_from(QUERY), st.one_of(
        st.text(max_size=12), addresses, st.sampled_from(["ip_address=10.0.0.2", "true", "-1",
                                                          "name", "desc"])), max_size=3),
        label="query")
    body = data.draw(bodies, label="body")
    r = api.request(route.method, path, token, json=body, params=query)
    assert r.status_code < 500, (route.method, path, body, query, r.status_code, r.text)
    if r.status_code >= 400 and route.method != "HEAD":
        assert r.json()["NeutronError"]["message"], r.text


pools = st.lists(st.fixed_dictionaries({"start": addresses, "end": addresses}), max_size=3)
subnet_bodies = st.fixed_dictionaries(
    {"ip_version": st.sampled_from([4, 6, "4"]), "cidr": cidrs},
    optional={"gateway_ip": st.one_of(st.none(), addresses), "allocation_pools": pools,
              "dns_nameservers": st.lists(addresses, max_size=6),
              "host_routes": st.lists(st.fixed_dictionaries(
                  {"destination": cidrs, "nexthop": addresses}), max_size=3),
              "ipv6_ra_mode": st.sampled_from(["slaac", "dhcpv6-stateful", None]),
              "ipv6_address_mode": st.sampled_from(["slaac", "dhcpv6-stateless", None]),
              "enable_dhcp": st.booleans()})
port_bodies = st.fixed_dictionaries({}, optional={
    "fixed_ips": st.lists(st.one_of(st.fixed_dictionaries({"ip_address": addresses}),
                                    st.just({"subnet_id": "SUBNET"})), max_size=3),
    "mac_address": macs, "allowed_address_pairs": st.lists(st.fixed_dictionaries(
        {"ip_address": st.one_of(addresses, cidrs)}), max_size=3),
    "port_security_enabled": st.booleans(), "device_owner": st.sampled_from(
        ["", "compute:nova", "network:dhcp", "network:router_interface"]),
    "binding:host_id": st.sampled_from(["", "c01"])})


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(subnet=subnet_bodies, ports=st.lists(port_bodies, min_size=1, max_size=3),
       update=port_bodies)
def test_structured_subnets_and_ports_never_500(env: dict[str, Any], subnet: dict[str, Any],
                                                ports: list[dict[str, Any]],
                                                update: dict[str, Any]) -> None:
    api: Api = env["api"]
    admin = env["admin"]
    net = api.request("POST", "/network/v2.0/networks", admin,
                      json={"network": {"name": "structured"}}).json()["network"]
    try:
        r = api.request("POST", "/network/v2.0/subnets", admin, json={"subnet": {
            "network_id": net["id"], **subnet}})
        assert r.status_code in (201, 400, 404, 409), r.text
        subnet_id = r.json()["subnet"]["id"] if r.status_code == 201 else "nope"
        made = []
        for body in ports:
            fixed = [{"subnet_id": subnet_id} if "subnet_id" in f else f
                     for f in body.get("fixed_ips", [])]
            payload = {**body, "network_id": net["id"]}
            if "fixed_ips" in body:
                payload["fixed_ips"] = fixed
            r = api.request("POST", "/network/v2.0/ports", admin, json={"port": payload})
            assert r.status_code in (201, 400, 409), r.text
            if r.status_code == 201:
                made.append(r.json()["port"]["id"])
        for port_id in made:
            fixed = [{"subnet_id": subnet_id} if "subnet_id" in f else f
                     for f in update.get("fixed_ips", [])]
            payload = {**update, **({"fixed_ips": fixed} if "fixed_ips" in update else {})}
            r = api.request("PUT", f"/network/v2.0/ports/{port_id}", admin,
                            json={"port": payload})
            assert r.status_code in (200, 400, 409), r.text
            ips = [f["ip_address"] for f in r.json().get("port", {}).get("fixed_ips", [])]
            assert len(ips) == len(set(ips))
            r = api.request("DELETE", f"/network/v2.0/ports/{port_id}", admin)
            if r.status_code == 409:  # a router's port is not deleted directly (Neutron)
                assert "device owner network:router" in r.text, r.text
                api.request("PUT", f"/network/v2.0/ports/{port_id}", admin,
                            json={"port": {"device_owner": "", "device_id": ""}})
                r = api.request("DELETE", f"/network/v2.0/ports/{port_id}", admin)
            assert r.status_code == 204, r.text
    finally:
        r = api.request("DELETE", f"/network/v2.0/networks/{net['id']}", admin)
        assert r.status_code == 204, r.text
