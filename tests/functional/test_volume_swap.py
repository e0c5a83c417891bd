"""Nova's swap volume (PUT os-volume_attachments/{old} naming another volume): an
admin's call answered 202; the host copies the disk onto the new volume and switches
the guest to it; the old volume is available again, the new one in-use on the same
device, and the server's attachment (its bdm_uuid kept) names it. Nova's refusals:
403 for a member, 404 for a volume not attached, 400 for a new volume that is
missing, not available or smaller, 409 for a server state that cannot swap. A host
that fails the copy leaves both volumes where they were."""

from __future__ import annotations

from typing import Any

from tests.compute_helpers import MV, boot, wait_status
from tests.functional.volume_helpers import create_volume, wait_for
from tests.harness import Api, InProcessCloud


def _guest_devices(cloud: InProcessCloud, server_id: str) -> dict[str, str]:
    assert cloud.cloud is not None
    for agent in cloud.cloud.agents:
        if server_id in agent.driver.guests:  # type: ignore[attr-defined]
            return dict(agent.driver.volumes(server_id))  # type: ignore[attr-defined]
    return {}


def _attachments(api: Api, token: str, server_id: str, version: str = "2.89"
                 ) -> list[dict[str, Any]]:
    r = api.request("GET", f"/compute/v2.1/servers/{server_id}/os-volume_attachments",
                    token, headers={"OpenStack-API-Version": f"compute {version}"})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["volumeAttachments"]
    return found


def _swap(api: Api, token: str, server_id: str, old: str, new: str) -> Any:
    return api.request("PUT", f"/compute/v2.1/servers/{server_id}/os-volume_attachments/{old}",
                       token, json={"volumeAttachment": {"volumeId": new}}, headers=MV)


def _volume(api: Api, token: str, name: str, size: int = 1) -> str:
    vol = create_volume(api, token, name=name, size=size)
    wait_for(api, token, "volume", vol["id"], "available")
    return str(vol["id"])


def test_swap_volume_moves_the_device_to_the_new_volume(
        api: Api, demo_token: str, admin_token: str, cloud: InProcessCloud) -> None:
    server = boot(api, demo_token, "swap-vm")
    sid = server["id"]
    wait_status(api, demo_token, sid, {"ACTIVE"})
    old, new = _volume(api, demo_token, "swap-old", 2), _volume(api, demo_token, "swap-new", 3)
    small, busy = _volume(api, demo_token, "swap-small"), _volume(api, demo_token, "swap-busy")
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments", demo_token,
                    json={"volumeAttachment": {"volumeId": old, "device": "/dev/vdc"}},
                    headers=MV)
    assert r.status_code == 200, r.text
    wait_for(api, demo_token, "volume", old, "in-use")
    (before,) = _attachments(api, demo_token, sid)

    assert _swap(api, demo_token, sid, old, new).status_code == 403  # admin only
    r = _swap(api, admin_token, sid, new, old)  # not attached to the server
    assert r.status_code == 404, r.text
    r = _swap(api, admin_token, sid, old, "8d1b1a54-0000-4000-8000-000000000000")
    assert r.status_code == 400 and "could not be found" in r.text, r.text
    boot_other = boot(api, demo_token, "swap-other")
    wait_status(api, demo_token, boot_other["id"], {"ACTIVE"})
    r = api.request("POST", f"/compute/v2.1/servers/{boot_other['id']}/os-volume_attachments",
                    demo_token, json={"volumeAttachment": {"volumeId": busy}}, headers=MV)
    assert r.status_code == 200, r.text
    wait_for(api, demo_token, "volume", busy, "in-use")
    r = _swap(api, admin_token, sid, old, busy)  # not available
    assert r.status_code == 400 and "available" in r.text, r.text
    r = _swap(api, admin_token, sid, old, small)  # 1 GB < 2 GB
    assert r.status_code == 400 and "same size or larger" in r.text, r.text

    r = _swap(api, admin_token, sid, old, new)
    assert r.status_code == 202, r.text
    wait_for(api, demo_token, "volume", old, "available")
    swapped = wait_for(api, demo_token, "volume", new, "in-use")
    assert swapped is not None
    (attachment,) = swapped["attachments"]
    assert attachment["server_id"] == sid and attachment["device"] == "/dev/vdc"
    (after,) = _attachments(api, demo_token, sid)
    assert after["volumeId"] == new and after["device"] == "/dev/vdc"
    assert after["bdm_uuid"] == before["bdm_uuid"]  # the same mapping, as Nova's
    assert after["attachment_id"] != before["attachment_id"]
    assert _guest_devices(cloud, sid) == {new: "/dev/vdc"}
    events = api.request("GET", f"/compute/v2.1/servers/{sid}/os-instance-actions",
                         demo_token, headers=MV).json()["instanceActions"]
    assert events[0]["action"] == "swap_volume"

    # a host that fails the copy: the old volume stays in place, the new one available
    assert cloud.cloud is not None
    for agent in cloud.cloud.agents:
        agent.driver.inject("swap_volume", "copy failed", times=None)  # type: ignore
    try:
        third = _volume(api, demo_token, "swap-third", 3)
        assert _swap(api, admin_token, sid, new, third).status_code == 202
        wait_for(api, demo_token, "volume", third, "available")
        assert wait_for(api, demo_token, "volume", new, "in-use") is not None
    finally:
        for agent in cloud.cloud.agents:
            agent.driver.clear_failures()  # type: ignore[attr-defined]
    assert _guest_devices(cloud, sid) == {new: "/dev/vdc"}
    assert [a["volumeId"] for a in _attachments(api, demo_token, sid)] == [new]

    # a stopped server cannot swap (Nova: active, paused or resized)
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", demo_token,
                    json={"os-stop": None}, headers=MV)
    assert r.status_code == 202, r.text
    wait_status(api, demo_token, sid, {"SHUTOFF"})
    r = _swap(api, admin_token, sid, new, third)
    assert r.status_code == 409, r.text


def test_swap_the_root_volume_of_a_server_booted_from_a_volume(
        api: Api, demo_token: str, admin_token: str, cloud: InProcessCloud) -> None:
    from tests.compute_helpers import image_id

    root = create_volume(api, demo_token, name="swap-root", size=1,
                         imageRef=image_id(api, demo_token))
    wait_for(api, demo_token, "volume", root["id"], "available")
    other = _volume(api, demo_token, "swap-root-new", 1)
    r = api.request("POST", "/compute/v2.1/servers", demo_token, headers=MV, json={"server": {
        "name": "swap-bfv", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"uuid": root["id"], "source_type": "volume",
                                     "destination_type": "volume", "boot_index": 0}]}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_status(api, demo_token, sid, {"ACTIVE"})
    # Nova's answer to a rescue of a server booted from a volume.
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", demo_token,
                    json={"rescue": None}, headers=MV)
    assert r.status_code == 400 and "volume-backed" in r.text, r.text

    assert _swap(api, admin_token, sid, root["id"], other).status_code == 202
    wait_for(api, demo_token, "volume", root["id"], "available")
    (attachment,) = wait_for(api, demo_token, "volume", other, "in-use")[  # type: ignore
        "attachments"]
    assert attachment["device"] == "/dev/vda"
    assert _guest_devices(cloud, sid) == {other: "/dev/vda"}
    # still its root: it cannot be detached
    r = api.request("DELETE", f"/compute/v2.1/servers/{sid}/os-volume_attachments/{other}",
                    demo_token, headers=MV)
    assert r.status_code == 400, r.text
