"""Networking on PostgreSQL and MariaDB: migrations, IPAM conflicts in savepoints, paging, races.

Skipped (with the reason) when the database server is not running; `scripts/test`
starts the local services first.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from gureum.network import service as netsvc
from tests.functional.network_helpers import N, create, error, listing, network_with_subnet
from tests.functional.test_databases import database_url  # noqa: F401  (the fixture)
from tests.harness import Api, InProcessCloud, make_settings


def exercise(cloud: InProcessCloud, api: Api) -> None:
    admin = api.token("admin", cloud.admin_password, "admin")
    demo = api.token("demo", cloud.demo_password, "demo")
    assert any(n["name"] == "private" for n in listing(api, demo, "network"))
    net, sn = network_with_subnet(api, demo, "db-lan", "192.168.90.0/27")
    create(api, demo, "port", network_id=net["id"], fixed_ips=[{"ip_address": "192.168.90.9"}],
           mac_address="fa:16:3e:00:00:09", name="p-é")
    # Both conflicts are caught by the database's unique constraints, in a savepoint.
    r = api.request("POST", f"{N}/ports", demo, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.90.9"}]}})
    error(r, 409, "IpAddressAlreadyAllocated")
    r = api.request("POST", f"{N}/ports", demo, json={"port": {
        "network_id": net["id"], "mac_address": "fa:16:3e:00:00:09"}})
    error(r, 409, "MacAddressInUse")

    # Racing requests for addresses: every one gets its own, none fails with a 500.
    def one(i: int) -> tuple[int, str]:
        r = api.request("POST", f"{N}/ports", demo, json={"port": {
            "network_id": net["id"], "name": f"race-{i}"}})
        return r.status_code, r.text

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert all(status == 201 for status, _ in results), results
    ips = [p["fixed_ips"][0]["ip_address"] for p in listing(api, demo, "port",
                                                            f"network_id={net['id']}")]
    assert len(ips) == len(set(ips)) == 17
    # Keyset paging over a boolean and a name, the tag filter, unicode names.
    names = []
    url: str | None = f"{N}/ports?network_id={net['id']}&sort_key=admin_state_up&sort_key=name" \
        "&sort_dir=asc&sort_dir=desc&limit=5"
    while url:
        body = api.request("GET", url, demo).json()
        names += [p["name"] for p in body["ports"]]
        nxt = [link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"]
        url = nxt[0][nxt[0].index("/network/"):] if nxt else None
    assert names == sorted(names, reverse=True) and len(names) == 17 and names[-1] == "p-é"
    api.request("PUT", f"{N}/subnets/{sn['id']}/tags/t1", demo)
    assert [s["id"] for s in listing(api, demo, "subnet", "tags=t1")] == [sn["id"]]
    # The service Compute calls, in the caller's transaction.
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        info = netsvc.allocate_for_instance(s, instance_id="vm-db", project_id=net["project_id"],
                                            requests=[{"uuid": net["id"]}], host="c01")
        assert info[0]["binding_host_id"] == "c01"
        assert netsvc.instance_ids_with_ip(s, info[0]["fixed_ips"][0]["ip_address"]) == [
            "vm-db"]
        netsvc.deallocate_for_instance(s, "vm-db")
    for port in listing(api, demo, "port", f"network_id={net['id']}"):
        assert api.request("DELETE", f"{N}/ports/{port['id']}", demo).status_code == 204
    assert api.request("DELETE", f"{N}/networks/{net['id']}", demo).status_code == 204
    vlan = create(api, admin, "network", **{"provider:network_type": "vlan",
                                            "provider:physical_network": "physnet1"})
    assert vlan["provider:segmentation_id"] == 1


def test_networking_on_database(database_url: str,  # noqa: F811
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = make_settings(tmp_path_factory.mktemp("netdb"), database={"url": database_url})
    cloud = InProcessCloud(settings).start()
    api = Api(cloud.url)
    try:
        exercise(cloud, api)
    finally:
        api.close()
        cloud.stop()


def test_networking_races_on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> None:
    cloud = InProcessCloud(make_settings(tmp_path_factory.mktemp("netsqlite"))).start()
    api = Api(cloud.url)
    try:
        exercise(cloud, api)
    finally:
        api.close()
        cloud.stop()
