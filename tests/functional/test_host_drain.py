"""Drain and restore of a compute host (POST /compute/v2.1/gureum-host-operations).

The conductor is stopped and a fresh one started in the middle of a drain (a
live migration in flight) and in the middle of its restore: each picks the
operation up from its rows and finishes it, every server ending on exactly one
host with its claims adding up. While one conductor runs an operation it holds
its lease (a second conductor leaves it alone). The API's answers to bad input, to a
non-admin and to a second operation on the same host are pinned too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.db import locks
from gureum.workflows.drain import LEASE_KIND
from tests.compute_helpers import MV, boot, show, wait_status
from tests.functional.test_workflows import check_claims, restart_conductor, running_copies
from tests.harness import Api, InProcessCloud, make_settings

PATH = "/compute/v2.1/gureum-host-operations"


@pytest.fixture(scope="module")
def dcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(tmp_path_factory.mktemp("drain"), compute={
        "fake_delays": "c01:live_migrate:1.0,c02:live_migrate:1.0"})
    c = InProcessCloud(settings, hosts=2).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def dapi(dcloud: InProcessCloud) -> Iterator[Api]:
    api = Api(dcloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def admin(dapi: Api, dcloud: InProcessCloud) -> str:
    return dapi.token("admin", dcloud.admin_password, "admin")


def post(api: Api, token: str, operation: dict[str, Any]) -> Any:
    return api.request("POST", PATH, token, json={"operation": operation}, headers=MV)


def get(api: Api, token: str, op_id: int) -> dict[str, Any]:
    r = api.request("GET", f"{PATH}/{op_id}", token, headers=MV)
    assert r.status_code == 200, r.text
    return dict(r.json()["operation"])


def wait_op(api: Api, token: str, op_id: int, predicate: Any, timeout: float = 30
            ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        op = get(api, token, op_id)
        if predicate(op):
            return op
        assert time.monotonic() < deadline, op
        time.sleep(0.05)


def other_conductor_claims(cloud: InProcessCloud, op_id: int) -> bool:
    """Whether a second conductor could take the operation (its lease is free)."""
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        if not locks.claim(s, LEASE_KIND, str(op_id), "conductor-2", 30):
            return False
        locks.release(s, LEASE_KIND, str(op_id), "conductor-2")
        return True


def test_bad_requests_are_refused_naming_the_field(dapi: Api, admin: str,
                                                   dcloud: InProcessCloud) -> None:
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "policy": "teleport"})
    assert r.status_code == 400 and "policy" in r.text, r.text
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "per_server": {"x": "fly"}})
    assert r.status_code == 400 and "per_server" in r.text, r.text
    # A misspelt server would be moved when the operator wanted it stopped.
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "per_server": {"nope": "stop"}})
    assert r.status_code == 400 and "no server 'nope' on host c01" in r.text, r.text
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "target": "c01"})
    assert r.status_code == 400 and "target" in r.text, r.text
    r = post(dapi, admin, {"host": "c01", "kind": "restore", "policy": "live"})
    assert r.status_code == 400 and "policy" in r.text, r.text
    r = post(dapi, admin, {"host": "c09", "kind": "drain"})
    assert r.status_code == 404, r.text
    r = dapi.request("GET", f"{PATH}/nope", admin, headers=MV)
    assert r.status_code == 404, r.text
    demo = dapi.token("demo", dcloud.demo_password, "demo")
    r = post(dapi, demo, {"host": "c01", "kind": "drain"})
    assert r.status_code == 403, r.text


def test_drain_and_restore_survive_a_conductor_restart(dapi: Api, admin: str,
                                                       dcloud: InProcessCloud) -> None:
    ids = []
    for name in ("d1", "d2", "d3"):
        server = boot(dapi, admin, name, availability_zone="nova:c01")
        ids.append(wait_status(dapi, admin, server["id"], {"ACTIVE"})["id"])
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "per_server": {"d2": "cold"}})
    assert r.status_code == 202, r.text
    op = r.json()["operation"]
    assert (op["kind"], op["status"], op["reason"]) == ("drain", "running", "maintenance")

    # One operation per host at a time.
    r = post(dapi, admin, {"host": "c01", "kind": "restore"})
    assert r.status_code == 409 and "pause it first" in r.text, r.text

    # The conductor goes away while d1's live migration is in flight.
    wait_op(dapi, admin, op["id"], lambda o: o["items"] and o["items"][0]["status"]
            == "running")
    assert not other_conductor_claims(dcloud, op["id"])  # one conductor runs it
    restart_conductor(dcloud)
    done = wait_op(dapi, admin, op["id"], lambda o: o["status"] in ("done", "failed"))
    assert done["status"] == "done", done
    assert [(i["name"], i["outcome"], i["dest"]) for i in done["items"]] == [
        ("d1", "live-migrated", "c02"), ("d2", "cold-migrated", "c02"),
        ("d3", "live-migrated", "c02")]
    for server_id in ids:
        server = show(dapi, admin, server_id)
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "c02")
        assert running_copies(dcloud, server_id) == ["c02"]
    check_claims(dcloud)
    wait_op(dapi, admin, op["id"], lambda o: other_conductor_claims(dcloud, o["id"]))

    r = post(dapi, admin, {"host": "c01", "kind": "restore"})
    assert r.status_code == 202, r.text
    restore = r.json()["operation"]
    assert restore["drain_id"] == op["id"] and len(restore["items"]) == 3
    wait_op(dapi, admin, restore["id"], lambda o: any(i["status"] == "running"
                                                      for i in o["items"]))
    restart_conductor(dcloud)
    back = wait_op(dapi, admin, restore["id"], lambda o: o["status"] in ("done", "failed"))
    assert back["status"] == "done", back
    for server_id in ids:
        server = show(dapi, admin, server_id)
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "c01")
        assert running_copies(dcloud, server_id) == ["c01"]
    check_claims(dcloud)
    assert get(dapi, admin, op["id"])["status"] == "restored"


def test_a_server_started_again_on_a_drained_host_is_stopped_by_the_next_run(
        dapi: Api, admin: str) -> None:
    server = boot(dapi, admin, "s1", availability_zone="nova:c01")
    wait_status(dapi, admin, server["id"], {"ACTIVE"})
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "policy": "stop"})
    assert r.status_code == 202, r.text
    op_id = r.json()["operation"]["id"]
    done = wait_op(dapi, admin, op_id, lambda o: o["status"] in ("done", "failed"))
    items = {i["name"]: (i["status"], i["outcome"]) for i in done["items"]}
    assert items["s1"] == ("done", "stopped"), items  # (d1-d3 are back on c01 too)
    wait_status(dapi, admin, server["id"], {"SHUTOFF"})

    r = dapi.request("POST", f"/compute/v2.1/servers/{server['id']}/action", admin,
                     json={"os-start": None}, headers=MV)
    assert r.status_code == 202, r.text
    wait_status(dapi, admin, server["id"], {"ACTIVE"})
    r = post(dapi, admin, {"host": "c01", "kind": "drain"})
    assert r.status_code == 202 and r.json()["operation"]["id"] == op_id, r.text
    wait_op(dapi, admin, op_id, lambda o: o["status"] == "done")
    assert show(dapi, admin, server["id"])["status"] == "SHUTOFF"

    r = post(dapi, admin, {"host": "c01", "kind": "restore"})
    assert r.status_code == 202, r.text
    wait_op(dapi, admin, r.json()["operation"]["id"], lambda o: o["status"] == "done")
    assert show(dapi, admin, server["id"])["status"] == "ACTIVE"


def test_a_claim_committed_before_its_step_was_saved_is_taken_up_from_the_row(
        dapi: Api, admin: str, dcloud: InProcessCloud) -> None:
    """Found by the restart above: a conductor stopped after the claim's transaction
    committed and before the step was saved resumed the live migration from the start,
    the claim saw its destination and returned without putting it into the run's state,
    and preflight failed with KeyError 'dest' (the move stuck, and the drain with it)."""
    from gureum.compute.models import Instance
    from gureum.workflows.engine import Run
    from gureum.workflows.live import LiveMigrationWorkflow
    from gureum.workflows.resize import start_migration

    server = boot(dapi, admin, "claimed", availability_zone="nova:c01")
    wait_status(dapi, admin, server["id"], {"ACTIVE"})
    assert dcloud.cloud is not None
    with dcloud.cloud.db.session() as s:
        inst = s.get(Instance, server["id"])
        assert inst is not None
        mig = start_migration(s, inst, "live-migration", None, None, "u", "p")
        mig.dest_compute = mig.dest_host = mig.dest_node = "c02"
        run = Run(mig.id, inst.id, "req-claimed", {})  # the state as saved: nothing yet
        wf = LiveMigrationWorkflow(dcloud.settings, dcloud.cloud.db, dcloud.cloud.bus)
        assert wf.claim_destination(s, run) is None  # nothing claimed twice
        assert (run.state["source"], run.state["dest"], run.state["dest_node"]) == (
            "c01", "c02", "c02")
        s.rollback()


def test_a_move_that_fails_is_reported_and_the_drain_goes_on(
        dapi: Api, admin: str, dcloud: InProcessCloud) -> None:
    from tests.functional.test_workflows import drivers

    first = boot(dapi, admin, "f1", availability_zone="nova:c01")
    second = boot(dapi, admin, "f2", availability_zone="nova:c01")
    for server in (first, second):
        wait_status(dapi, admin, server["id"], {"ACTIVE"})
    drivers(dcloud)["c02"].inject("preflight", "no room for it", times=1)
    r = post(dapi, admin, {"host": "c01", "kind": "drain", "target": "c02"})
    assert r.status_code == 202, r.text
    op_id = r.json()["operation"]["id"]
    ended = wait_op(dapi, admin, op_id, lambda o: o["status"] in ("done", "failed"))
    # (the servers of the tests before are on c01 too: each is moved the same way)
    assert ended["status"] == "failed"
    (failed,) = [i for i in ended["items"] if i["status"] == "failed"]
    assert "no room for it" in failed["message"], failed
    assert all(i["status"] == "done" for i in ended["items"] if i is not failed)
    assert show(dapi, admin, failed["instance_id"])["OS-EXT-SRV-ATTR:host"] == "c01"
    assert {first["id"], second["id"]} <= {i["instance_id"] for i in ended["items"]}

    r = post(dapi, admin, {"host": "c01", "kind": "drain"})  # again: the same drain
    assert r.status_code == 202 and r.json()["operation"]["id"] == op_id, r.text
    ended = wait_op(dapi, admin, op_id, lambda o: o["status"] in ("done", "failed"))
    assert ended["status"] == "done", ended
    assert show(dapi, admin, failed["instance_id"])["OS-EXT-SRV-ATTR:host"] == "c02"
    check_claims(dcloud)
