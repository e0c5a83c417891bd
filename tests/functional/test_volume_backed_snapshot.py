"""createImage of a server booted from a volume, as Nova does it: each of its volumes is
snapshotted (forced, they are in use) and the new image is a bucket of properties,
active at once with size 0: ``block_device_mapping`` (JSON bdm_v2 entries with source
snapshot, snapshot_id, volume_size, boot_index…), ``bdm_v2`` and ``root_device_name``.
Booting from that image makes new volumes from the snapshots, the root one first."""

from __future__ import annotations

import json
from typing import Any

from tests.compute_helpers import MV, image_id, wait_status
from tests.functional.volume_helpers import create_volume, req, wait_for
from tests.harness import Api, InProcessCloud


def _guest_devices(cloud: InProcessCloud, server_id: str) -> dict[str, str]:
    assert cloud.cloud is not None
    for agent in cloud.cloud.agents:
        if server_id in agent.driver.guests:  # type: ignore[attr-defined]
            return dict(agent.driver.volumes(server_id))  # type: ignore[attr-defined]
    return {}


def _create(api: Api, token: str, body: dict[str, Any]) -> str:
    r = api.request("POST", "/compute/v2.1/servers", token, json={"server": {
        "flavorRef": "1", "networks": "none", **body}}, headers=MV)
    assert r.status_code == 202, r.text
    return str(r.json()["server"]["id"])


def _attachments(api: Api, token: str, server_id: str) -> dict[str, str]:
    r = api.request("GET", f"/compute/v2.1/servers/{server_id}/os-volume_attachments",
                    token, headers=MV)
    assert r.status_code == 200, r.text
    return {a["device"]: a["volumeId"] for a in r.json()["volumeAttachments"]}


def test_snapshot_of_a_volume_backed_server_and_a_boot_from_it(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    root = create_volume(api, demo_token, name="bfv-root", size=1,
                         imageRef=image_id(api, demo_token))
    data = create_volume(api, demo_token, name="bfv-data", size=2)
    wait_for(api, demo_token, "volume", root["id"], "available")
    wait_for(api, demo_token, "volume", data["id"], "available")
    sid = _create(api, demo_token, {"name": "bfv-snap", "block_device_mapping_v2": [
        {"uuid": root["id"], "source_type": "volume", "destination_type": "volume",
         "boot_index": 0},
        {"uuid": data["id"], "source_type": "volume", "destination_type": "volume",
         "boot_index": -1, "device_name": "vdb", "delete_on_termination": True}]})
    wait_status(api, demo_token, sid, {"ACTIVE"})

    r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", demo_token,
                    json={"createImage": {"name": "bfv-image", "metadata": {"k": "v"}}},
                    headers=MV)
    assert r.status_code == 202, r.text
    image = api.request("GET", f"/image/v2/images/{r.json()['image_id']}",
                        demo_token).json()
    assert image["status"] == "active" and image["size"] == 0, image
    assert image["bdm_v2"] == "True" and image["root_device_name"] == "/dev/vda"
    assert image["k"] == "v" and image["image_type"] == "snapshot"
    mapping = sorted(json.loads(image["block_device_mapping"]),
                     key=lambda m: str(m["device_name"]))
    assert [(m["device_name"], m["boot_index"], m["source_type"], m["destination_type"],
             m["volume_size"], m["delete_on_termination"]) for m in mapping] == [
        ("/dev/vda", 0, "snapshot", "volume", 1, False),
        ("/dev/vdb", None, "snapshot", "volume", 2, True)]
    for m in mapping:
        snap = wait_for(api, demo_token, "snapshot", m["snapshot_id"], "available")
        assert snap is not None and snap["name"] == "snapshot for bfv-image"
    assert {wait_for(api, demo_token, "snapshot", m["snapshot_id"], "available")[
        "volume_id"] for m in mapping} == {root["id"], data["id"]}  # type: ignore[index]
    actions = api.request("GET", f"/compute/v2.1/servers/{sid}/os-instance-actions",
                          demo_token, headers=MV).json()["instanceActions"]
    assert actions[0]["action"] == "createImage"
    assert wait_status(api, demo_token, sid, {"ACTIVE"})["status"] == "ACTIVE"

    # Booting from the image: new volumes from the snapshots, the root one on /dev/vda.
    new = _create(api, demo_token, {"name": "from-bfv-image", "imageRef": image["id"]})
    shown = wait_status(api, demo_token, new, {"ACTIVE", "ERROR"})
    assert shown["status"] == "ACTIVE", shown.get("fault")
    assert shown["image"] == ""  # it boots from a volume
    attached = _attachments(api, demo_token, new)
    assert sorted(attached) == ["/dev/vda", "/dev/vdb"]
    assert not {root["id"], data["id"]} & set(attached.values())
    made = {dev: req(api, demo_token, "GET", f"/volumes/{vid}").json()["volume"]
            for dev, vid in attached.items()}
    assert made["/dev/vda"]["snapshot_id"] == mapping[0]["snapshot_id"]
    assert made["/dev/vdb"]["snapshot_id"] == mapping[1]["snapshot_id"]
    assert made["/dev/vdb"]["size"] == 2 and made["/dev/vda"]["status"] == "in-use"
    assert _guest_devices(cloud, new) == {attached["/dev/vda"]: "/dev/vda",
                                          attached["/dev/vdb"]: "/dev/vdb"}


def test_snapshot_of_a_volume_backed_server_in_a_state_that_cannot(
        api: Api, demo_token: str) -> None:
    root = create_volume(api, demo_token, name="bfv-root2", size=1,
                         imageRef=image_id(api, demo_token))
    wait_for(api, demo_token, "volume", root["id"], "available")
    sid = _create(api, demo_token, {"name": "bfv-snap2", "block_device_mapping_v2": [
        {"uuid": root["id"], "source_type": "volume", "destination_type": "volume",
         "boot_index": 0}]})
    wait_status(api, demo_token, sid, {"ACTIVE"})
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", demo_token,
                    json={"shelve": None}, headers=MV)
    assert r.status_code == 202, r.text
    wait_status(api, demo_token, sid, {"SHELVED", "SHELVED_OFFLOADED"})
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", demo_token,
                    json={"createImage": {"name": "nope"}}, headers=MV)
    assert r.status_code == 409, r.text
    r = req(api, demo_token, "GET", "/snapshots")
    assert [x for x in r.json()["snapshots"] if x["volume_id"] == root["id"]] == []
