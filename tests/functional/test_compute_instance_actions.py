"""os-instance-actions and os-migrations: who sees which fields at which microversion."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.compute import instances
from gureum.compute.models import InstanceActionEvent, Migration
from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud
from tests.harness import Api, InProcessCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=2)


@pytest.fixture(scope="module")
def server(api: Api, demo_token: str, cloud: InProcessCloud) -> dict[str, Any]:
    """A demo server with three actions; "stop" has an event with host/traceback/details."""
    made = boot(api, demo_token, "acted-on")
    active = wait_status(api, demo_token, made["id"], {"ACTIVE"})
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        for n, name in enumerate(("stop", "start")):
            action = instances.start_action(s, made["id"], name, f"req-test-{n}", "u1", None)
            action.start_time = action.updated_at = dt.datetime(2030, 1, 1 + n)
        stop = instances.find_action(s, made["id"], "req-test-0")
        assert stop is not None
        s.add(InstanceActionEvent(action_id=stop.id, event="compute_stop_instance",
                                  host="c01", result="Error", traceback="Traceback: boom",
                                  details="guest did not stop"))
    return active


def actions(api: Api, token: str, server_id: str, mv: str = "2.1", query: str = ""
            ) -> dict[str, Any]:
    return dict(call(api, "GET", f"/servers/{server_id}/os-instance-actions{query}", token, mv,
                     status=200).json())


def action(api: Api, token: str, server_id: str, request_id: str, mv: str = "2.1"
           ) -> dict[str, Any]:
    return dict(call(api, "GET", f"/servers/{server_id}/os-instance-actions/{request_id}",
                     token, mv, status=200).json()["instanceAction"])


def test_list_newest_first(api: Api, demo_token: str, server: dict) -> None:
    items = actions(api, demo_token, server["id"])["instanceActions"]
    assert [a["action"] for a in items] == ["start", "stop", "create"]
    assert set(items[0]) == {"action", "instance_uuid", "request_id", "user_id",
                             "project_id", "start_time", "message"}
    assert items[0]["instance_uuid"] == server["id"]
    assert "updated_at" in actions(api, demo_token, server["id"], "2.58")["instanceActions"][0]


def test_event_fields_by_role_and_version(api: Api, demo_token: str, admin_token: str,
                                          server: dict) -> None:
    assert "events" not in action(api, demo_token, server["id"], "req-test-0", "2.50")
    member = action(api, demo_token, server["id"], "req-test-0", "2.51")["events"]
    assert member == [{"event": "compute_stop_instance", "start_time": member[0]["start_time"],
                       "finish_time": None, "result": "Error"}]
    member = action(api, demo_token, server["id"], "req-test-0", "2.84")["events"][0]
    assert "host" not in member and "details" not in member and "traceback" not in member
    assert len(member["hostId"]) == 56
    admin = action(api, admin_token, server["id"], "req-test-0", "2.1")["events"][0]
    assert admin["traceback"] == "Traceback: boom" and "host" not in admin
    admin = action(api, admin_token, server["id"], "req-test-0", "2.62")["events"][0]
    assert admin["host"] == "c01" and "details" not in admin
    admin = action(api, admin_token, server["id"], "req-test-0", "2.84")["events"][0]
    assert admin["details"] == "guest did not stop"
    assert admin["hostId"] == member["hostId"]  # one host, one project: one hash


def test_unknown_action_and_other_projects(api: Api, demo_token: str, admin_token: str,
                                           server: dict) -> None:
    r = call(api, "GET", f"/servers/{server['id']}/os-instance-actions/req-nope", demo_token,
             status=404)
    assert fault(r) == "Action req-nope not found"
    theirs = boot(api, admin_token, "not-yours")
    call(api, "GET", f"/servers/{theirs['id']}/os-instance-actions", demo_token, status=404)
    call(api, "DELETE", f"/servers/{theirs['id']}", admin_token, status=204)
    wait_gone(api, admin_token, theirs["id"])


def test_paging_and_time_filters_from_2_58(api: Api, demo_token: str, server: dict) -> None:
    sid = server["id"]
    page = actions(api, demo_token, sid, "2.58", "?limit=1")
    assert [a["action"] for a in page["instanceActions"]] == ["start"]
    assert "marker=req-test-1" in page["links"][0]["href"]
    rest = actions(api, demo_token, sid, "2.58", "?marker=req-test-1")["instanceActions"]
    assert [a["action"] for a in rest] == ["stop", "create"]
    call(api, "GET", f"/servers/{sid}/os-instance-actions?marker=req-nope", demo_token,
         "2.58", status=400)
    since = actions(api, demo_token, sid, "2.58", "?changes-since=2030-01-02T00:00:00Z")
    assert [a["action"] for a in since["instanceActions"]] == ["start"]
    call(api, "GET", f"/servers/{sid}/os-instance-actions?changes-before=2030-01-02", demo_token,
         "2.58", status=400)  # changes-before arrives in 2.66
    before = actions(api, demo_token, sid, "2.66",
                     "?changes-since=2029-12-31T00:00:00Z&changes-before=2030-01-01T12:00:00Z")
    assert [a["action"] for a in before["instanceActions"]] == ["stop"]
    r = call(api, "GET", f"/servers/{sid}/os-instance-actions?changes-since=2030-01-02"
             "&changes-before=2030-01-01", demo_token, "2.66", status=400)
    assert "changes-since must be less than or equal to changes-before" in fault(r)
    call(api, "GET", f"/servers/{sid}/os-instance-actions?changes-since=yesterday", demo_token,
         "2.58", status=400)
    # Before 2.58 the parameters are ignored.
    assert len(actions(api, demo_token, sid, "2.57", "?limit=1")["instanceActions"]) == 3


def test_deleted_servers_actions_readable_from_2_21(api: Api, demo_token: str) -> None:
    gone = boot(api, demo_token, "short-lived")
    wait_status(api, demo_token, gone["id"], {"ACTIVE"})
    call(api, "DELETE", f"/servers/{gone['id']}", demo_token, status=204)
    wait_gone(api, demo_token, gone["id"])
    call(api, "GET", f"/servers/{gone['id']}/os-instance-actions", demo_token, "2.20",
         status=404)
    names = [a["action"] for a in actions(api, demo_token, gone["id"], "2.21")[
        "instanceActions"]]
    assert names == ["delete", "create"]


# -- os-migrations -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def migrations(cloud: InProcessCloud, server: dict) -> list[str]:
    assert cloud.cloud is not None
    rows = [Migration(instance_id=server["id"], migration_type="resize", status="finished",
                      source_compute="c01", dest_compute="c02", source_node="c01",
                      dest_node="c02", old_flavor_id="1", new_flavor_id="2", user_id="u1",
                      project_id="p1", created_at=dt.datetime(2030, 1, 1),
                      updated_at=dt.datetime(2030, 1, 1)),
            Migration(instance_id=server["id"], migration_type="live-migration",
                      status="running", source_compute="c02", dest_compute="c01",
                      old_flavor_id="custom", user_id="u2", project_id="p2",
                      created_at=dt.datetime(2030, 1, 2), updated_at=dt.datetime(2030, 1, 2))]
    with cloud.cloud.db.session() as s:
        s.add_all(rows)
        s.flush()
        return [m.uuid for m in rows]


def migration_list(api: Api, token: str, mv: str = "2.1", query: str = "") -> dict[str, Any]:
    return dict(call(api, "GET", f"/os-migrations{query}", token, mv, status=200).json())


def test_migration_shapes_per_microversion(api: Api, admin_token: str,
                                           migrations: list[str]) -> None:
    old = migration_list(api, admin_token)["migrations"]
    assert [m["status"] for m in old] == ["finished", "running"]
    assert set(old[0]) == {"id", "instance_uuid", "status", "source_compute", "source_node",
                           "dest_compute", "dest_node", "dest_host", "old_instance_type_id",
                           "new_instance_type_id", "created_at", "updated_at"}
    assert (old[0]["old_instance_type_id"], old[1]["old_instance_type_id"]) == (1, None)
    v223 = migration_list(api, admin_token, "2.23")["migrations"]
    live = next(m for m in v223 if m["migration_type"] == "live-migration")
    assert live["links"][0]["href"].endswith(
        f"/servers/{live['instance_uuid']}/migrations/{live['id']}")
    assert "links" not in next(m for m in v223 if m["migration_type"] == "resize")
    v259 = migration_list(api, admin_token, "2.59")["migrations"]
    assert [m["uuid"] for m in v259] == migrations[::-1]  # newest first from 2.59
    assert "user_id" not in v259[0]
    v280 = migration_list(api, admin_token, "2.80")["migrations"]
    assert (v280[0]["user_id"], v280[0]["project_id"]) == ("u2", "p2")


def test_migration_filters_and_paging(api: Api, admin_token: str, migrations: list[str]
                                      ) -> None:
    def statuses(mv: str, query: str) -> list[str]:
        return [m["status"] for m in migration_list(api, admin_token, mv, query)["migrations"]]

    assert statuses("2.1", "?host=c01") == ["finished", "running"]
    assert statuses("2.1", "?source_compute=c02") == ["running"]
    assert statuses("2.1", "?status=finished") == ["finished"]
    assert statuses("2.1", "?migration_type=live-migration") == ["running"]
    assert statuses("2.80", "?user_id=u1") == ["finished"]
    assert statuses("2.80", "?project_id=p2") == ["running"]
    assert statuses("2.59", "?changes-since=2030-01-01T12:00:00") == ["running"]
    assert statuses("2.66", "?changes-before=2030-01-01T12:00:00") == ["finished"]
    page = migration_list(api, admin_token, "2.59", "?limit=1")
    assert page["migrations_links"][0]["href"].endswith(f"marker={migrations[1]}")
    assert statuses("2.59", f"?marker={migrations[1]}") == ["finished"]
    call(api, "GET", "/os-migrations?marker=nope", admin_token, "2.59", status=400)
    call(api, "GET", "/os-migrations?user_id=u1", admin_token, "2.79", status=400)
    call(api, "GET", "/os-migrations?bogus=1", admin_token, "2.59", status=400)


def test_migrations_are_admin_only(api: Api, demo_token: str) -> None:
    call(api, "GET", "/os-migrations", demo_token, status=403)
