"""os-aggregates and os-availability-zone: zones from aggregates, and Nova's AZ rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud
from tests.harness import Api, InProcessCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=3)


def create(api: Api, token: str, name: str, zone: str | None = None, mv: str = "2.1"
           ) -> dict:
    body: dict = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    r = call(api, "POST", "/os-aggregates", token, mv, status=200, json={"aggregate": body})
    return dict(r.json()["aggregate"])


def action(api: Api, token: str, agg_id: int, name: str, args: dict, status: int = 200,
           mv: str = "2.1") -> dict:
    r = call(api, "POST", f"/os-aggregates/{agg_id}/action", token, mv, status=status,
             json={name: args})
    return dict(r.json())


def zones(api: Api, token: str, detail: bool = False) -> dict[str, dict]:
    path = "/os-availability-zone" + ("/detail" if detail else "")
    r = call(api, "GET", path, token, status=200)
    return {z["zoneName"]: z for z in r.json()["availabilityZoneInfo"]}


def cleanup(api: Api, token: str, agg_id: int) -> None:
    shown = call(api, "GET", f"/os-aggregates/{agg_id}", token, status=200).json()["aggregate"]
    for host in shown["hosts"]:
        action(api, token, agg_id, "remove_host", {"host": host})
    call(api, "DELETE", f"/os-aggregates/{agg_id}", token, status=200)


def test_create_show_list_update_delete(api: Api, admin_token: str) -> None:
    made = create(api, admin_token, "agg1", "az1")
    assert set(made) == {"id", "name", "availability_zone", "created_at", "updated_at",
                         "deleted_at", "deleted"}
    assert (made["availability_zone"], made["deleted"]) == ("az1", False)
    shown = call(api, "GET", f"/os-aggregates/{made['id']}", admin_token, "2.41",
                 status=200).json()["aggregate"]
    assert shown["hosts"] == [] and shown["metadata"] == {"availability_zone": "az1"}
    assert len(shown["uuid"]) == 36
    assert "uuid" not in call(api, "GET", f"/os-aggregates/{made['id']}", admin_token, "2.40",
                              status=200).json()["aggregate"]
    listed = call(api, "GET", "/os-aggregates", admin_token, status=200).json()["aggregates"]
    assert [a["name"] for a in listed] == ["agg1"]
    updated = call(api, "PUT", f"/os-aggregates/{made['id']}", admin_token, status=200,
                   json={"aggregate": {"name": " agg1-renamed ",
                                       "availability_zone": "az1b"}}).json()["aggregate"]
    assert (updated["name"], updated["availability_zone"]) == ("agg1-renamed", "az1b")
    assert updated["metadata"]["availability_zone"] == "az1b"
    call(api, "DELETE", f"/os-aggregates/{made['id']}", admin_token, status=200)
    call(api, "GET", f"/os-aggregates/{made['id']}", admin_token, status=404)


def test_bad_requests(api: Api, admin_token: str) -> None:
    made = create(api, admin_token, "dup")
    try:
        r = call(api, "POST", "/os-aggregates", admin_token, status=409,
                 json={"aggregate": {"name": "dup"}})
        assert fault(r) == "Aggregate dup already exists."
        for body in ({"name": ""}, {"name": " x"}, {"name": "x", "availability_zone": "a:b"},
                     {"name": "x", "bogus": 1}, {}):
            call(api, "POST", "/os-aggregates", admin_token, status=400,
                 json={"aggregate": body})
        call(api, "PUT", f"/os-aggregates/{made['id']}", admin_token, status=400,
             json={"aggregate": {}})
        call(api, "GET", "/os-aggregates/abc", admin_token, status=400)
        call(api, "GET", "/os-aggregates/999", admin_token, status=404)
        action(api, admin_token, made["id"], "add_host", {"host": "nowhere"}, status=404)
        action(api, admin_token, made["id"], "remove_host", {"host": "c01"}, status=404)
        call(api, "POST", f"/os-aggregates/{made['id']}/action", admin_token, status=400,
             json={"explode": {}})
        r = action(api, admin_token, made["id"], "set_metadata",
                   {"metadata": {"availability_zone": None}}, status=400)
        assert "empty named availability zone" in r["badRequest"]["message"]
    finally:
        call(api, "DELETE", f"/os-aggregates/{made['id']}", admin_token, status=200)


def test_hosts_and_metadata(api: Api, admin_token: str) -> None:
    made = create(api, admin_token, "fast")
    out = action(api, admin_token, made["id"], "add_host", {"host": "c01"})["aggregate"]
    assert out["hosts"] == ["c01"]
    r = action(api, admin_token, made["id"], "add_host", {"host": "c01"}, status=409)
    assert r["conflictingRequest"]["message"] == f"Aggregate {made['id']} already has host c01."
    out = action(api, admin_token, made["id"], "set_metadata",
                 {"metadata": {"ssd": "true", "gpu": "no"}})["aggregate"]
    assert out["metadata"] == {"ssd": "true", "gpu": "no"}
    out = action(api, admin_token, made["id"], "set_metadata",
                 {"metadata": {"gpu": None}})["aggregate"]
    assert out["metadata"] == {"ssd": "true"}
    r = call(api, "DELETE", f"/os-aggregates/{made['id']}", admin_token, status=400)
    assert "Host aggregate is not empty" in fault(r)
    cleanup(api, admin_token, made["id"])


def test_zone_follows_the_aggregate(api: Api, admin_token: str, demo_token: str) -> None:
    assert list(zones(api, demo_token)) == ["nova"]
    made = create(api, admin_token, "zone-agg", "az2")
    assert "az2" not in zones(api, demo_token)  # a zone without hosts is not listed
    action(api, admin_token, made["id"], "add_host", {"host": "c03"})
    listed = zones(api, demo_token)
    assert listed["az2"] == {"zoneName": "az2", "zoneState": {"available": True},
                             "hosts": None}
    services = call(api, "GET", "/os-services?host=c03", admin_token,
                    status=200).json()["services"]
    assert services[0]["zone"] == "az2"
    detail = zones(api, admin_token, detail=True)
    assert set(detail["az2"]["hosts"]) == {"c03"}
    assert set(detail["az2"]["hosts"]["c03"]["nova-compute"]) == {"available", "active",
                                                                  "updated_at"}
    assert set(detail["nova"]["hosts"]) == {"c01", "c02"}
    assert "internal" in detail and "internal" not in listed
    call(api, "GET", "/os-availability-zone/detail", demo_token, status=403)
    cleanup(api, admin_token, made["id"])


def test_zone_of_disabled_hosts_is_not_available(api: Api, admin_token: str,
                                                 demo_token: str) -> None:
    made = create(api, admin_token, "quiet", "az-quiet")
    action(api, admin_token, made["id"], "add_host", {"host": "c02"})
    body = {"host": "c02", "binary": "nova-compute"}
    call(api, "PUT", "/os-services/disable", admin_token, status=200, json=body)
    try:
        assert zones(api, demo_token)["az-quiet"]["zoneState"] == {"available": False}
    finally:
        call(api, "PUT", "/os-services/enable", admin_token, status=200, json=body)
        cleanup(api, admin_token, made["id"])


def test_a_host_has_one_zone(api: Api, admin_token: str) -> None:
    a = create(api, admin_token, "zone-a", "za")
    b = create(api, admin_token, "zone-b", "zb")
    plain = create(api, admin_token, "no-zone")
    try:
        action(api, admin_token, a["id"], "add_host", {"host": "c01"})
        r = action(api, admin_token, b["id"], "add_host", {"host": "c01"}, status=409)
        assert "already in availability zone(s) ['za']" in r["conflictingRequest"]["message"]
        action(api, admin_token, plain["id"], "add_host", {"host": "c01"})  # no zone: fine
        r = action(api, admin_token, plain["id"], "set_metadata",
                   {"metadata": {"availability_zone": "zc"}}, status=400)
        assert "already in availability zone(s)" in r["badRequest"]["message"]
        r = call(api, "PUT", f"/os-aggregates/{plain['id']}", admin_token, status=400,
                 json={"aggregate": {"availability_zone": "zc"}})
        assert "already in availability zone(s)" in fault(r)
        # The same zone name is no conflict.
        action(api, admin_token, plain["id"], "set_metadata",
               {"metadata": {"availability_zone": "za"}})
    finally:
        for agg in (a, b, plain):
            cleanup(api, admin_token, agg["id"])


def test_zones_of_hosts_with_instances_do_not_change(api: Api, admin_token: str) -> None:
    server = boot(api, admin_token, "stays", availability_zone="nova:c02")
    wait_status(api, admin_token, server["id"], {"ACTIVE"})
    zoned = create(api, admin_token, "would-move", "az-move")
    plain = create(api, admin_token, "plain")
    try:
        r = action(api, admin_token, zoned["id"], "add_host", {"host": "c02"}, status=409)
        assert "would change from 'None' to 'az-move'" in r["conflictingRequest"]["message"]
        action(api, admin_token, plain["id"], "add_host", {"host": "c02"})
        r = action(api, admin_token, plain["id"], "set_metadata",
                   {"metadata": {"availability_zone": "az-new"}}, status=400)
        assert "One or more hosts contain instances in this zone" in \
            r["badRequest"]["message"]
        call(api, "PUT", f"/os-aggregates/{plain['id']}", admin_token, status=400,
             json={"aggregate": {"availability_zone": "az-new"}})
    finally:
        call(api, "DELETE", f"/servers/{server['id']}", admin_token, status=204)
        wait_gone(api, admin_token, server["id"])
        cleanup(api, admin_token, zoned["id"])
        cleanup(api, admin_token, plain["id"])


def test_removing_a_host_with_instances_from_its_zone_is_refused(api: Api,
                                                                 admin_token: str) -> None:
    zoned = create(api, admin_token, "home", "az-home")
    action(api, admin_token, zoned["id"], "add_host", {"host": "c03"})
    server = boot(api, admin_token, "homebody", availability_zone="az-home")
    wait_status(api, admin_token, server["id"], {"ACTIVE"})
    try:
        r = action(api, admin_token, zoned["id"], "remove_host", {"host": "c03"}, status=409)
        assert "from 'az-home' to 'None'" in r["conflictingRequest"]["message"]
    finally:
        call(api, "DELETE", f"/servers/{server['id']}", admin_token, status=204)
        wait_gone(api, admin_token, server["id"])
        cleanup(api, admin_token, zoned["id"])


def test_cache_images_from_2_81(api: Api, admin_token: str) -> None:
    made = create(api, admin_token, "cache")
    image = api.request("GET", "/image/v2/images?name=cirros", admin_token).json()["images"][0]
    try:
        body = {"cache": [{"id": image["id"]}]}
        call(api, "POST", f"/os-aggregates/{made['id']}/images", admin_token, "2.80",
             status=404, json=body)
        call(api, "POST", f"/os-aggregates/{made['id']}/images", admin_token, "2.81",
             status=202, json=body)
        call(api, "POST", f"/os-aggregates/{made['id']}/images", admin_token, "2.81",
             status=400, json={"cache": [{"id": image["id"]}, {"id": image["id"]}]})
        call(api, "POST", f"/os-aggregates/{made['id']}/images", admin_token, "2.81",
             status=400, json={"cache": [{"id": "nope"}]})
    finally:
        cleanup(api, admin_token, made["id"])


def test_members_get_403(api: Api, demo_token: str) -> None:
    call(api, "GET", "/os-aggregates", demo_token, status=403)
    call(api, "POST", "/os-aggregates", demo_token, status=403,
         json={"aggregate": {"name": "mine"}})
    call(api, "POST", "/os-aggregates/1/action", demo_token, status=403,
         json={"add_host": {"host": "c01"}})
