"""Block Storage v3 over real HTTP: types, QoS, snapshots, clones, transfers,
the attachments API and upload to image."""

from __future__ import annotations

from tests.functional import image_helpers as images
from tests.functional.network_helpers import user_in_project
from tests.functional.volume_helpers import action, create_volume, req, show, wait_for
from tests.harness import Api


def test_types_with_extra_specs_and_private_access(api: Api, admin_token: str,
                                                  demo_token: str) -> None:
    r = req(api, admin_token, "POST", "/types", json={"volume_type": {
        "name": "fast", "description": "SSD", "extra_specs": {"speed": "high"}}})
    assert r.status_code == 200, r.text
    fast = r.json()["volume_type"]
    assert fast["extra_specs"] == {"speed": "high"} and fast["is_public"] is True
    r = req(api, admin_token, "POST", "/types", json={"volume_type": {"name": "fast"}})
    assert r.status_code == 409
    r = req(api, admin_token, "POST", f"/types/{fast['id']}/extra_specs",
            json={"extra_specs": {"x": "1"}})
    assert r.json()["extra_specs"] == {"x": "1"}
    r = req(api, demo_token, "GET", f"/types/{fast['id']}/extra_specs")
    assert r.json()["extra_specs"] == {"speed": "high", "x": "1"}
    assert req(api, demo_token, "POST", "/types",
               json={"volume_type": {"name": "mine"}}).status_code == 403
    # private type: invisible until the project gets access
    r = req(api, admin_token, "POST", "/types", json={"volume_type": {
        "name": "secret", "os-volume-type-access:is_public": False}})
    secret = r.json()["volume_type"]
    names = {t["name"] for t in req(api, demo_token, "GET", "/types").json()["volume_types"]}
    assert "fast" in names and "secret" not in names and "__DEFAULT__" in names
    create_volume(api, demo_token, 404, volume_type="secret")
    pid = api.request("GET", "/identity/v3/projects?name=demo",
                      admin_token).json()["projects"][0]["id"]
    r = req(api, admin_token, "POST", f"/types/{secret['id']}/action",
            json={"addProjectAccess": {"project": pid}})
    assert r.status_code == 202, r.text
    r = req(api, admin_token, "GET", f"/types/{secret['id']}/os-volume-type-access")
    assert r.json()["volume_type_access"] == [{"volume_type_id": secret["id"],
                                               "project_id": pid}]
    vol = create_volume(api, demo_token, volume_type="secret")
    assert vol["volume_type"] == "secret"
    # in use: not deletable; the default type never
    assert req(api, admin_token, "DELETE", f"/types/{secret['id']}").status_code == 400
    default = req(api, demo_token, "GET", "/types/default").json()["volume_type"]
    assert default["name"] == "__DEFAULT__"
    assert req(api, admin_token, "DELETE", f"/types/{default['id']}").status_code == 400
    # retype to the public type
    wait_for(api, demo_token, "volume", vol["id"], "available")
    action(api, demo_token, vol["id"], "os-retype", {"new_type": "fast"})
    assert show(api, demo_token, vol["id"])["volume_type"] == "fast"
    action(api, demo_token, vol["id"], "os-retype", {"new_type": "nope"}, 404)


def test_qos_specs_associate_with_a_type(api: Api, admin_token: str) -> None:
    r = req(api, admin_token, "POST", "/qos-specs", json={"qos_specs": {
        "name": "gold", "consumer": "front-end", "read_iops_sec": "1000"}})
    assert r.status_code == 200, r.text
    qos = r.json()["qos_specs"]
    assert qos["specs"] == {"read_iops_sec": "1000"} and qos["consumer"] == "front-end"
    t = req(api, admin_token, "POST", "/types",
            json={"volume_type": {"name": "gold-type"}}).json()["volume_type"]
    r = req(api, admin_token, "GET", f"/qos-specs/{qos['id']}/associate?vol_type_id={t['id']}")
    assert r.status_code == 202
    r = req(api, admin_token, "GET", f"/qos-specs/{qos['id']}/associations")
    assert r.json()["qos_associations"] == [
        {"association_type": "volume_type", "name": "gold-type", "id": t["id"]}]
    assert req(api, admin_token, "DELETE", f"/qos-specs/{qos['id']}").status_code == 400
    r = req(api, admin_token, "DELETE", f"/qos-specs/{qos['id']}?force=True")
    assert r.status_code == 202


def test_snapshots_and_volumes_made_from_them(api: Api, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="snap-src", size=1)
    wait_for(api, demo_token, "volume", vol["id"], "available")
    r = req(api, demo_token, "POST", "/snapshots", json={"snapshot": {
        "volume_id": vol["id"], "name": "s1", "metadata": {"a": "b"}}})
    assert r.status_code == 202, r.text
    snap = r.json()["snapshot"]
    done = wait_for(api, demo_token, "snapshot", snap["id"], "available")
    assert done is not None and done["size"] == 1 and done["metadata"] == {"a": "b"}
    r = req(api, demo_token, "GET", "/snapshots/detail")
    assert snap["id"] in [s["id"] for s in r.json()["snapshots"]]
    r = req(api, demo_token, "PUT", f"/snapshots/{snap['id']}",
            json={"snapshot": {"name": "s1b"}})
    assert r.json()["snapshot"]["name"] == "s1b"
    # a volume from the snapshot, and one smaller than it is refused
    body = create_volume(api, demo_token, 400, snapshot_id=snap["id"], size=0)
    assert "size" in body["badRequest"]["message"]
    from_snap = create_volume(api, demo_token, snapshot_id=snap["id"], size=2)
    ready = wait_for(api, demo_token, "volume", from_snap["id"], "available")
    assert ready is not None and ready["snapshot_id"] == snap["id"] and ready["size"] == 2
    # a clone
    clone = create_volume(api, demo_token, source_volid=vol["id"], size=1)
    ready = wait_for(api, demo_token, "volume", clone["id"], "available")
    assert ready is not None and ready["source_volid"] == vol["id"]
    body = create_volume(api, demo_token, 400, source_volid=vol["id"], size=0)
    # the source has a snapshot: delete needs cascade
    r = req(api, demo_token, "DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 400 and "snapshots" in r.text
    r = req(api, demo_token, "DELETE", f"/volumes/{vol['id']}?cascade=True")
    assert r.status_code == 202
    assert wait_for(api, demo_token, "volume", vol["id"], "deleted") is None
    assert req(api, demo_token, "GET", f"/snapshots/{snap['id']}").status_code == 404


def test_snapshot_of_in_use_volume_needs_force(api: Api, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="busy")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    action(api, demo_token, vol["id"], "os-attach",
           {"instance_uuid": "6a0c1d6e-0000-4000-8000-000000000099", "mountpoint": "/dev/vdc"})
    r = req(api, demo_token, "POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    assert r.status_code == 400 and "in-use" in r.text
    r = req(api, demo_token, "POST", "/snapshots", json={"snapshot": {
        "volume_id": vol["id"], "force": True}})
    assert r.status_code == 202, r.text
    snap = r.json()["snapshot"]
    wait_for(api, demo_token, "snapshot", snap["id"], "available")
    assert req(api, demo_token, "DELETE", f"/snapshots/{snap['id']}").status_code == 202
    assert wait_for(api, demo_token, "snapshot", snap["id"], "deleted") is None


def test_transfer_to_another_project(api: Api, admin_token: str, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="gift")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    r = req(api, demo_token, "POST", "/volume-transfers", json={"transfer": {
        "volume_id": vol["id"], "name": "t1"}})
    assert r.status_code == 202, r.text
    transfer = r.json()["transfer"]
    assert transfer["auth_key"] and transfer["volume_id"] == vol["id"]
    assert show(api, demo_token, vol["id"])["status"] == "awaiting-transfer"
    r = req(api, demo_token, "GET", "/volume-transfers")
    assert [t["id"] for t in r.json()["transfers"]] == [transfer["id"]]
    other = user_in_project(api, admin_token, "vol-receiver", "vol-receiver-project")
    r = req(api, other, "POST", f"/volume-transfers/{transfer['id']}/accept",
            json={"accept": {"auth_key": "wrong"}})
    assert r.status_code == 400 and "auth key" in r.text
    r = req(api, other, "POST", f"/volume-transfers/{transfer['id']}/accept",
            json={"accept": {"auth_key": transfer["auth_key"]}})
    assert r.status_code == 202, r.text
    mine = show(api, other, vol["id"])
    assert mine["status"] == "available"
    show(api, demo_token, vol["id"], 404)


def test_attachments_api(api: Api, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="att-api")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    server = "6a0c1d6e-0000-4000-8000-000000000042"
    r = req(api, demo_token, "POST", "/attachments", json={"attachment": {
        "volume_uuid": vol["id"], "instance_uuid": server}})
    assert r.status_code == 200, r.text
    a = r.json()["attachment"]
    assert a["status"] == "reserved" and a["instance"] == server
    assert show(api, demo_token, vol["id"])["status"] == "reserved"
    r = req(api, demo_token, "PUT", f"/attachments/{a['id']}", json={"attachment": {
        "connector": {"host": "c01", "mountpoint": "/dev/vdb"}}})
    assert r.status_code == 200, r.text
    info = r.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "file" and info["data"]["volume_id"] == vol["id"]
    r = req(api, demo_token, "POST", f"/attachments/{a['id']}/action",
            json={"os-complete": a["id"]})
    assert r.status_code == 204, r.text
    shown = show(api, demo_token, vol["id"])
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server
    r = req(api, demo_token, "GET", f"/attachments?volume_id={vol['id']}")
    assert [x["id"] for x in r.json()["attachments"]] == [a["id"]]
    r = req(api, demo_token, "DELETE", f"/attachments/{a['id']}")
    assert r.status_code == 200 and r.json()["attachments"] == []
    assert show(api, demo_token, vol["id"])["status"] == "available"
    assert req(api, demo_token, "GET", "/attachments", version="3.20").status_code == 406


def test_upload_to_image(api: Api, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="to-image")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    r = action(api, demo_token, vol["id"], "os-volume_upload_image",
               {"image_name": "from-volume", "disk_format": "qcow2"})
    image_id = r.json()["os-volume_upload_image"]["image_id"]
    wait_for(api, demo_token, "volume", vol["id"], "available")
    image = images.show(api, demo_token, image_id)
    assert image["status"] == "active" and image["disk_format"] == "qcow2"
    assert image["virtual_size"] == 1 << 30


def test_revert_to_latest_snapshot(api: Api, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="revert-me")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    snaps = []
    for name in ("r1", "r2"):
        r = req(api, demo_token, "POST", "/snapshots",
                json={"snapshot": {"volume_id": vol["id"], "name": name}})
        snaps.append(r.json()["snapshot"]["id"])
        wait_for(api, demo_token, "snapshot", snaps[-1], "available")
    action(api, demo_token, vol["id"], "revert", {"snapshot_id": snaps[0]}, 400)
    action(api, demo_token, vol["id"], "revert", {"snapshot_id": snaps[1]})
    wait_for(api, demo_token, "volume", vol["id"], "available")
    assert wait_for(api, demo_token, "snapshot", snaps[1], "available") is not None


def test_disabled_volume_service_makes_new_volumes_fail(api: Api, admin_token: str,
                                                       demo_token: str) -> None:
    services = req(api, admin_token, "GET", "/os-services?binary=cinder-volume").json()
    host = services["services"][0]["host"]
    r = req(api, admin_token, "PUT", "/os-services/disable-log-reason", json={
        "host": host, "binary": "cinder-volume", "disabled_reason": "maintenance"})
    assert r.status_code == 200 and r.json()["disabled_reason"] == "maintenance"
    try:
        vol = create_volume(api, demo_token, name="nowhere")
        failed = wait_for(api, demo_token, "volume", vol["id"], "error")
        assert failed is not None
    finally:
        req(api, admin_token, "PUT", "/os-services/enable",
            json={"host": host, "binary": "cinder-volume"})
    r = req(api, admin_token, "GET", "/os-services?binary=cinder-volume")
    assert r.json()["services"][0]["status"] == "enabled"


def test_type_extra_specs_choose_backend_and_multiattach(api: Api, admin_token: str) -> None:
    demo_token = user_in_project(api, admin_token, "vol-specs", "vol-specs-project")
    for name, specs in (("on-ceph", {"volume_backend_name": "ceph"}),
                        ("on-file", {"volume_backend_name": "file"}),
                        ("shared-disk", {"multiattach": "<is> True"})):
        r = req(api, admin_token, "POST", "/types", json={"volume_type": {
            "name": name, "extra_specs": specs}})
        assert r.status_code == 200, r.text
    nowhere = create_volume(api, demo_token, volume_type="on-ceph")
    failed = wait_for(api, demo_token, "volume", nowhere["id"], ("error", "available"))
    assert failed is not None and failed["status"] == "error"
    here = create_volume(api, demo_token, volume_type="on-file")
    wait_for(api, demo_token, "volume", here["id"], "available")
    shared = create_volume(api, demo_token, volume_type="shared-disk")
    assert shared["multiattach"] is True


def test_retype_to_a_type_of_another_backend_is_refused(api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "vol-retype", "vol-retype-project")
    r = req(api, admin_token, "POST", "/types", json={"volume_type": {
        "name": "elsewhere", "extra_specs": {"volume_backend_name": "rbd-1"}}})
    assert r.status_code == 200, r.text
    vol = create_volume(api, token, name="stay")
    wait_for(api, token, "volume", vol["id"], "available")
    r = action(api, token, vol["id"], "os-retype", {"new_type": "elsewhere"}, 400)
    assert "migration policy" in r.text
    r = action(api, token, vol["id"], "os-retype", {"new_type": "elsewhere",
                                                    "migration_policy": "on-demand"}, 400)
    assert "No valid backend" in r.text


def test_upload_of_a_volume_made_from_an_image_keeps_its_properties(
        api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "vol-upload", "vol-upload-project")
    image = images.active_image(api, token, data=b"\4" * 2048, name="with-props",
                                hw_disk_bus="virtio")
    vol = create_volume(api, token, imageRef=image["id"], name="from-props")
    wait_for(api, token, "volume", vol["id"], "available")
    action(api, token, vol["id"], "os-set_image_metadata",
           {"metadata": {"os_hash_value": "x", "status": "queued", "os_glance_x": "y"}}, 200)
    r = action(api, token, vol["id"], "os-volume_upload_image", {"image_name": "again"})
    image_id = r.json()["os-volume_upload_image"]["image_id"]
    wait_for(api, token, "volume", vol["id"], "available")
    again = images.show(api, token, image_id)
    assert again["status"] == "active" and again["hw_disk_bus"] == "virtio"
