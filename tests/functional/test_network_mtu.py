"""Network MTUs (S7), provider segments and the `public` external network, over the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.network_helpers import (
    N,
    create,
    error,
    get,
    listing,
    update,
)
from tests.harness import Api, InProcessCloud, make_settings


def provider(net_type: str, **more: object) -> dict[str, object]:
    return {"provider:network_type": net_type, **{f"provider:{k}": v for k, v in more.items()}}


def test_mtu_is_computed_from_the_type(api: Api, admin_token: str) -> None:
    vxlan = create(api, admin_token, "network", name="m-vxlan", **provider("vxlan"))
    gre = create(api, admin_token, "network", name="m-gre", **provider("gre"))
    geneve = create(api, admin_token, "network", name="m-geneve", **provider("geneve"))
    vlan = create(api, admin_token, "network", name="m-vlan",
                  **provider("vlan", physical_network="physnet-m"))
    assert (vxlan["mtu"], gre["mtu"], geneve["mtu"], vlan["mtu"]) == (1450, 1458, 1450, 1500)


def test_admin_sets_a_smaller_mtu_but_not_a_bigger_one(api: Api, admin_token: str) -> None:
    net = create(api, admin_token, "network", name="m-set", mtu=1400, **provider("vxlan"))
    assert net["mtu"] == 1400
    assert update(api, admin_token, "network", net["id"], mtu=1300)["mtu"] == 1300
    body = update(api, admin_token, "network", net["id"], 400, mtu=1451)
    assert body["NeutronError"]["message"] == ("Invalid input for operation: Requested MTU "
                                               "is too big, maximum is 1450.")
    r = api.request("POST", f"{N}/networks", admin_token, json={"network": {
        "name": "m-big", "mtu": 1459, **provider("gre")}})
    assert error(r, 400, "InvalidInput")["message"].endswith("maximum is 1458.")
    assert get(api, admin_token, "network", net["id"])["mtu"] == 1300


def test_provider_attributes_are_admin_only_and_hidden(api: Api, admin_token: str,
                                                       demo_token: str) -> None:
    r = api.request("POST", f"{N}/networks", demo_token, json={"network": {
        "name": "m-mine", **provider("vlan", physical_network="physnet1")}})
    error(r, 403, "PolicyNotAuthorized")
    mine = create(api, demo_token, "network", name="m-mine")
    assert mine["mtu"] == 1450 and not any(k.startswith("provider:") for k in mine)
    seen = get(api, admin_token, "network", mine["id"])
    assert seen["provider:network_type"] == "vxlan" and seen["provider:segmentation_id"]


def test_segmentation_ids_are_allocated_and_unique_per_type(api: Api,
                                                            admin_token: str) -> None:
    a = create(api, admin_token, "network", name="seg-a", **provider("gre"))
    b = create(api, admin_token, "network", name="seg-b", **provider("gre"))
    assert a["provider:segmentation_id"] != b["provider:segmentation_id"]
    taken = a["provider:segmentation_id"]
    r = api.request("POST", f"{N}/networks", admin_token, json={"network": {
        "name": "seg-c", **provider("gre", segmentation_id=taken)}})
    assert str(taken) in error(r, 409, "TunnelIdInUse")["message"]
    # The same id on another type is free.
    other = create(api, admin_token, "network", name="seg-d",
                   **provider("geneve", segmentation_id=taken))
    assert other["provider:segmentation_id"] == taken


def test_first_start_has_the_public_external_network(api: Api, admin_token: str,
                                                     demo_token: str) -> None:
    (public,) = [n for n in listing(api, admin_token, "network", "name=public")]
    assert public["router:external"] is True and public["shared"] is False
    assert public["provider:network_type"] == "flat"
    assert public["provider:physical_network"] == "public" and public["mtu"] == 1500
    (sn,) = listing(api, admin_token, "subnet", f"network_id={public['id']}")
    assert (sn["name"], sn["cidr"], sn["gateway_ip"], sn["enable_dhcp"]) == (
        "public-subnet", "172.24.4.0/24", "172.24.4.1", False)
    admin_project = api.request("GET", "/identity/v3/projects?name=admin",
                                admin_token).json()["projects"][0]["id"]
    assert public["project_id"] == admin_project
    # Every project sees it (to pick it as a gateway), without its provider details.
    seen = [n for n in listing(api, demo_token, "network") if n["name"] == "public"]
    assert len(seen) == 1 and "provider:network_type" not in seen[0]


@pytest.fixture(scope="module")
def jumbo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, str]]:
    data: Path = tmp_path_factory.mktemp("jumbo")
    cloud = InProcessCloud(make_settings(data, network={"physnet_mtu": 9000,
                                                        "path_mtu": 1600})).start()
    api = Api(cloud.url)
    yield api, api.token("admin", cloud.admin_password, "admin")
    api.close()
    cloud.stop()


def test_physnet_and_path_mtu_settings(jumbo: tuple[Api, str]) -> None:
    api, admin = jumbo
    assert create(api, admin, "network", name="j1")["mtu"] == 1550
    assert create(api, admin, "network", name="j2", **provider("gre"))["mtu"] == 1558
    assert create(api, admin, "network", name="j3",
                  **provider("flat", physical_network="jumbo"))["mtu"] == 9000
    (public,) = listing(api, admin, "network", "name=public")
    assert public["mtu"] == 9000


def test_ipv6_needs_an_mtu_of_1280(api: Api, admin_token: str) -> None:
    small = create(api, admin_token, "network", name="m-small", mtu=1200)
    r = api.request("POST", f"{N}/subnets", admin_token, json={"subnet": {
        "network_id": small["id"], "ip_version": 6, "cidr": "2001:db8:12::/64"}})
    assert "at least 1280" in error(r, 400, "InvalidInput")["message"]
    create(api, admin_token, "subnet", network_id=small["id"], ip_version=4,
           cidr="10.12.0.0/24")
    v6net = create(api, admin_token, "network", name="m-v6")
    create(api, admin_token, "subnet", network_id=v6net["id"], ip_version=6,
           cidr="2001:db8:13::/64")
    body = update(api, admin_token, "network", v6net["id"], 400, mtu=1279)
    assert "1280" in body["NeutronError"]["message"]
    assert update(api, admin_token, "network", v6net["id"], mtu=1280)["mtu"] == 1280
