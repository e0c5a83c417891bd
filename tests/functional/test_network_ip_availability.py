"""/v2.0/network-ip-availabilities: pool sizes and allocated addresses per network (admins)."""

from __future__ import annotations

from tests.functional.network_helpers import N, create, delete, error
from tests.harness import Api


def test_counts_pools_and_allocations(api: Api, admin_token: str, demo_token: str) -> None:
    net = create(api, admin_token, "network", name="ipavail")
    v4 = create(api, admin_token, "subnet", network_id=net["id"], ip_version=4,
                cidr="10.77.0.0/28", name="v4")  # pool .2-.14: 13 addresses
    v6 = create(api, admin_token, "subnet", network_id=net["id"], ip_version=6,
                cidr="fd00:77::/120", name="v6")  # pool ::2-::ff: 254 addresses
    port = create(api, admin_token, "port", network_id=net["id"])
    assert len(port["fixed_ips"]) == 2
    try:
        r = api.request("GET", f"{N}/network-ip-availabilities/{net['id']}", admin_token)
        assert r.status_code == 200, r.text
        shown = r.json()["network_ip_availability"]
        assert (shown["network_id"], shown["network_name"]) == (net["id"], "ipavail")
        assert shown["project_id"] == shown["tenant_id"] == net["project_id"]
        assert (shown["total_ips"], shown["used_ips"]) == (13 + 254, 2)
        by_id = {x["subnet_id"]: x for x in shown["subnet_ip_availability"]}
        assert by_id[v4["id"]] == {"subnet_id": v4["id"], "subnet_name": "v4",
                                   "cidr": "10.77.0.0/28", "ip_version": 4,
                                   "total_ips": 13, "used_ips": 1}
        assert (by_id[v6["id"]]["total_ips"], by_id[v6["id"]]["used_ips"]) == (254, 1)

        r = api.request("GET", f"{N}/network-ip-availabilities?network_id={net['id']}"
                               "&ip_version=4", admin_token)
        (listed,) = r.json()["network_ip_availabilities"]
        assert [x["subnet_id"] for x in listed["subnet_ip_availability"]] == [v4["id"]]
        assert (listed["total_ips"], listed["used_ips"]) == (13, 1)
        r = api.request("GET", f"{N}/network-ip-availabilities", admin_token)
        assert net["id"] in {x["network_id"] for x in r.json()["network_ip_availabilities"]}
        error(api.request("GET", f"{N}/network-ip-availabilities?ip_version=5", admin_token),
              400)
        exts = api.request("GET", f"{N}/extensions", admin_token).json()["extensions"]
        assert "network-ip-availability" in {x["alias"] for x in exts}
    finally:
        delete(api, admin_token, "port", port["id"])
        delete(api, admin_token, "network", net["id"])


def test_members_see_nothing(api: Api, demo_token: str) -> None:
    nets = api.request("GET", f"{N}/networks", demo_token).json()["networks"]
    r = api.request("GET", f"{N}/network-ip-availabilities", demo_token)
    assert r.status_code == 200 and r.json() == {"network_ip_availabilities": []}
    error(api.request("GET", f"{N}/network-ip-availabilities/{nets[0]['id']}", demo_token),
          404, "NetworkNotFound")
