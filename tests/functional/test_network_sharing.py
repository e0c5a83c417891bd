"""RBAC policies (sharing a network with chosen projects) and subnet pools, over the API."""

from __future__ import annotations

import pytest

from tests.functional.network_helpers import (
    N,
    create,
    delete,
    error,
    get,
    listing,
    network_with_subnet,
    project_id,
    update,
    user_in_project,
)
from tests.harness import Api

R = f"{N}/rbac-policies"


@pytest.fixture(scope="module")
def other_token(api: Api, admin_token: str) -> str:
    return user_in_project(api, admin_token, "rbac-other", "rbac-other-project")


@pytest.fixture(scope="module")
def third_token(api: Api, admin_token: str) -> str:
    return user_in_project(api, admin_token, "rbac-third", "rbac-third-project")


def rbac(api: Api, token: str, status: int = 201, **body: object) -> dict[str, object]:
    r = api.request("POST", R, token, json={"rbac_policy": body})
    assert r.status_code == status, r.text
    return dict(r.json()["rbac_policy"] if status == 201 else r.json())


def test_share_a_network_with_one_project(api: Api, admin_token: str, demo_token: str,
                                          other_token: str, third_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "to-share", "10.60.0.0/24")
    other = project_id(api, admin_token, "rbac-other-project")
    # Before: invisible to the other project.
    get(api, other_token, "network", net["id"], status=404)
    policy = rbac(api, demo_token, object_type="network", object_id=net["id"],
                  action="access_as_shared", target_tenant=other)
    assert policy["target_tenant"] == other and policy["object_id"] == net["id"]
    assert policy["project_id"] == net["project_id"]
    # The target sees it as shared, with its subnet, and can put a port on it.
    seen = get(api, other_token, "network", net["id"])
    assert seen["shared"] is True and seen["subnets"] == [sn["id"]]
    assert net["id"] in {n["id"] for n in listing(api, other_token, "network")}
    assert get(api, other_token, "subnet", sn["id"])["cidr"] == "10.60.0.0/24"
    port = create(api, other_token, "port", network_id=net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == sn["id"]
    # The owner still sees it unshared; a third project still sees nothing.
    assert get(api, demo_token, "network", net["id"])["shared"] is False
    get(api, third_token, "network", net["id"], status=404)
    # `network list --share` as the target finds it; as the owner, not.
    assert net["id"] in {n["id"] for n in listing(api, other_token, "network", "shared=true")}
    assert net["id"] not in {n["id"] for n in listing(api, other_token, "network",
                                                      "shared=false")}
    assert net["id"] not in {n["id"] for n in listing(api, demo_token, "network",
                                                      "shared=true")}
    listed = api.request("GET", f"{R}?object_id={net['id']}", demo_token).json()
    assert [p["id"] for p in listed["rbac_policies"]] == [policy["id"]]
    # The same policy twice is a 409; deleting it while the port uses it is a 409.
    error(api.request("POST", R, demo_token, json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": other}}), 409, "DuplicateRbacPolicy")
    body = error(api.request("DELETE", f"{R}/{policy['id']}", demo_token), 409,
                 "RbacPolicyInUse")
    assert net["id"] in body["message"]
    # Without the port, it goes, and the network is gone from the other's view.
    delete(api, other_token, "port", port["id"])
    assert api.request("DELETE", f"{R}/{policy['id']}", demo_token).status_code == 204
    get(api, other_token, "network", net["id"], status=404)


def test_rbac_rules(api: Api, admin_token: str, demo_token: str, other_token: str,
                    third_token: str) -> None:
    net = create(api, demo_token, "network", name="rbac-rules")
    mine = create(api, other_token, "network", name="not-demos")
    other = project_id(api, admin_token, "rbac-other-project")
    # Only admin shares with everyone.
    r = api.request("POST", R, demo_token, json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": "*"}})
    error(r, 403, "PolicyNotAuthorized")
    # Someone else's network is not found; an unknown object_type is a 400.
    r = api.request("POST", R, demo_token, json={"rbac_policy": {
        "object_type": "network", "object_id": mine["id"], "action": "access_as_shared",
        "target_tenant": other}})
    error(r, 404, "NetworkNotFound")
    r = api.request("POST", R, demo_token, json={"rbac_policy": {
        "object_type": "qos_policy", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": other}})
    assert "object_type" in error(r, 400)["message"]
    # The other project does not see demo's policies.
    policy = rbac(api, demo_token, object_type="network", object_id=net["id"],
                  action="access_as_shared", target_tenant=other)
    assert api.request("GET", f"{R}/{policy['id']}", other_token).status_code == 404
    # Retarget it (update): only target_tenant changes.
    third = project_id(api, admin_token, "rbac-third-project")
    r = api.request("PUT", f"{R}/{policy['id']}", demo_token,
                    json={"rbac_policy": {"target_tenant": third}})
    assert r.status_code == 200 and r.json()["rbac_policy"]["target_tenant"] == third
    get(api, other_token, "network", net["id"], status=404)
    # Deleting the network takes its policies with it.
    delete(api, demo_token, "network", net["id"])
    assert api.request("GET", f"{R}/{policy['id']}", demo_token).status_code == 404


def test_shared_and_external_are_wildcard_policies(api: Api, admin_token: str,
                                                   demo_token: str, other_token: str
                                                   ) -> None:
    net = create(api, admin_token, "network", name="wild", shared=True)
    entries = api.request("GET", f"{R}?object_id={net['id']}", admin_token).json()
    assert [(p["action"], p["target_tenant"]) for p in entries["rbac_policies"]] == [
        ("access_as_shared", "*")]
    assert get(api, other_token, "network", net["id"])["shared"] is True
    # Deleting the wildcard unshares the network.
    api.request("DELETE", f"{R}/{entries['rbac_policies'][0]['id']}", admin_token)
    assert get(api, admin_token, "network", net["id"])["shared"] is False
    get(api, other_token, "network", net["id"], status=404)
    # An external network for one project only.
    ext = create(api, admin_token, "network", name="ext-for-other")
    other = project_id(api, admin_token, "rbac-other-project")
    rbac(api, admin_token, object_type="network", object_id=ext["id"],
         action="access_as_external", target_tenant=other)
    assert get(api, admin_token, "network", ext["id"])["router:external"] is True
    assert get(api, other_token, "network", ext["id"])["router:external"] is True
    get(api, demo_token, "network", ext["id"], status=404)
    update(api, admin_token, "network", net["id"], shared=True)
    assert get(api, demo_token, "network", net["id"])["shared"] is True


def test_rbac_policy_quota(api: Api, admin_token: str, demo_token: str) -> None:
    demo = project_id(api, admin_token, "demo")
    r = api.request("GET", f"{N}/quotas/{demo}/details", admin_token).json()["quota"]
    assert r["rbac_policy"]["limit"] == 10 and r["subnetpool"]["limit"] == -1


# -- subnet pools --------------------------------------------------------------------------

def pool(api: Api, token: str, status: int = 201, **body: object) -> dict[str, object]:
    r = api.request("POST", f"{N}/subnetpools", token, json={"subnetpool": body})
    assert r.status_code == status, r.text
    return dict(r.json()["subnetpool"] if status == 201 else r.json())


def test_subnets_from_a_pool(api: Api, demo_token: str) -> None:
    p = pool(api, demo_token, name="p1", prefixes=["10.90.0.0/24", "10.90.1.0/24"],
             default_prefixlen=26, min_prefixlen=24, max_prefixlen=28)
    assert p["prefixes"] == ["10.90.0.0/23"] and p["ip_version"] == 4
    assert (p["default_prefixlen"], p["min_prefixlen"], p["max_prefixlen"]) == (26, 24, 28)
    assert p["shared"] is False and p["is_default"] is False
    net = create(api, demo_token, "network", name="pooled")

    def sub(status: int = 201, **body: object) -> dict[str, object]:
        return create(api, demo_token, "subnet", status, network_id=net["id"],
                      ip_version=4, subnetpool_id=p["id"], **body)

    first = sub()
    assert first["cidr"] == "10.90.0.0/26" and first["subnetpool_id"] == p["id"]
    assert sub(prefixlen=28)["cidr"] == "10.90.0.64/28"
    assert sub(cidr="10.90.1.0/24")["cidr"] == "10.90.1.0/24"
    assert sub()["cidr"] == "10.90.0.128/26"
    # Bad: overlapping what the pool gave, outside the pool, out of bounds, no room.
    assert "overlaps" in sub(400, cidr="10.90.0.0/27")["NeutronError"]["message"]
    assert "not within" in sub(400, cidr="10.91.0.0/24")["NeutronError"]["message"]
    assert "prefix bounds" in sub(400, prefixlen=30)["NeutronError"]["message"]
    assert [sub(prefixlen=n)["cidr"] for n in (27, 28, 26)] == [
        "10.90.0.96/27", "10.90.0.80/28", "10.90.0.192/26"]
    full = sub(409, prefixlen=28)
    assert full["NeutronError"]["type"] == "SubnetAllocationError"
    assert "Insufficient prefix space to allocate subnet size /28" in \
        full["NeutronError"]["message"]
    # In use: no delete; prefixes can grow but not shrink.
    error(api.request("DELETE", f"{N}/subnetpools/{p['id']}", demo_token), 409,
          "SubnetPoolInUse")
    grown = update(api, demo_token, "subnetpool", p["id"],
                   prefixes=["10.90.0.0/23", "10.92.0.0/24"])
    assert grown["prefixes"] == ["10.90.0.0/23", "10.92.0.0/24"]
    body = update(api, demo_token, "subnetpool", p["id"], 400, prefixes=["10.92.0.0/24"])
    assert "10.90.0.0/23" in body["NeutronError"]["message"]
    assert sub()["cidr"] == "10.92.0.0/26"


def test_default_and_shared_pools(api: Api, admin_token: str, demo_token: str,
                                  other_token: str) -> None:
    r = api.request("POST", f"{N}/subnetpools", demo_token, json={"subnetpool": {
        "name": "x", "prefixes": ["10.93.0.0/16"], "shared": True}})
    error(r, 403, "PolicyNotAuthorized")
    # The default value of an admin-only attribute is no privilege (as Neutron checks).
    unshared = pool(api, demo_token, name="x", prefixes=["10.93.0.0/16"], shared=False,
                    is_default=False)
    assert unshared["shared"] is False
    delete(api, demo_token, "subnetpool", unshared["id"])
    shared = pool(api, admin_token, name="shared-v6", prefixes=["2001:db8:100::/48"],
                  shared=True, is_default=True, default_prefixlen=64)
    assert shared["ip_version"] == 6 and shared["min_prefixlen"] == 64
    assert shared["id"] in {x["id"] for x in listing(api, other_token, "subnetpool")}
    again = api.request("POST", f"{N}/subnetpools", admin_token, json={"subnetpool": {
        "name": "second-default", "prefixes": ["2001:db8:200::/48"], "is_default": True}})
    assert "default" in error(again, 400, "InvalidInput")["message"]
    net = create(api, other_token, "network", name="v6-from-default")
    v6 = create(api, other_token, "subnet", network_id=net["id"], ip_version=6,
                use_default_subnetpool=True, ipv6_address_mode="slaac",
                ipv6_ra_mode="slaac")
    assert v6["cidr"] == "2001:db8:100::/64" and v6["subnetpool_id"] == shared["id"]
    r = api.request("POST", f"{N}/subnets", other_token, json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "use_default_subnetpool": True}})
    assert "No default subnetpool found for IPv4" in error(r, 400)["message"]
    # Bad pools: mixed versions, bounds out of order.
    r = api.request("POST", f"{N}/subnetpools", demo_token, json={"subnetpool": {
        "name": "mixed", "prefixes": ["10.94.0.0/16", "2001:db8:300::/48"]}})
    assert "Cannot mix" in error(r, 400)["message"]
    r = api.request("POST", f"{N}/subnetpools", demo_token, json={"subnetpool": {
        "name": "bounds", "prefixes": ["10.94.0.0/16"], "min_prefixlen": 24,
        "default_prefixlen": 20}})
    assert "prefix bounds" in error(r, 400)["message"]


# -- address scopes ------------------------------------------------------------------------

def test_address_scopes_hold_pools_without_overlaps(api: Api, admin_token: str,
                                                   demo_token: str, other_token: str) -> None:
    r = api.request("POST", f"{N}/address-scopes", demo_token, json={"address_scope": {
        "name": "scope1", "ip_version": 4, "shared": False}})
    assert r.status_code == 201, r.text
    scope = r.json()["address_scope"]
    assert (scope["name"], scope["ip_version"], scope["shared"]) == ("scope1", 4, False)
    assert api.request("GET", f"{N}/address-scopes/{scope['id']}",
                       other_token).status_code == 404
    a = pool(api, demo_token, name="scoped-a", prefixes=["10.110.0.0/16"],
             address_scope_id=scope["id"])
    assert a["address_scope_id"] == scope["id"]
    r = api.request("POST", f"{N}/subnetpools", demo_token, json={"subnetpool": {
        "name": "scoped-b", "prefixes": ["10.110.128.0/17"], "address_scope_id": scope["id"]}})
    error(r, 409, "AddressScopePrefixConflict")
    r = api.request("POST", f"{N}/subnetpools", demo_token, json={"subnetpool": {
        "name": "scoped-v6", "prefixes": ["2001:db8:110::/48"],
        "address_scope_id": scope["id"]}})
    assert "ip_version" in error(r, 400)["message"]
    net = create(api, demo_token, "network", name="scoped-net")
    create(api, demo_token, "subnet", network_id=net["id"], ip_version=4,
           subnetpool_id=a["id"], prefixlen=24)
    shown = get(api, demo_token, "network", net["id"])
    assert shown["ipv4_address_scope"] == scope["id"] and shown["ipv6_address_scope"] is None
    error(api.request("DELETE", f"{N}/address-scopes/{scope['id']}", demo_token), 409,
          "AddressScopeInUse")
    r = api.request("PUT", f"{N}/address-scopes/{scope['id']}", demo_token,
                    json={"address_scope": {"name": "scope1b"}})
    assert r.json()["address_scope"]["name"] == "scope1b"
    names = [x["name"] for x in api.request("GET", f"{N}/address-scopes",
                                            demo_token).json()["address_scopes"]]
    assert "scope1b" in names


def test_service_providers_name_the_router_flavours(api: Api, demo_token: str) -> None:
    r = api.request("GET", f"{N}/service-providers", demo_token)
    assert {(p["service_type"], p["name"]) for p in r.json()["service_providers"]} == {
        ("L3_ROUTER_NAT", "single_node"), ("L3_ROUTER_NAT", "ha")}


def test_a_pools_default_quota_bounds_each_projects_prefixes(api: Api,
                                                             demo_token: str) -> None:
    p = pool(api, demo_token, name="quota-pool", prefixes=["10.120.0.0/16"],
             default_prefixlen=26, default_quota=128)
    assert p["default_quota"] == 128
    net = create(api, demo_token, "network", name="quota-net")
    for cidr in ("10.120.0.0/26", "10.120.0.64/26"):
        assert create(api, demo_token, "subnet", network_id=net["id"], ip_version=4,
                      subnetpool_id=p["id"])["cidr"] == cidr
    r = api.request("POST", f"{N}/subnets", demo_token, json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "subnetpool_id": p["id"],
        "prefixlen": 28}})
    assert "quota" in error(r, 409, "SubnetPoolQuotaExceeded")["message"]


def test_a_server_boots_on_a_network_shared_by_rbac(api: Api, admin_token: str,
                                                    demo_token: str, third_token: str) -> None:
    """Compute honours RBAC sharing as the Networking API does: the target project may
    put a server on the network (a project without a policy may not)."""
    net, _sn = network_with_subnet(api, demo_token, "to-share-nova", "10.61.0.0/24")
    third = project_id(api, admin_token, "rbac-third-project")
    image = api.request("GET", "/image/v2/images?name=cirros", third_token).json()["images"][0]
    flavors = api.request("GET", "/compute/v2.1/flavors", third_token).json()["flavors"]
    server = {"name": "on-shared", "imageRef": image["id"], "flavorRef": flavors[0]["id"],
              "networks": [{"uuid": net["id"]}]}
    r = api.request("POST", "/compute/v2.1/servers", third_token, json={"server": server})
    assert r.status_code == 400 and "could not be found" in r.text, r.text
    policy = rbac(api, demo_token, object_type="network", object_id=net["id"],
                  action="access_as_shared", target_tenant=third)
    r = api.request("POST", "/compute/v2.1/servers", third_token, json={"server": server})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert api.request("DELETE", f"/compute/v2.1/servers/{sid}", third_token).status_code == 204
    del policy
