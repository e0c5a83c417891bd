"""Volume backups: create (from a volume and from its snapshot), list, restore into a
new and into an existing volume, incremental rules, delete, quota."""

from __future__ import annotations

from pathlib import Path

from tests.functional.network_helpers import user_in_project
from tests.functional.volume_helpers import create_volume, req, show, wait_for
from tests.harness import Api, InProcessCloud


def test_backup_and_restore(api: Api, admin_token: str, cloud: InProcessCloud) -> None:
    token = user_in_project(api, admin_token, "vol-backup", "vol-backup-project")
    vol = create_volume(api, token, name="precious", size=1)
    wait_for(api, token, "volume", vol["id"], "available")
    # incremental needs a full backup first
    r = req(api, token, "POST", "/backups", json={"backup": {
        "volume_id": vol["id"], "incremental": True}})
    assert r.status_code == 400 and "incremental" in r.text
    r = req(api, token, "POST", "/backups", json={"backup": {
        "volume_id": vol["id"], "name": "b1", "metadata": {"k": "v"}}})
    assert r.status_code == 202, r.text
    b1 = r.json()["backup"]
    assert show(api, token, vol["id"])["status"] in ("backing-up", "available")
    done = wait_for(api, token, "backup", b1["id"], ("available", "error"))
    assert done is not None and done["status"] == "available" and done["size"] == 1
    assert done["metadata"] == {"k": "v"}
    assert wait_for(api, token, "volume", vol["id"], "available") is not None
    assert (Path(cloud.settings.volume_backup_dir) / f"backup-{b1['id']}.qcow2").exists()
    r = req(api, token, "POST", "/backups", json={"backup": {
        "volume_id": vol["id"], "incremental": True, "name": "b2"}})
    b2 = r.json()["backup"]
    done = wait_for(api, token, "backup", b2["id"], ("available", "error"))
    assert done is not None and done["is_incremental"] is True
    # the full one has a dependent: not deletable first
    assert req(api, token, "DELETE", f"/backups/{b1['id']}").status_code == 400
    r = req(api, token, "GET", "/backups/detail")
    assert {b["name"] for b in r.json()["backups"]} == {"b1", "b2"}
    # restore into a new volume
    r = req(api, token, "POST", f"/backups/{b1['id']}/restore", json={"restore": {
        "name": "restored"}})
    assert r.status_code == 202, r.text
    new_id = r.json()["restore"]["volume_id"]
    restored = wait_for(api, token, "volume", new_id, ("available", "error_restoring"))
    assert restored is not None and restored["status"] == "available"
    assert restored["name"] == "restored"
    # restore into the original volume
    r = req(api, token, "POST", f"/backups/{b2['id']}/restore", json={"restore": {
        "volume_id": vol["id"]}})
    assert r.status_code == 202, r.text
    assert wait_for(api, token, "volume", vol["id"], "available") is not None
    assert wait_for(api, token, "backup", b2["id"], "available") is not None
    # a backup of a snapshot of an in-use-free volume
    r = req(api, token, "POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    snap = r.json()["snapshot"]
    wait_for(api, token, "snapshot", snap["id"], "available")
    r = req(api, token, "POST", "/backups", json={"backup": {
        "volume_id": vol["id"], "snapshot_id": snap["id"], "name": "from-snap"}})
    b3 = r.json()["backup"]
    done = wait_for(api, token, "backup", b3["id"], ("available", "error"))
    assert done is not None and done["status"] == "available"
    assert done["snapshot_id"] == snap["id"]
    # quota counts them
    pid = show(api, token, vol["id"])["os-vol-tenant-attr:tenant_id"]
    r = req(api, token, "GET", f"/os-quota-sets/{pid}?usage=True")
    assert r.json()["quota_set"]["backups"]["in_use"] == 3
    for b in (b2, b1, b3):
        assert req(api, token, "DELETE", f"/backups/{b['id']}").status_code == 202, b
        assert wait_for(api, token, "backup", b["id"], "deleted") is None
    assert not (Path(cloud.settings.volume_backup_dir) / f"backup-{b1['id']}.qcow2").exists()


def test_backup_of_in_use_volume_needs_force(api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "vol-backup2", "vol-backup2-project")
    vol = create_volume(api, token, name="busy-b")
    wait_for(api, token, "volume", vol["id"], "available")
    r = req(api, token, "POST", f"/volumes/{vol['id']}/action", json={"os-attach": {
        "instance_uuid": "6a0c1d6e-0000-4000-8000-0000000000bb", "mountpoint": "/dev/vdb"}})
    assert r.status_code == 202
    r = req(api, token, "POST", "/backups", json={"backup": {"volume_id": vol["id"]}})
    assert r.status_code == 400
    r = req(api, token, "POST", "/backups", json={"backup": {"volume_id": vol["id"],
                                                             "force": True}})
    assert r.status_code == 202, r.text
    done = wait_for(api, token, "backup", r.json()["backup"]["id"], ("available", "error"))
    assert done is not None and done["status"] == "available"
    assert show(api, token, vol["id"])["status"] == "in-use"


def test_admin_status_actions_of_snapshots_and_backups(api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "vol-admin-acts", "vol-admin-acts-project")
    vol = create_volume(api, token, name="acted-on", size=1)
    wait_for(api, token, "volume", vol["id"], "available")
    r = req(api, token, "POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    snap = r.json()["snapshot"]
    wait_for(api, token, "snapshot", snap["id"], "available")
    r = req(api, token, "POST", "/backups", json={"backup": {"volume_id": vol["id"]}})
    backup = r.json()["backup"]
    wait_for(api, token, "backup", backup["id"], ("available", "error"))
    for kind, ident in (("snapshot", snap["id"]), ("backup", backup["id"])):
        path = f"/{kind}s/{ident}/action"
        r = req(api, token, "POST", path, json={"os-reset_status": {"status": "error"}})
        assert r.status_code == 403, r.text
        assert f"volume_extension:{kind}_admin_actions:os-reset_status" in r.text
        r = req(api, admin_token, "POST", path, json={"os-reset_status": {"status": "error"}})
        assert r.status_code == 202, r.text
        assert req(api, token, "GET", f"/{kind}s/{ident}").json()[kind]["status"] == "error"
        r = req(api, admin_token, "POST", path, json={"os-reset_status": {"status": "bogus"}})
        assert r.status_code == 400 and "status" in r.text
        r = req(api, admin_token, "POST", path, json={"os-frobnicate": {}})
        assert r.status_code == 400
        assert r.json()["badRequest"]["message"] == "There is no such action: os-frobnicate"
        r = req(api, admin_token, "POST", path, json={"os-reset_status": {}, "x": {}})
        assert r.status_code == 400 and "exactly one action" in r.text
        r = req(api, admin_token, "POST", f"/{kind}s/6a0c1d6e-0000-4000-8000-00000000dead"
                "/action", json={"os-force_delete": {}})
        assert r.status_code == 404
        r = req(api, admin_token, "POST", path, json={"os-force_delete": {}})
        assert r.status_code == 202, r.text
        assert wait_for(api, token, kind, ident, "deleted") is None


def test_a_full_snapshot_page_links_to_the_next(api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "vol-snap-links", "vol-snap-links-project")
    vol = create_volume(api, token, name="linked", size=1)
    wait_for(api, token, "volume", vol["id"], "available")
    for _ in range(2):
        r = req(api, token, "POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
        wait_for(api, token, "snapshot", r.json()["snapshot"]["id"], "available")
    body = req(api, token, "GET", "/snapshots?limit=1").json()
    (link,) = body["snapshots_links"]
    assert link["rel"] == "next"
    assert link["href"].endswith(f"/snapshots?limit=1&marker={body['snapshots'][0]['id']}")
    assert "snapshots_links" not in req(api, token, "GET", "/snapshots?limit=5").json()
    assert "snapshots_links" not in req(api, token, "GET", "/snapshots").json()
