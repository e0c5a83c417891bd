"""Who sees and changes what: projects, shared and external networks, admin-only attributes."""

from __future__ import annotations

import pytest

from tests.functional.network_helpers import (
    N,
    create,
    error,
    get,
    listing,
    network_with_subnet,
    project_id,
    update,
    user_in_project,
)
from tests.harness import Api


@pytest.fixture(scope="module")
def other_token(api: Api, admin_token: str) -> str:
    return user_in_project(api, admin_token, "net-other", "net-other-project")


@pytest.fixture(scope="module")
def reader_token(api: Api, admin_token: str) -> str:
    return user_in_project(api, admin_token, "net-reader", "demo", role="reader")


def test_another_project_sees_404_never_403(api: Api, demo_token: str, other_token: str
                                           ) -> None:
    net, sn = network_with_subnet(api, demo_token, "secret", "172.16.1.0/24")
    port = create(api, demo_token, "port", network_id=net["id"])
    for kind, ident, neutron_type in (("network", net["id"], "NetworkNotFound"),
                                      ("subnet", sn["id"], "SubnetNotFound"),
                                      ("port", port["id"], "PortNotFound")):
        for method, body in (("GET", None), ("PUT", {kind: {"name": "mine"}}),
                             ("DELETE", None)):
            r = api.request(method, f"{N}/{kind}s/{ident}", other_token, json=body)
            error(r, 404, neutron_type)
        assert ident not in {x["id"] for x in listing(api, other_token, kind)}
    r = api.request("GET", f"{N}/networks/{net['id']}/tags", other_token)
    error(r, 404, "NetworkNotFound")
    r = api.request("POST", f"{N}/ports", other_token, json={"port": {
        "network_id": net["id"]}})
    error(r, 404, "NetworkNotFound")
    r = api.request("POST", f"{N}/subnets", other_token, json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "172.16.9.0/24"}})
    error(r, 404, "NetworkNotFound")
    # ...and filtering by the other project's id finds nothing either.
    assert listing(api, other_token, "network", f"project_id={net['project_id']}") == []


def test_shared_network_is_usable_by_everyone(api: Api, admin_token: str, demo_token: str,
                                              other_token: str) -> None:
    net = create(api, admin_token, "network", name="public-lan", shared=True)
    sn = create(api, admin_token, "subnet", network_id=net["id"], ip_version=4,
                cidr="172.16.2.0/24")
    assert net["id"] in {n["id"] for n in listing(api, other_token, "network")}
    assert get(api, other_token, "subnet", sn["id"])["cidr"] == "172.16.2.0/24"
    port = create(api, other_token, "port", network_id=net["id"],
                  fixed_ips=[{"subnet_id": sn["id"]}])
    assert port["project_id"] != net["project_id"]
    # Not the owner: no exact address, no changes to the network, no subnets on it.
    r = api.request("POST", f"{N}/ports", other_token, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "172.16.2.99"}]}})
    error(r, 403, "PolicyNotAuthorized")
    error(api.request("PUT", f"{N}/networks/{net['id']}", other_token,
                      json={"network": {"name": "x"}}), 403)
    error(api.request("DELETE", f"{N}/networks/{net['id']}", other_token), 403)
    error(api.request("POST", f"{N}/subnets", other_token, json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "172.16.3.0/24"}}), 403)
    # The network's owner sees the ports on it; other members do not see each other's.
    assert port["id"] in {p["id"] for p in listing(api, admin_token, "port",
                                                  f"network_id={net['id']}")}
    assert port["id"] not in {p["id"] for p in listing(api, demo_token, "port")}
    r = api.request("PUT", f"{N}/networks/{net['id']}", admin_token,
                    json={"network": {"shared": False}})
    error(r, 409, "InvalidSharedSetting")


def test_external_network_is_visible_but_not_attachable(api: Api, admin_token: str,
                                                        demo_token: str) -> None:
    net = create(api, admin_token, "network", name="ext2", **{"router:external": True})
    create(api, admin_token, "subnet", network_id=net["id"], ip_version=4,
           cidr="203.0.113.0/24")
    assert get(api, demo_token, "network", net["id"])["router:external"] is True
    # The first start's `public` and this one.
    external = listing(api, demo_token, "network", "router:external=true")
    assert sorted(n["name"] for n in external) == ["ext2", "public"]
    subnets = listing(api, demo_token, "subnet", "router:external=True")
    assert {s["network_id"] for s in subnets} == {n["id"] for n in external}
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {"network_id": net["id"]}})
    error(r, 403, "PolicyNotAuthorized")


@pytest.mark.parametrize("attr,value", [
    ("shared", True), ("router:external", True), ("provider:network_type", "vlan"),
    ("provider:physical_network", "physnet1"), ("provider:segmentation_id", 100),
    ("is_default", True),
])
def test_network_admin_only_attributes(api: Api, demo_token: str, attr: str, value: object
                                       ) -> None:
    r = api.request("POST", f"{N}/networks", demo_token, json={"network": {attr: value}})
    body = error(r, 403, "PolicyNotAuthorized")
    assert attr in body["message"]
    mine = create(api, demo_token, "network", name=f"admin-only-{attr}")
    r = api.request("PUT", f"{N}/networks/{mine['id']}", demo_token,
                    json={"network": {attr: value}})
    error(r, 403, "PolicyNotAuthorized")


def test_port_binding_attributes_are_admin_only(api: Api, demo_token: str, admin_token: str
                                               ) -> None:
    net, _ = network_with_subnet(api, demo_token, "bind", "172.16.4.0/24")
    for attr, value in (("binding:host_id", "c01"), ("binding:profile", {"x": 1})):
        r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
            "network_id": net["id"], attr: value}})
        error(r, 403, "PolicyNotAuthorized")
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "binding:vif_type": "ovs"}})
    error(r, 400)  # never writable
    port = create(api, demo_token, "port", network_id=net["id"],
                  **{"binding:vnic_type": "direct"})
    assert port["binding:vnic_type"] == "direct"
    bound = update(api, admin_token, "port", port["id"],
                   **{"binding:host_id": "c02", "binding:profile": {"k": "v"}})
    assert bound["binding:host_id"] == "c02" and bound["status"] == "ACTIVE"
    assert bound["binding:vif_type"] == "ovs"
    assert bound["binding:vif_details"]["port_filter"] is True
    assert bound["binding:profile"] == {"k": "v"}
    seen = get(api, demo_token, "port", port["id"])
    assert "binding:host_id" not in seen and seen["binding:vnic_type"] == "direct"
    assert listing(api, admin_token, "port", "binding:host_id=c02")[0]["id"] == port["id"]
    r = api.request("GET", f"{N}/ports?binding:host_id=c02", demo_token)
    error(r, 400)


def test_reader_only_reads(api: Api, reader_token: str, demo_token: str) -> None:
    assert any(n["name"] == "private" for n in listing(api, reader_token, "network"))
    net = create(api, demo_token, "network", name="readers-view")
    for method, path, body in (
            ("POST", f"{N}/networks", {"network": {"name": "nope"}}),
            ("PUT", f"{N}/networks/{net['id']}", {"network": {"name": "nope"}}),
            ("DELETE", f"{N}/networks/{net['id']}", None),
            ("PUT", f"{N}/networks/{net['id']}/tags/t", None)):
        error(api.request(method, path, reader_token, json=body), 403, "PolicyNotAuthorized")


def test_only_admin_creates_for_another_project(api: Api, admin_token: str, demo_token: str
                                                ) -> None:
    other = project_id(api, admin_token, "admin")
    r = api.request("POST", f"{N}/networks", demo_token, json={"network": {
        "name": "theirs", "project_id": other}})
    assert "requires admin privileges" in error(r, 400)["message"]
    demo = project_id(api, admin_token, "demo")
    net = create(api, admin_token, "network", name="for-demo", tenant_id=demo)
    assert net["project_id"] == demo
    assert net["id"] in {n["id"] for n in listing(api, demo_token, "network")}


def test_provider_segments_and_mtu(api: Api, admin_token: str) -> None:
    def post(**body: object) -> object:
        return api.request("POST", f"{N}/networks", admin_token, json={"network": body})

    vlan = create(api, admin_token, "network", **{
        "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": 101})
    assert vlan["mtu"] == 1500 and vlan["provider:segmentation_id"] == 101
    error(post(**{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                  "provider:segmentation_id": 101}), 409, "VlanIdInUse")
    auto = create(api, admin_token, "network", **{
        "provider:network_type": "vlan", "provider:physical_network": "physnet1"})
    assert auto["provider:segmentation_id"] == 1
    error(post(**{"provider:network_type": "vlan"}), 400, "InvalidInput")
    error(post(**{"provider:network_type": "vlan", "provider:physical_network": "p",
                  "provider:segmentation_id": 4095}), 400, "InvalidInput")
    error(post(**{"provider:network_type": "vxlan",
                  "provider:physical_network": "physnet1"}), 400, "InvalidInput")
    flat = create(api, admin_token, "network", **{
        "provider:network_type": "flat", "provider:physical_network": "physnet2"})
    assert flat["provider:segmentation_id"] is None
    error(post(**{"provider:network_type": "flat", "provider:physical_network": "physnet2"}),
          409, "FlatNetworkInUse")
    gre = create(api, admin_token, "network", **{"provider:network_type": "gre"})
    assert gre["mtu"] == 1458
    geneve = create(api, admin_token, "network", **{"provider:network_type": "geneve"})
    assert geneve["mtu"] == 1450  # Neutron's default max_header_size (30)
