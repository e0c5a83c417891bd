"""Extending an attached volume (3.42): the host's hypervisor grows the disk it holds
open, the guest sees it; a failure leaves the volume attached at its old size."""

from __future__ import annotations

from tests.compute_helpers import MV, boot, wait_status
from tests.functional.volume_helpers import action, create_volume, req, show, wait_for
from tests.harness import Api, InProcessCloud


def _guest_devices(cloud: InProcessCloud, server_id: str) -> list[dict[str, object]]:
    assert cloud.cloud is not None
    for agent in cloud.cloud.agents:
        guest = agent.driver.guests.get(server_id)  # type: ignore[attr-defined]
        if guest is not None:
            return list(guest.spec.block_devices)
    return []


def test_extend_an_attached_volume(api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    server = boot(api, demo_token, "grow-vm")
    wait_status(api, demo_token, server["id"], {"ACTIVE"})
    vol = create_volume(api, demo_token, name="grow-attached")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    r = api.request("POST", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments",
                    demo_token, json={"volumeAttachment": {"volumeId": vol["id"]}},
                    headers=MV)
    assert r.status_code == 200, r.text
    wait_for(api, demo_token, "volume", vol["id"], "in-use")
    action(api, demo_token, vol["id"], "os-extend", {"new_size": 2})
    grown = wait_for(api, demo_token, "volume", vol["id"], "in-use")
    assert grown is not None and grown["size"] == 2
    (device,) = [d for d in _guest_devices(cloud, server["id"])
                 if d.get("volume_id") == vol["id"]]
    assert device["size"] == 2 << 30
    # a guest that cannot: the volume stays attached at its size, with a message
    assert cloud.cloud is not None
    for agent in cloud.cloud.agents:
        agent.driver.inject("extend_volume", "no room", times=None)  # type: ignore[attr-defined]
    try:
        action(api, demo_token, vol["id"], "os-extend", {"new_size": 3})
        kept = wait_for(api, demo_token, "volume", vol["id"], "in-use")
        assert kept is not None and kept["size"] == 2
    finally:
        for agent in cloud.cloud.agents:
            agent.driver.clear_failures()  # type: ignore[attr-defined]
    messages = req(api, demo_token, "GET", "/messages").json()["messages"]
    assert any("no room" in x["user_message"] for x in messages
               if x["resource_uuid"] == vol["id"])
    assert show(api, demo_token, vol["id"])["attachments"][0]["server_id"] == server["id"]
