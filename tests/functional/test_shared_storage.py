"""Shared storage is detected, never declared (S3, issue 7).

c01 and c02 of this cloud are given one instances directory (as two hosts
mounting one NFS export); c03 has its own. Nobody tells the cloud they share
it: each agent writes a marker file into its instances directory and reports
its name; a destination's preflight looks for the source's marker. So a live
migration c01 → c02 moves memory only and a resize c01 → c02 copies no disk,
while c03 gets the disks copied; when the markers are gone (the directory is
no longer the same), nothing is claimed to be shared any more.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gureum.compute.models import Instance
from gureum.virt.fake import MARKER_PREFIX
from tests.compute_helpers import boot, wait_status
from tests.functional.test_workflows import (
    action,
    check_claims,
    db_get,
    delete,
    drivers,
    last_migration,
    running_copies,
    wait_for,
)
from tests.harness import Api, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def nfs_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(tmp_path_factory.mktemp("nfs"), compute={
        "fake_shared_storage": "c01,c02", "shutdown_timeout": 1.0})
    c = InProcessCloud(settings, hosts=3).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def napi(nfs_cloud: InProcessCloud) -> Iterator[Api]:
    api = Api(nfs_cloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def admin(napi: Api, nfs_cloud: InProcessCloud) -> str:
    return napi.token("admin", nfs_cloud.admin_password, "admin")


def server_on(api: Api, token: str, name: str, host: str) -> str:
    server = boot(api, token, name, availability_zone=f"nova:{host}")
    return str(wait_status(api, token, server["id"], {"ACTIVE"})["id"])


def event_details(api: Api, token: str, sid: str, event: str) -> str:
    """The details of the server's last action's ``event`` (admins, 2.84)."""
    headers = {"OpenStack-API-Version": "compute 2.84"}
    base = f"/compute/v2.1/servers/{sid}/os-instance-actions"
    actions = api.request("GET", base, token, headers=headers).json()["instanceActions"]
    request_id = actions[0]["request_id"]
    shown = api.request("GET", f"{base}/{request_id}", token, headers=headers).json()
    (found,) = [e for e in shown["instanceAction"]["events"] if e["event"] == event]
    return str(found["details"])


def fault(cloud: InProcessCloud, sid: str) -> str:
    return str(db_get(cloud, lambda s: s.get(Instance, sid).fault["message"]))


def test_hosts_find_each_others_marker(nfs_cloud: InProcessCloud) -> None:
    d = drivers(nfs_cloud)
    assert d["c01"].instances_dir == d["c02"].instances_dir != d["c03"].instances_dir
    shared = d["c01"].instances_dir
    assert shared is not None
    markers = sorted(p.name for p in shared.glob(f"{MARKER_PREFIX}*"))
    assert markers == sorted(f"{MARKER_PREFIX}{d[h].marker}" for h in ("c01", "c02"))


def test_live_migration_moves_memory_only_between_hosts_sharing_storage(
        nfs_cloud: InProcessCloud, napi: Api, admin: str) -> None:
    sid = server_on(napi, admin, "shared-live", "c01")
    action(napi, admin, sid, {"os-migrateLive": {"host": "c02", "block_migration": "auto"}})
    wait_status(napi, admin, sid, {"ACTIVE"})
    mig = last_migration(nfs_cloud, sid)
    assert mig.status == "completed"
    assert mig.state["shared"] is True and mig.state["block"] is False
    assert running_copies(nfs_cloud, sid) == ["c02"]
    disk = drivers(nfs_cloud)["c02"].guests[sid].disks[0]
    assert Path(disk).is_file()  # the one disk, seen from both hosts
    # What the driver measured is in the record and in the event's details.
    assert isinstance(mig.state["downtime_ms"], int) and mig.state["downtime_ms"] >= 0
    assert "downtime_ms" in mig.state["figures"] and "event_details" not in mig.state
    assert f"downtime {mig.state['downtime_ms']} ms" in event_details(
        napi, admin, sid, "compute_live_migration")
    # Asking for a block migration between hosts sharing storage is refused.
    action(napi, admin, sid, {"os-migrateLive": {"host": "c01", "block_migration": True}})
    wait_for(lambda: last_migration(nfs_cloud, sid).status == "error", what="refusal")
    assert "shares the instances directory" in fault(nfs_cloud, sid)
    # To c03 (its own directory) the disk moves too.
    action(napi, admin, sid, {"os-migrateLive": {"host": "c03", "block_migration": "auto"}})
    wait_for(lambda: last_migration(nfs_cloud, sid).status in ("completed", "error"),
             what="move to c03")
    mig = last_migration(nfs_cloud, sid)
    assert (mig.status, mig.state["shared"], mig.state["block"]) == ("completed", False, True)
    check_claims(nfs_cloud)
    delete(napi, admin, sid)


def test_resize_copies_no_disk_between_hosts_sharing_storage(
        nfs_cloud: InProcessCloud, napi: Api, admin: str) -> None:
    sid = server_on(napi, admin, "shared-resize", "c01")
    action(napi, admin, sid, {"migrate": {"host": "c02"}}, version="2.56")
    wait_status(napi, admin, sid, {"VERIFY_RESIZE"})
    assert last_migration(nfs_cloud, sid).state["shared"] is True
    d = drivers(nfs_cloud)
    assert ("import_disks", sid) not in d["c02"].calls
    action(napi, admin, sid, {"confirmResize": None})
    wait_status(napi, admin, sid, {"ACTIVE"})
    assert running_copies(nfs_cloud, sid) == ["c02"]
    assert Path(d["c02"].guests[sid].disks[0]).is_file()  # confirm kept the shared disk
    delete(napi, admin, sid)


def test_without_the_markers_nothing_is_claimed_shared(
        nfs_cloud: InProcessCloud, napi: Api, admin: str) -> None:
    sid = server_on(napi, admin, "unshared", "c01")
    shared = drivers(nfs_cloud)["c01"].instances_dir
    assert shared is not None
    for marker in shared.glob(f"{MARKER_PREFIX}*"):
        marker.unlink()  # the directory is no longer known to be the same one
    action(napi, admin, sid, {"os-migrateLive": {"host": "c02", "block_migration": False}})
    wait_for(lambda: last_migration(nfs_cloud, sid).status == "error", what="refusal")
    assert "do not share the instances directory" in fault(nfs_cloud, sid)
    assert running_copies(nfs_cloud, sid) == ["c01"]
    delete(napi, admin, sid)
