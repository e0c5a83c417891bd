"""Multi-host workflows: kill the conductor at every step, fail every driver step.

The invariants checked after each case: the server is never lost, never runs on
two hosts, its source disk is only removed after the destination is confirmed,
and claims on every host add up to what the instances hold.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gureum.compute import states
from gureum.compute.models import Allocation, ComputeNode, Instance, Migration
from gureum.conductor.service import Conductor
from gureum.config import ConductorSettings
from gureum.virt.driver import DriverError
from gureum.virt.fake import FakeDriver
from tests.compute_helpers import MV, boot, wait_status
from tests.harness import Api, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def wf_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(tmp_path_factory.mktemp("wf"), compute={
        "shutdown_timeout": 1.0, "shutdown_retry_interval": 0.2})
    c = InProcessCloud(settings, hosts=3).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def wapi(wf_cloud: InProcessCloud) -> Iterator[Api]:
    api = Api(wf_cloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def admin(wapi: Api, wf_cloud: InProcessCloud) -> str:
    return wapi.token("admin", wf_cloud.admin_password, "admin")


def drivers(cloud: InProcessCloud) -> dict[str, FakeDriver]:
    assert cloud.cloud is not None
    out = {}
    for agent in cloud.cloud.agents:
        assert isinstance(agent.driver, FakeDriver)
        out[agent.host] = agent.driver
    return out


def running_copies(cloud: InProcessCloud, guest_id: str) -> list[str]:
    return [host for host, d in drivers(cloud).items()
            if guest_id in d.guests and d.guests[guest_id].power_state == states.RUNNING
            and not d.guests[guest_id].incoming]


def copies(cloud: InProcessCloud, guest_id: str) -> list[str]:
    return sorted(host for host, d in drivers(cloud).items() if guest_id in d.guests)


def restart_conductor(cloud: InProcessCloud, crash_after: str = "") -> None:
    """Stop the conductor (as a killed process would stop) and start a fresh one."""
    assert cloud.cloud is not None
    old = cloud.cloud.conductor
    cloud.run(old.stop())
    settings = dataclasses.replace(cloud.settings,
                                   conductor=ConductorSettings(crash_after=crash_after))
    new = Conductor(settings, cloud.cloud.db, cloud.cloud.bus)
    cloud.run(new.start())
    cloud.cloud.conductor = new


def db_get(cloud: InProcessCloud, fn: Any) -> Any:
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        return fn(s)


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def last_migration(cloud: InProcessCloud, instance_id: str) -> Migration:
    return db_get(cloud, lambda s: s.scalar(select(Migration).where(
        Migration.instance_id == instance_id).order_by(Migration.id.desc()).limit(1)))


def check_claims(cloud: InProcessCloud) -> None:
    """Each node's usage equals the sum of its allocations (nothing leaked)."""
    def check(s: Any) -> None:
        for node in s.scalars(select(ComputeNode)):
            allocs = s.scalars(select(Allocation).where(Allocation.node_id == node.id)).all()
            assert node.memory_mb_used == sum(a.memory_mb for a in allocs), node.host
            assert node.vcpus_used == sum(a.vcpus for a in allocs), node.host
        live = {i.id for i in s.scalars(select(Instance).where(Instance.deleted.is_(False)))}
        migs = {m.uuid for m in s.scalars(select(Migration))}
        for a in s.scalars(select(Allocation)):
            assert a.consumer_id in live | migs, f"leaked allocation {a.consumer_id}"
    db_get(cloud, check)


def action(api: Api, token: str, server_id: str, body: dict[str, Any],
           version: str = "2.100") -> Any:
    r = api.request("POST", f"/compute/v2.1/servers/{server_id}/action", token, json=body,
                    headers={"OpenStack-API-Version": f"compute {version}"})
    assert r.status_code in (200, 202, 204), r.text
    return r


def fresh_server(api: Api, token: str, name: str) -> dict[str, Any]:
    server = boot(api, token, name)
    return wait_status(api, token, server["id"], {"ACTIVE"})


def delete(api: Api, token: str, server_id: str) -> None:
    api.request("DELETE", f"/compute/v2.1/servers/{server_id}", token, headers=MV)


RESIZE_STEPS = ["claim", "preflight", "power_off", "transfer", "finish"]


@pytest.mark.parametrize("step", RESIZE_STEPS)
def test_resize_survives_conductor_crash_at_every_step(wf_cloud: InProcessCloud, wapi: Api,
                                                       admin: str, step: str) -> None:
    server = fresh_server(wapi, admin, f"crash-resize-{step}")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    restart_conductor(wf_cloud, crash_after=f"resize:{step}")
    try:
        action(wapi, admin, sid, {"resize": {"flavorRef": "42"}})
        wait_for(lambda: last_migration(wf_cloud, sid) is not None
                 and last_migration(wf_cloud, sid).step == step, what=f"step {step}")
        time.sleep(0.2)  # the crashed workflow does nothing more
        assert len(running_copies(wf_cloud, sid)) <= 1
        assert source in copies(wf_cloud, sid)  # the source disk is still there
    finally:
        restart_conductor(wf_cloud)  # a fresh conductor resumes the workflow
    done = wait_status(wapi, admin, sid, {"VERIFY_RESIZE"})
    dest = done["OS-EXT-SRV-ATTR:host"]
    assert dest != source
    assert running_copies(wf_cloud, sid) == [dest]
    assert source in copies(wf_cloud, sid)  # kept until confirmed
    action(wapi, admin, sid, {"confirmResize": None})
    confirmed = wait_status(wapi, admin, sid, {"ACTIVE"})
    assert confirmed["flavor"]["original_name"] == "m1.nano"
    assert copies(wf_cloud, sid) == [dest]
    assert last_migration(wf_cloud, sid).status == "confirmed"
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


@pytest.mark.parametrize("failing", ["preflight", "power_off", "import_disks",
                                     "finish_migration"])
def test_resize_driver_failure_rolls_back(wf_cloud: InProcessCloud, wapi: Api, admin: str,
                                          failing: str) -> None:
    server = fresh_server(wapi, admin, f"fail-resize-{failing}")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    for d in drivers(wf_cloud).values():
        d.inject(failing, f"{failing} broke", times=None)
    try:
        action(wapi, admin, sid, {"resize": {"flavorRef": "42"}})
        wait_for(lambda: last_migration(wf_cloud, sid).status == "error", what="rollback")
    finally:
        for d in drivers(wf_cloud).values():
            d.clear_failures()
    after = wait_status(wapi, admin, sid, {"ACTIVE"})
    assert after["OS-EXT-SRV-ATTR:host"] == source
    assert after["OS-EXT-STS:power_state"] == states.RUNNING
    assert running_copies(wf_cloud, sid) == [source]
    assert copies(wf_cloud, sid) == [source]  # no copy left on the destination
    assert after["flavor"]["original_name"] == "m1.tiny"
    fault = db_get(wf_cloud, lambda s: s.get(Instance, sid).fault)
    assert f"{failing} broke" in fault["message"]
    events = wapi.request("GET", f"/compute/v2.1/servers/{sid}/os-instance-actions", admin,
                          headers=MV).json()["instanceActions"]
    resize = next(a for a in events if a["action"] == "resize")
    detail = wapi.request("GET", f"/compute/v2.1/servers/{sid}/os-instance-actions/"
                          f"{resize['request_id']}", admin, headers=MV).json()
    assert any(e["result"] == "Error" for e in detail["instanceAction"]["events"])
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_revert_restarts_the_untouched_source(wf_cloud: InProcessCloud, wapi: Api,
                                              admin: str) -> None:
    server = fresh_server(wapi, admin, "revert-me")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    action(wapi, admin, sid, {"resize": {"flavorRef": "42"}})
    wait_status(wapi, admin, sid, {"VERIFY_RESIZE"})
    action(wapi, admin, sid, {"revertResize": None})
    after = wait_status(wapi, admin, sid, {"ACTIVE"})
    assert after["OS-EXT-SRV-ATTR:host"] == source
    assert after["flavor"]["original_name"] == "m1.tiny"
    assert running_copies(wf_cloud, sid) == [source]
    assert copies(wf_cloud, sid) == [source]
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_stopped_server_resizes_and_stays_stopped(wf_cloud: InProcessCloud, wapi: Api,
                                                  admin: str) -> None:
    server = fresh_server(wapi, admin, "stopped-resize")
    sid = server["id"]
    action(wapi, admin, sid, {"os-stop": None})
    wait_status(wapi, admin, sid, {"SHUTOFF"})
    action(wapi, admin, sid, {"migrate": None})
    wait_status(wapi, admin, sid, {"VERIFY_RESIZE"})
    assert running_copies(wf_cloud, sid) == []
    action(wapi, admin, sid, {"confirmResize": None})
    wait_status(wapi, admin, sid, {"SHUTOFF"})
    delete(wapi, admin, sid)


LIVE_STEPS = ["claim", "preflight", "bind", "prepare", "migrate", "post"]


@pytest.mark.parametrize("step", LIVE_STEPS)
def test_live_migration_survives_conductor_crash(wf_cloud: InProcessCloud, wapi: Api,
                                                 admin: str, step: str) -> None:
    server = fresh_server(wapi, admin, f"crash-live-{step}")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    restart_conductor(wf_cloud, crash_after=f"live-migration:{step}")
    try:
        action(wapi, admin, sid, {"os-migrateLive": {"host": None,
                                                     "block_migration": "auto"}})
        wait_for(lambda: last_migration(wf_cloud, sid) is not None
                 and last_migration(wf_cloud, sid).step == step, what=f"step {step}")
        time.sleep(0.2)
        assert len(running_copies(wf_cloud, sid)) == 1  # the guest never stops running
    finally:
        restart_conductor(wf_cloud)
    after = wait_status(wapi, admin, sid, {"ACTIVE"})
    assert after["OS-EXT-SRV-ATTR:host"] != source
    assert running_copies(wf_cloud, sid) == [after["OS-EXT-SRV-ATTR:host"]]
    assert last_migration(wf_cloud, sid).status == "completed"
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_live_migration_failure_keeps_guest_on_source(wf_cloud: InProcessCloud, wapi: Api,
                                                      admin: str) -> None:
    server = fresh_server(wapi, admin, "live-fail")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    drivers(wf_cloud)[source].inject("live_migrate", "network blip", times=1)
    action(wapi, admin, sid, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    wait_for(lambda: last_migration(wf_cloud, sid).status == "error", what="error status")
    after = wait_status(wapi, admin, sid, {"ACTIVE"})
    assert after["OS-EXT-SRV-ATTR:host"] == source
    assert running_copies(wf_cloud, sid) == [source]
    assert copies(wf_cloud, sid) == [source]
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_live_migration_without_an_answer_looks_where_the_guest_runs(
        wf_cloud: InProcessCloud, wapi: Api, admin: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The source moved the guest but its answer was lost (not a MigrationFailed): the
    destination has the guest, so the move is recorded, never rolled back onto a source
    that no longer has it."""
    server = fresh_server(wapi, admin, "live-lost")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    driver = drivers(wf_cloud)[source]
    moved = driver.live_migrate

    async def answer_lost(guest_id: str, dest_uri: str, block_migration: bool) -> None:
        await moved(guest_id, dest_uri, block_migration)
        raise DriverError("the connection to the hypervisor dropped")
    monkeypatch.setattr(driver, "live_migrate", answer_lost)
    action(wapi, admin, sid, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    wait_for(lambda: last_migration(wf_cloud, sid).status in ("completed", "error"),
             what="the end of the move")
    after = wait_status(wapi, admin, sid, {"ACTIVE"})
    assert last_migration(wf_cloud, sid).status == "completed"
    assert after["OS-EXT-SRV-ATTR:host"] != source
    assert running_copies(wf_cloud, sid) == [after["OS-EXT-SRV-ATTR:host"]]
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_racing_actions_one_wins(wf_cloud: InProcessCloud, wapi: Api, admin: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sid = fresh_server(wapi, admin, "race")["id"]

    def stop() -> int:
        return wapi.request("POST", f"/compute/v2.1/servers/{sid}/action", admin,
                            json={"os-stop": None}, headers=MV).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda _: stop(), range(6)))
    assert codes.count(202) == 1, codes
    assert codes.count(409) == 5, codes
    wait_status(wapi, admin, sid, {"SHUTOFF"})
    delete(wapi, admin, sid)


def test_evacuate_needs_a_down_host_and_survives_crash(wf_cloud: InProcessCloud, wapi: Api,
                                                       admin: str) -> None:
    server = fresh_server(wapi, admin, "evac")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    r = wapi.request("POST", f"/compute/v2.1/servers/{sid}/action", admin,
                     json={"evacuate": {}}, headers=MV)
    assert r.status_code == 409 and "still in use" in r.text
    svc = wapi.request("GET", f"/compute/v2.1/os-services?host={source}", admin,
                       headers={"OpenStack-API-Version": "compute 2.53"}).json()["services"]
    svc_id = next(x["id"] for x in svc if x["binary"] == "nova-compute")
    down = wapi.request("PUT", f"/compute/v2.1/os-services/{svc_id}", admin,
                        json={"forced_down": True},
                        headers={"OpenStack-API-Version": "compute 2.53"})
    assert down.status_code == 200, down.text
    try:
        restart_conductor(wf_cloud, crash_after="evacuation:rebuild")
        action(wapi, admin, sid, {"evacuate": {}})
        wait_for(lambda: last_migration(wf_cloud, sid).step == "rebuild", what="rebuild")
        restart_conductor(wf_cloud)
        after = wait_status(wapi, admin, sid, {"ACTIVE"})
        dest = after["OS-EXT-SRV-ATTR:host"]
        assert dest != source
        # The dead host still "has" its copy; it is not running anywhere but on dest.
        assert dest in running_copies(wf_cloud, sid)
    finally:
        wapi.request("PUT", f"/compute/v2.1/os-services/{svc_id}", admin,
                     json={"forced_down": False},
                     headers={"OpenStack-API-Version": "compute 2.53"})
    # The source agent comes back: it destroys its stale copy instead of starting it.
    assert wf_cloud.cloud is not None
    agent = next(a for a in wf_cloud.cloud.agents if a.host == source)
    wf_cloud.run(agent.reconcile())
    assert copies(wf_cloud, sid) == [dest]
    assert last_migration(wf_cloud, sid).status == "completed"
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_resize_is_confirmed_automatically_after_the_window(wf_cloud: InProcessCloud,
                                                            wapi: Api, admin: str) -> None:
    assert wf_cloud.cloud is not None
    old = wf_cloud.cloud.conductor
    wf_cloud.run(old.stop())
    settings = dataclasses.replace(wf_cloud.settings, compute=dataclasses.replace(
        wf_cloud.settings.compute, resize_confirm_window=0.5))
    auto = Conductor(settings, wf_cloud.cloud.db, wf_cloud.cloud.bus)
    wf_cloud.run(auto.start())
    wf_cloud.cloud.conductor = auto
    try:
        sid = fresh_server(wapi, admin, "auto-confirm")["id"]
        action(wapi, admin, sid, {"resize": {"flavorRef": "42"}})
        wait_for(lambda: last_migration(wf_cloud, sid).status == "confirmed", timeout=30,
                 what="auto-confirm")
        after = wait_status(wapi, admin, sid, {"ACTIVE"})
        assert after["flavor"]["original_name"] == "m1.nano"
        assert len(copies(wf_cloud, sid)) == 1
    finally:
        restart_conductor(wf_cloud)
    delete(wapi, admin, sid)


def test_evacuate_leaves_a_stopped_server_stopped_at_2_95(wf_cloud: InProcessCloud,
                                                          wapi: Api, admin: str) -> None:
    server = fresh_server(wapi, admin, "evac-stopped")
    sid, source = server["id"], server["OS-EXT-SRV-ATTR:host"]
    action(wapi, admin, sid, {"os-stop": None})
    wait_status(wapi, admin, sid, {"SHUTOFF"})
    mv53 = {"OpenStack-API-Version": "compute 2.53"}
    svc = wapi.request("GET", f"/compute/v2.1/os-services?host={source}", admin,
                       headers=mv53).json()["services"]
    svc_id = next(x["id"] for x in svc if x["binary"] == "nova-compute")
    wapi.request("PUT", f"/compute/v2.1/os-services/{svc_id}", admin,
                 json={"forced_down": True}, headers=mv53)
    try:
        action(wapi, admin, sid, {"evacuate": {}}, version="2.95")
        after = wait_status(wapi, admin, sid, {"SHUTOFF"})
        assert after["OS-EXT-SRV-ATTR:host"] != source
        assert running_copies(wf_cloud, sid) == []
    finally:
        wapi.request("PUT", f"/compute/v2.1/os-services/{svc_id}", admin,
                     json={"forced_down": False}, headers=mv53)
    assert wf_cloud.cloud is not None
    agent = next(a for a in wf_cloud.cloud.agents if a.host == source)
    wf_cloud.run(agent.reconcile())
    assert copies(wf_cloud, sid) == [after["OS-EXT-SRV-ATTR:host"]]
    check_claims(wf_cloud)
    delete(wapi, admin, sid)


def test_backups_rotate(wf_cloud: InProcessCloud, wapi: Api, admin: str) -> None:
    sid = fresh_server(wapi, admin, "backed-up")["id"]
    made = []
    for i in range(3):
        r = action(wapi, admin, sid, {"createBackup": {
            "name": f"daily-{i}", "backup_type": "daily", "rotation": 2}})
        made.append(r.json()["image_id"])
        wait_status(wapi, admin, sid, {"ACTIVE"})
    wait_for(lambda: wapi.request("GET", f"/image/v2/images/{made[0]}", admin
                                  ).status_code == 404, what="rotation")
    for image_id in made[1:]:
        r = wapi.request("GET", f"/image/v2/images/{image_id}", admin)
        assert r.status_code == 200 and r.json()["image_type"] == "backup"
    delete(wapi, admin, sid)
