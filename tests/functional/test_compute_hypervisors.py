"""os-hypervisors: list/detail/show per microversion, statistics, uptime, servers, paging."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud
from tests.harness import Api, InProcessCloud

DETAIL_221 = {"id", "hypervisor_hostname", "state", "status", "hypervisor_type",
              "hypervisor_version", "host_ip", "service", "vcpus", "memory_mb", "local_gb",
              "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb", "free_disk_gb",
              "current_workload", "running_vms", "disk_available_least", "cpu_info"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=3)


@pytest.fixture(scope="module")
def server_on_c02(api: Api, admin_token: str) -> Iterator[dict]:
    server = boot(api, admin_token, "on-c02", availability_zone="nova:c02")
    yield wait_status(api, admin_token, server["id"], {"ACTIVE"})
    call(api, "DELETE", f"/servers/{server['id']}", admin_token)
    wait_gone(api, admin_token, server["id"])


def hypervisors(api: Api, token: str, mv: str, path: str = "") -> list[dict]:
    return list(call(api, "GET", f"/os-hypervisors{path}", token, mv,
                     status=200).json()["hypervisors"])


def test_list_is_id_name_state_status(api: Api, admin_token: str) -> None:
    items = hypervisors(api, admin_token, "2.1")
    assert [h["hypervisor_hostname"] for h in items] == ["c01", "c02", "c03"]
    for h in items:
        assert set(h) == {"id", "hypervisor_hostname", "state", "status"}
        assert isinstance(h["id"], int) and (h["state"], h["status"]) == ("up", "enabled")
    assert all(len(h["id"]) == 36 for h in hypervisors(api, admin_token, "2.53"))


def test_detail_before_2_88_has_the_numbers(api: Api, admin_token: str,
                                            server_on_c02: dict) -> None:
    items = {h["hypervisor_hostname"]: h for h in hypervisors(api, admin_token, "2.1",
                                                              "/detail")}
    c02 = items["c02"]
    assert set(c02) == DETAIL_221
    assert isinstance(c02["cpu_info"], str) and json.loads(c02["cpu_info"]) is not None
    assert c02["running_vms"] == 1 and c02["vcpus_used"] == 1
    assert c02["memory_mb_used"] == 512 + 512  # m1.tiny + the host's reserved memory
    assert c02["free_ram_mb"] == c02["memory_mb"] - c02["memory_mb_used"]
    assert c02["service"] == {"id": c02["service"]["id"], "host": "c02",
                              "disabled_reason": None}
    assert isinstance(items["c01"]["cpu_info"], str)
    v228 = hypervisors(api, admin_token, "2.28", "/detail")[0]
    assert isinstance(v228["cpu_info"], dict)


def test_detail_from_2_88_drops_numbers_and_adds_uptime(api: Api, admin_token: str) -> None:
    h = hypervisors(api, admin_token, "2.88", "/detail")[0]
    assert set(h) == {"id", "hypervisor_hostname", "state", "status", "hypervisor_type",
                      "hypervisor_version", "host_ip", "service", "uptime"}
    assert " up " in h["uptime"] and "load average" in h["uptime"]
    assert len(h["service"]["id"]) == 36


def test_show_by_int_then_uuid(api: Api, admin_token: str) -> None:
    first = hypervisors(api, admin_token, "2.1")[0]
    shown = call(api, "GET", f"/os-hypervisors/{first['id']}", admin_token, "2.1",
                 status=200).json()["hypervisor"]
    assert set(shown) == DETAIL_221
    r = call(api, "GET", "/os-hypervisors/abc", admin_token, "2.1", status=404)
    assert fault(r) == "Hypervisor with ID 'abc' could not be found."
    call(api, "GET", "/os-hypervisors/999", admin_token, "2.1", status=404)
    by_uuid = hypervisors(api, admin_token, "2.53")[0]
    call(api, "GET", f"/os-hypervisors/{by_uuid['id']}", admin_token, "2.53", status=200)
    assert fault(call(api, "GET", f"/os-hypervisors/{first['id']}", admin_token, "2.53",
                      status=400)).startswith("Invalid uuid")
    call(api, "GET", "/os-hypervisors/00000000-0000-0000-0000-000000000000", admin_token,
         "2.53", status=404)


def test_with_servers(api: Api, admin_token: str, server_on_c02: dict) -> None:
    items = {h["hypervisor_hostname"]: h for h in hypervisors(
        api, admin_token, "2.53", "?with_servers=true")}
    assert items["c02"]["servers"] == [{"name": "on-c02", "uuid": server_on_c02["id"]}]
    assert "servers" not in items["c01"]  # before 2.75 an empty list is left out
    items = {h["hypervisor_hostname"]: h for h in hypervisors(
        api, admin_token, "2.75", "?with_servers=1")}
    assert items["c01"]["servers"] == []
    c02 = items["c02"]["id"]
    shown = call(api, "GET", f"/os-hypervisors/{c02}?with_servers=true", admin_token, "2.88",
                 status=200).json()["hypervisor"]
    assert shown["servers"][0]["uuid"] == server_on_c02["id"]
    call(api, "GET", "/os-hypervisors?with_servers=maybe", admin_token, "2.53", status=400)


def test_legacy_servers_and_search_routes(api: Api, admin_token: str,
                                          server_on_c02: dict) -> None:
    found = hypervisors(api, admin_token, "2.1", "/c02/servers")
    assert [(h["hypervisor_hostname"], len(h["servers"])) for h in found] == [("c02", 1)]
    assert [h["hypervisor_hostname"] for h in hypervisors(api, admin_token, "2.1",
                                                          "/c0/search")] == ["c01", "c02",
                                                                             "c03"]
    r = call(api, "GET", "/os-hypervisors/zz/search", admin_token, "2.1", status=404)
    assert fault(r) == "No hypervisor matching 'zz' could be found."
    call(api, "GET", "/os-hypervisors/c02/servers", admin_token, "2.53", status=404)


def test_hostname_pattern(api: Api, admin_token: str) -> None:
    found = hypervisors(api, admin_token, "2.53", "?hypervisor_hostname_pattern=03")
    assert [h["hypervisor_hostname"] for h in found] == ["c03"]
    call(api, "GET", "/os-hypervisors?hypervisor_hostname_pattern=zz", admin_token, "2.53",
         status=404)
    r = call(api, "GET", "/os-hypervisors?hypervisor_hostname_pattern=c&limit=1",
             admin_token, "2.53", status=400)
    assert "Paging" in fault(r)
    call(api, "GET", "/os-hypervisors?bogus=1", admin_token, "2.53", status=400)


def test_paging_from_2_33(api: Api, admin_token: str) -> None:
    r = call(api, "GET", "/os-hypervisors?limit=2", admin_token, "2.33", status=200).json()
    assert len(r["hypervisors"]) == 2
    link = r["hypervisors_links"][0]["href"]
    assert f"marker={r['hypervisors'][-1]['id']}" in link
    rest = call(api, "GET", f"/os-hypervisors?marker={r['hypervisors'][-1]['id']}",
                admin_token, "2.33", status=200).json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in rest] == ["c03"]
    call(api, "GET", "/os-hypervisors?marker=9999", admin_token, "2.33", status=400)
    call(api, "GET", "/os-hypervisors?limit=-1", admin_token, "2.33", status=400)
    uuids = hypervisors(api, admin_token, "2.53", "?limit=1")
    after = hypervisors(api, admin_token, "2.53", f"/detail?marker={uuids[0]['id']}")
    assert [h["hypervisor_hostname"] for h in after] == ["c02", "c03"]


def test_statistics_until_2_88(api: Api, admin_token: str, server_on_c02: dict) -> None:
    stats = call(api, "GET", "/os-hypervisors/statistics", admin_token, "2.87",
                 status=200).json()["hypervisor_statistics"]
    assert stats["count"] == 3 and stats["running_vms"] == 1
    assert stats["vcpus"] == sum(h["vcpus"] for h in hypervisors(api, admin_token, "2.1",
                                                                 "/detail"))
    call(api, "GET", "/os-hypervisors/statistics", admin_token, "2.88", status=404)


def test_statistics_leave_out_disabled_hosts(api: Api, admin_token: str) -> None:
    body = {"host": "c03", "binary": "nova-compute"}
    call(api, "PUT", "/os-services/disable", admin_token, status=200, json=body)
    try:
        stats = call(api, "GET", "/os-hypervisors/statistics", admin_token,
                     status=200).json()["hypervisor_statistics"]
        assert stats["count"] == 2
        c03 = next(h for h in hypervisors(api, admin_token, "2.1") if
               h["hypervisor_hostname"] == "c03")
        assert c03["status"] == "disabled"
    finally:
        call(api, "PUT", "/os-services/enable", admin_token, status=200, json=body)


def test_uptime_until_2_88(api: Api, admin_token: str) -> None:
    first = hypervisors(api, admin_token, "2.1")[0]
    up = call(api, "GET", f"/os-hypervisors/{first['id']}/uptime", admin_token, "2.1",
              status=200).json()["hypervisor"]
    assert set(up) == {"id", "hypervisor_hostname", "state", "status", "uptime"}
    uuid = hypervisors(api, admin_token, "2.53")[0]["id"]
    call(api, "GET", f"/os-hypervisors/{uuid}/uptime", admin_token, "2.87", status=200)
    call(api, "GET", f"/os-hypervisors/{uuid}/uptime", admin_token, "2.88", status=404)


def test_members_get_403(api: Api, demo_token: str) -> None:
    for path in ("", "/detail", "/statistics", "/1", "/1/uptime", "/c01/servers"):
        call(api, "GET", f"/os-hypervisors{path}", demo_token, status=403)
