"""The volume manager after a crash: work left in a transitional state is run again
at restart; a failure leaves a clear error state with a message."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete

from gureum import outbox
from gureum.volume import models as m
from gureum.volume import types
from tests.functional.volume_helpers import create_volume, req, show, wait_for
from tests.harness import Api, InProcessCloud


def _stuck_volume(cloud: InProcessCloud, project_id: str, status: str, **values: object
                  ) -> str:
    """A volume as a conductor killed mid-work leaves it: a transitional status, no
    hand-over message left (the dead conductor had taken it)."""
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        t = types.default_type(s)
        v = m.Volume(project_id=project_id, user_id="u", name=f"stuck-{status}", size=1,
                     status=status, volume_type_id=t.id, **values)
        s.add(v)
        s.flush()
        s.execute(delete(outbox.OutboxMessage))
        return v.id


def _restart_manager(cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    cloud.run(cloud.cloud.conductor.volumes.recover())


def test_creation_interrupted_by_a_crash_is_finished_at_restart(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    made = create_volume(api, demo_token, name="probe")
    project = made["os-vol-tenant-attr:tenant_id"]
    volume_id = _stuck_volume(cloud, project, "creating")
    # a half-written file from the dead conductor is not the volume
    root = Path(cloud.settings.volume_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / f".volume-{volume_id}.qcow2.part").write_bytes(b"partial")
    _restart_manager(cloud)
    done = wait_for(api, demo_token, "volume", volume_id, ("available", "error"))
    assert done is not None and done["status"] == "available"
    assert not (root / f".volume-{volume_id}.qcow2.part").exists()


def test_extend_and_delete_interrupted_are_finished_at_restart(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    vol = create_volume(api, demo_token, name="grow-me")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        row = s.get(m.Volume, vol["id"])
        assert row is not None
        row.status = "extending"
        row.task = {"op": "extend", "new_size": 3}
    _restart_manager(cloud)
    grown = wait_for(api, demo_token, "volume", vol["id"], "available")
    assert grown is not None and grown["size"] == 3
    with cloud.cloud.db.session() as s:
        row = s.get(m.Volume, vol["id"])
        assert row is not None
        row.status = "deleting"
    _restart_manager(cloud)
    assert wait_for(api, demo_token, "volume", vol["id"], "deleted") is None


def test_failed_copy_leaves_error_with_a_message(api: Api, demo_token: str,
                                                 cloud: InProcessCloud) -> None:
    made = create_volume(api, demo_token, name="probe2")
    project = made["os-vol-tenant-attr:tenant_id"]
    # its source snapshot has no data: the copy fails
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        snap = m.Snapshot(volume_id=made["id"], project_id=project, size=1,
                          status="available", provider_location="snapshot-gone.qcow2")
        s.add(snap)
        s.flush()
        snap_id = snap.id
    volume_id = _stuck_volume(cloud, project, "creating", snapshot_id=snap_id)
    _restart_manager(cloud)
    failed = wait_for(api, demo_token, "volume", volume_id, ("available", "error"))
    assert failed is not None and failed["status"] == "error"
    r = req(api, demo_token, "GET", "/messages")
    messages = [x for x in r.json()["messages"] if x["resource_uuid"] == volume_id]
    assert messages and "snapshot" in messages[0]["user_message"]
    # an errored volume can be deleted
    assert req(api, demo_token, "DELETE", f"/volumes/{volume_id}").status_code == 202
    assert wait_for(api, demo_token, "volume", volume_id, "deleted") is None
    show(api, demo_token, made["id"])


def _restart_conductor(cloud: InProcessCloud, crash_after: str = "") -> None:
    """Stop the conductor (as a killed process would stop) and start a fresh one."""
    import dataclasses

    from gureum.conductor.service import Conductor

    assert cloud.cloud is not None
    cloud.run(cloud.cloud.conductor.stop())
    settings = dataclasses.replace(cloud.settings, conductor=dataclasses.replace(
        cloud.settings.conductor, crash_after=crash_after))
    new = Conductor(settings, cloud.cloud.db, cloud.cloud.bus)
    cloud.run(new.start())
    cloud.cloud.conductor = new


def test_conductor_killed_after_each_copy_finishes_it_after_restart(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    """The data is written but the conductor dies before recording it: the volume (or
    snapshot, or image) stays in its transitional state, and a new conductor does the
    work again and records it — never a volume stuck, never one marked done without
    data."""
    import time

    from tests.functional import image_helpers as images

    image = images.active_image(api, demo_token, data=b"\3" * 8192, name="crash-src")
    vol = create_volume(api, demo_token, name="crash-base")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    try:
        _restart_conductor(cloud, "volume:*")
        made = create_volume(api, demo_token, imageRef=image["id"], name="crash-create")
        r = req(api, demo_token, "POST", "/snapshots",
                json={"snapshot": {"volume_id": vol["id"], "name": "crash-snap"}})
        snap_id = r.json()["snapshot"]["id"]
        time.sleep(1.0)  # the crashed work has run by now
        assert show(api, demo_token, made["id"])["status"] == "creating"
        assert req(api, demo_token, "GET", f"/snapshots/{snap_id}").json()[
            "snapshot"]["status"] == "creating"
    finally:
        _restart_conductor(cloud)
    done = wait_for(api, demo_token, "volume", made["id"], ("available", "error"))
    assert done is not None and done["status"] == "available" and done["bootable"] == "true"
    assert wait_for(api, demo_token, "snapshot", snap_id, ("available", "error")) == \
        wait_for(api, demo_token, "snapshot", snap_id, "available")


def test_volume_larger_than_the_pool_can_hold_fails(api: Api, admin_token: str) -> None:
    r = req(api, admin_token, "POST", "/volumes", json={"volume": {"size": 2**31 - 1,
                                                                   "name": "enormous"}})
    if r.status_code == 413:  # the admin project's gigabytes quota said it first
        projects = api.request("GET", "/identity/v3/projects?name=admin", admin_token)
        admin_pid = projects.json()["projects"][0]["id"]
        r = req(api, admin_token, "PUT", f"/os-quota-sets/{admin_pid}",
                json={"quota_set": {"gigabytes": -1}})
        assert r.status_code == 200, r.text
        r = req(api, admin_token, "POST", "/volumes", json={"volume": {
            "size": 2**31 - 1, "name": "enormous"}})
    assert r.status_code == 202, r.text
    failed = wait_for(api, admin_token, "volume", r.json()["volume"]["id"],
                      ("available", "error"))
    assert failed is not None and failed["status"] == "error"
    messages = req(api, admin_token, "GET", "/messages").json()["messages"]
    assert any("Insufficient free virtual space" in x["user_message"] for x in messages)


def test_work_leased_by_a_live_conductor_is_left_to_it_until_the_lease_expires(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    """Another conductor (distributed mode) holds the volume's copy: a restart's
    recovery leaves it alone; once that conductor stops renewing its lease (it died),
    this conductor's periodic look takes the copy over and finishes it."""
    import datetime as dt
    import time

    from sqlalchemy import select, update

    from gureum.db import locks, utcnow

    made = create_volume(api, demo_token, name="probe-lease")
    volume_id = _stuck_volume(cloud, made["os-vol-tenant-attr:tenant_id"], "creating")
    assert cloud.cloud is not None
    db = cloud.cloud.db
    with db.session() as s:
        assert locks.claim(s, "volume:volume", volume_id, "elsewhere/1/abcd", 3600)
    _restart_manager(cloud)
    time.sleep(1.5)  # several of the conductor's periodic looks (lease 2 s: every 0.7 s)
    assert show(api, demo_token, volume_id)["status"] == "creating"
    with db.session() as s:  # the other conductor is gone: its lease runs out
        assert not locks.claim(s, "volume:volume", volume_id, "third/2/ef01", 60)
        s.execute(update(locks.WorkClaim).where(locks.WorkClaim.ident == volume_id)
                  .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    done = wait_for(api, demo_token, "volume", volume_id, ("available", "error"))
    assert done is not None and done["status"] == "available"
    with db.session(write=False) as s:  # released once the outcome was written
        assert s.scalar(select(locks.WorkClaim).where(
            locks.WorkClaim.ident == volume_id)) is None


def test_work_leased_by_this_conductors_previous_run_is_resumed_at_once(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    """A lease held under the conductor's own name is its dead predecessor's (the bus
    serves one conductor per name): a restart takes the work up without waiting."""
    from gureum.db import locks

    made = create_volume(api, demo_token, name="probe-own-lease")
    volume_id = _stuck_volume(cloud, made["os-vol-tenant-attr:tenant_id"], "creating")
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        assert locks.claim(s, "volume:volume", volume_id, cloud.cloud.conductor.name, 3600)
    _restart_conductor(cloud)
    done = wait_for(api, demo_token, "volume", volume_id, ("available", "error"), timeout=10)
    assert done is not None and done["status"] == "available"
