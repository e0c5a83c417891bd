"""os-services: shapes per microversion, the nova-compute alias, enable/disable/force down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from gureum.compute.models import ComputeService, Migration
from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud
from tests.harness import Api, InProcessCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=2)


def services(api: Api, token: str, mv: str = "2.1", query: str = "") -> list[dict]:
    r = call(api, "GET", f"/os-services{query}", token, mv, status=200)
    return list(r.json()["services"])


def by_host(items: list[dict], host: str, binary: str = "nova-compute") -> dict:
    (found,) = [s for s in items if s["host"] == host and s["binary"] == binary]
    return found


def test_list_shows_compute_services_as_nova_compute(api: Api, admin_token: str) -> None:
    items = services(api, admin_token)
    computes = [s for s in items if s["binary"] == "nova-compute"]
    assert sorted(s["host"] for s in computes) == ["c01", "c02"]
    for svc in computes:
        assert set(svc) == {"id", "binary", "host", "zone", "status", "state", "updated_at",
                            "disabled_reason"}
        assert isinstance(svc["id"], int)
        assert (svc["zone"], svc["status"], svc["state"]) == ("nova", "enabled", "up")
        assert svc["updated_at"] and "T" in svc["updated_at"]
    (conductor,) = [s for s in items if s["binary"] == "nova-conductor"]
    assert conductor["zone"] == "internal"
    assert not [s for s in items if s["binary"].startswith("gureum-")]


def test_microversions_add_forced_down_then_uuid_ids(api: Api, admin_token: str) -> None:
    assert "forced_down" not in services(api, admin_token, "2.10")[0]
    v211 = by_host(services(api, admin_token, "2.11"), "c01")
    assert v211["forced_down"] is False and isinstance(v211["id"], int)
    v253 = by_host(services(api, admin_token, "2.53"), "c01")
    assert len(v253["id"]) == 36 and v253["forced_down"] is False


def test_filters_accept_both_binary_spellings(api: Api, admin_token: str) -> None:
    for name in ("nova-compute", "gureum-compute"):
        found = services(api, admin_token, query=f"?binary={name}")
        assert {s["host"] for s in found} == {"c01", "c02"}
        assert {s["binary"] for s in found} == {"nova-compute"}
    one = services(api, admin_token, query="?host=c02&binary=nova-compute")
    assert [s["host"] for s in one] == ["c02"]
    assert services(api, admin_token, query="?host=nowhere") == []


def test_unknown_query_parameters_are_400_from_2_75(api: Api, admin_token: str) -> None:
    call(api, "GET", "/os-services?bogus=1", admin_token, "2.74", status=200)
    r = call(api, "GET", "/os-services?bogus=1", admin_token, "2.75", status=400)
    assert "bogus" in fault(r)


def test_members_and_readers_get_403(api: Api, demo_token: str) -> None:
    call(api, "GET", "/os-services", demo_token, status=403)
    call(api, "PUT", "/os-services/disable", demo_token, status=403,
         json={"host": "c01", "binary": "nova-compute"})
    call(api, "DELETE", "/os-services/1", demo_token, status=403)


def test_legacy_disable_with_reason_and_enable(api: Api, admin_token: str) -> None:
    r = call(api, "PUT", "/os-services/disable-log-reason", admin_token, status=200,
             json={"host": "c01", "binary": "nova-compute", "disabled_reason": "maintenance"})
    assert r.json() == {"service": {"host": "c01", "binary": "nova-compute",
                                    "status": "disabled", "disabled_reason": "maintenance"}}
    svc = by_host(services(api, admin_token), "c01")
    assert (svc["status"], svc["disabled_reason"]) == ("disabled", "maintenance")
    r = call(api, "PUT", "/os-services/enable", admin_token, status=200,
             json={"host": "c01", "binary": "gureum-compute"})
    assert r.json()["service"]["status"] == "enabled"
    svc = by_host(services(api, admin_token), "c01")
    assert (svc["status"], svc["disabled_reason"]) == ("enabled", None)
    call(api, "PUT", "/os-services/disable", admin_token, status=200,
         json={"host": "c01", "binary": "nova-compute"})
    assert by_host(services(api, admin_token), "c01")["disabled_reason"] is None
    call(api, "PUT", "/os-services/enable", admin_token, status=200,
         json={"host": "c01", "binary": "nova-compute"})


def test_legacy_errors(api: Api, admin_token: str) -> None:
    body = {"host": "c01", "binary": "nova-compute"}
    assert fault(call(api, "PUT", "/os-services/explode", admin_token, status=404,
                      json=body)) == "Unknown action"
    # force-down exists from 2.11; forced_down in the body too.
    call(api, "PUT", "/os-services/force-down", admin_token, "2.10", status=404,
         json={**body, "forced_down": True})
    call(api, "PUT", "/os-services/disable", admin_token, "2.10", status=400,
         json={**body, "forced_down": True})
    r = call(api, "PUT", "/os-services/disable-log-reason", admin_token, status=400,
             json=body)
    assert fault(r) == "Missing disabled reason field"
    r = call(api, "PUT", "/os-services/disable", admin_token, status=404,
             json={"host": "nowhere", "binary": "nova-compute"})
    assert fault(r) == "Could not find binary nova-compute on host nowhere."
    r = call(api, "PUT", "/os-services/disable", admin_token, status=400,
             json={"host": "c01", "binary": "nova-conductor"})
    assert "Only nova-compute services can be updated" in fault(r)
    call(api, "PUT", "/os-services/disable", admin_token, status=400, json={"host": "c01"})
    call(api, "PUT", "/os-services/disable", admin_token, status=400,
         json={**body, "disabled_reason": ""})


def test_legacy_force_down_marks_the_service_down(api: Api, admin_token: str) -> None:
    body = {"host": "c02", "binary": "nova-compute"}
    r = call(api, "PUT", "/os-services/force-down", admin_token, "2.11", status=200,
             json={**body, "forced_down": True})
    assert r.json()["service"]["forced_down"] is True
    svc = by_host(services(api, admin_token, "2.11"), "c02")
    assert (svc["forced_down"], svc["state"]) == (True, "down")
    call(api, "PUT", "/os-services/force-down", admin_token, "2.11", status=200,
         json={**body, "forced_down": "false"})
    svc = by_host(services(api, admin_token, "2.11"), "c02")
    assert (svc["forced_down"], svc["state"]) == (False, "up")
    r = call(api, "PUT", "/os-services/force-down", admin_token, "2.11", status=400, json=body)
    assert fault(r) == "Missing forced_down field"


def test_v253_update_by_uuid(api: Api, admin_token: str) -> None:
    svc = by_host(services(api, admin_token, "2.53"), "c01")
    r = call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=200,
             json={"status": "disabled", "disabled_reason": "maintenance"})
    out = r.json()["service"]
    assert (out["id"], out["status"], out["disabled_reason"]) == (svc["id"], "disabled",
                                                                  "maintenance")
    assert out["binary"] == "nova-compute" and out["zone"] == "nova"
    r = call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=200,
             json={"forced_down": True})
    assert (r.json()["service"]["forced_down"], r.json()["service"]["state"]) == (True, "down")
    r = call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=200,
             json={"status": "enabled", "forced_down": False})
    out = r.json()["service"]
    assert (out["status"], out["disabled_reason"], out["forced_down"], out["state"]) == \
        ("enabled", None, False, "up")


def test_v253_errors(api: Api, admin_token: str) -> None:
    svc = by_host(services(api, admin_token, "2.53"), "c01")
    assert fault(call(api, "PUT", "/os-services/disable", admin_token, "2.53", status=400,
                      json={"status": "disabled"})) == "Invalid uuid disable"
    call(api, "PUT", "/os-services/00000000-0000-0000-0000-000000000000", admin_token, "2.53",
         status=404, json={"status": "disabled"})
    r = call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=400, json={})
    assert "No updates were requested" in fault(r)
    r = call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=400,
             json={"status": "enabled", "disabled_reason": "why"})
    assert "disabled_reason" in fault(r)
    call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=400,
         json={"status": "sleeping"})
    call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=400,
         json={"host": "c01", "binary": "nova-compute"})
    conductor = next(s for s in services(api, admin_token, "2.53")
                 if s["binary"] == "nova-conductor")
    r = call(api, "PUT", f"/os-services/{conductor['id']}", admin_token, "2.53", status=400,
             json={"status": "disabled"})
    assert fault(r) == ("Updating a nova-conductor service is not supported. Only "
                        "nova-compute services can be updated.")
    # A uuid on the path before 2.53 is not an action.
    call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.52", status=404,
         json={"host": "c01", "binary": "nova-compute"})


def test_forcing_up_is_refused_while_done_evacuations_wait(api: Api, admin_token: str,
                                                           cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        s.add(Migration(instance_id="00000000-0000-0000-0000-0000000000e1",
                        migration_type="evacuation", status="done", source_compute="c02"))
    svc = by_host(services(api, admin_token, "2.53"), "c02")
    r = call(api, "PUT", f"/os-services/{svc['id']}", admin_token, "2.53", status=400,
             json={"forced_down": False})
    assert "`done` evacuation" in fault(r)
    with cloud.cloud.db.session() as s:
        for m in s.scalars(select(Migration).where(Migration.source_compute == "c02")):
            s.delete(m)


def test_a_silent_service_is_down(api: Api, admin_token: str, cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        s.add(ComputeService(host="ghost", binary="gureum-compute",
                             last_seen_up=dt.datetime(2020, 1, 1)))
    ghost = by_host(services(api, admin_token), "ghost")
    assert ghost["state"] == "down" and ghost["status"] == "enabled"


def test_delete_by_id_and_uuid(api: Api, admin_token: str, cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        s.add(ComputeService(host="old1", binary="gureum-compute"))
        s.add(ComputeService(host="old2", binary="gureum-compute"))
    old1 = by_host(services(api, admin_token), "old1")
    call(api, "DELETE", f"/os-services/{old1['id']}", admin_token, status=204)
    call(api, "DELETE", f"/os-services/{old1['id']}", admin_token, status=404)
    old2 = by_host(services(api, admin_token, "2.53"), "old2")
    call(api, "DELETE", f"/os-services/{old2['id']}", admin_token, "2.52", status=400)
    call(api, "DELETE", "/os-services/12", admin_token, "2.53", status=400)
    call(api, "DELETE", f"/os-services/{old2['id']}", admin_token, "2.53", status=204)
    assert {"old1", "old2"}.isdisjoint(s["host"] for s in services(api, admin_token))


def test_delete_refused_while_the_host_has_instances(api: Api, admin_token: str) -> None:
    server = boot(api, admin_token, "pinned", availability_zone="nova:c01")
    wait_status(api, admin_token, server["id"], {"ACTIVE"})
    svc = by_host(services(api, admin_token, "2.53"), "c01")
    r = call(api, "DELETE", f"/os-services/{svc['id']}", admin_token, "2.53", status=409)
    assert "hosting instances" in fault(r)
    call(api, "DELETE", f"/servers/{server['id']}", admin_token, status=204)
    wait_gone(api, admin_token, server["id"])
