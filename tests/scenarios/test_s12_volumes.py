"""S12. Volumes: attached, detached and following their server, with the real CLI.

Instead of a SQL join across the nova and cinder databases, `openstack volume list
--all-projects --long` says which server each volume is attached to; `openstack
server add volume` / `remove volume` hot-plug and unplug it (here on the fake
driver, whose guests' definitions show what is plugged); migrate, resize, live
migration and evacuation keep the attachment: still in-use, attached to the server,
the attachment naming the new host, the volume in the guest there. Boot from volume
(`server create --volume`) and delete_on_termination too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import InProcessCloud
from tests.scenarios.inproc import drivers, host_down, inprocess
from tests.scenarios.ops import CliServer, Operator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory, cli: CliServer
           ) -> Iterator[tuple[InProcessCloud, Operator]]:
    with inprocess(tmp_path_factory, cli, "s12", hosts=3,
                   compute={"fake_shared_storage": "c01,c02,c03"}) as pair:
        yield pair


def volume(op: Operator, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = op.cli_json("volume", "show", name)
    return shown


def wait_volume(op: Operator, name: str, status: str, timeout: float = 30
                ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (v := volume(op, name))["status"] != status:
        assert time.monotonic() < deadline, f"{name} stayed {v['status']}, wanted {status}"
        time.sleep(0.1)
    return v


def attachment_hosts(v: dict[str, Any]) -> list[str | None]:
    return [a.get("host_name") for a in v["attachments"]]


def in_guest(c: InProcessCloud, server_id: str) -> dict[str, dict[str, str]]:
    """Where the guest runs, with the volumes its definition plugs there."""
    return {host: d.volumes(server_id) for host, d in drivers(c).items()
            if server_id in d.guests and not d.guests[server_id].incoming}


def test_attach_follow_every_move_and_detach(inproc: tuple[InProcessCloud, Operator]
                                            ) -> None:
    c, op = inproc
    vm = op.boot("vm1", cloud="gureum", host="c01")
    vol = op.cli_json("volume", "create", "--size", "1", "vol1")
    wait_volume(op, "vol1", "available")

    op.cli("server", "add", "volume", "vm1", "vol1", "--device", "/dev/vdb")
    v = wait_volume(op, "vol1", "in-use")
    assert [a["server_id"] for a in v["attachments"]] == [vm["id"]]
    assert [a["device"] for a in v["attachments"]] == ["/dev/vdb"]
    assert attachment_hosts(v) == ["c01"]
    assert in_guest(c, vm["id"]) == {"c01": {vol["id"]: "/dev/vdb"}}
    table = op.cli("volume", "list", "--all-projects", "--long").stdout
    (row,) = [line for line in table.splitlines() if vol["id"] in line]
    assert "Attached to vm1 on /dev/vdb" in row
    shown = op.cli_json("server", "show", "vm1")
    assert [a["id"] for a in shown["volumes_attached"]] == [vol["id"]]
    attachments = op.call("GET", f"/servers/{vm['id']}/os-volume_attachments").json()
    assert attachments["volumeAttachments"][0]["device"] == "/dev/vdb"

    # A cold migration keeps it …
    op.cli("server", "migrate", "--host", "c02", "vm1")
    op.wait(vm["id"], {"VERIFY_RESIZE"})
    op.cli("server", "resize", "confirm", "vm1")
    op.wait(vm["id"], {"ACTIVE"})
    v = volume(op, "vol1")
    assert v["status"] == "in-use" and attachment_hosts(v) == ["c02"]
    assert in_guest(c, vm["id"]) == {"c02": {vol["id"]: "/dev/vdb"}}
    # … so do a live migration …
    op.cli("server", "migrate", "--live-migration", "--host", "c03", "vm1")
    op.wait(vm["id"], {"ACTIVE"})
    assert op.show(vm["id"])["OS-EXT-SRV-ATTR:host"] == "c03"
    assert attachment_hosts(volume(op, "vol1")) == ["c03"]
    assert in_guest(c, vm["id"]) == {"c03": {vol["id"]: "/dev/vdb"}}
    # … a resize (reverted: back on c03, still attached) …
    op.cli("server", "resize", "--flavor", "2", "vm1")
    op.wait(vm["id"], {"VERIFY_RESIZE"})
    op.cli("server", "resize", "revert", "vm1")
    op.wait(vm["id"], {"ACTIVE"})
    host = op.show(vm["id"])["OS-EXT-SRV-ATTR:host"]
    assert attachment_hosts(volume(op, "vol1")) == [host]
    assert in_guest(c, vm["id"]) == {host: {vol["id"]: "/dev/vdb"}}
    # … and an evacuation from a dead host.
    host_down(c, host)
    op.cli("compute", "service", "set", "--down", host, "nova-compute")
    op.cli("server", "evacuate", "vm1")
    op.wait(vm["id"], {"ACTIVE", "ERROR"})
    dest = op.show(vm["id"])["OS-EXT-SRV-ATTR:host"]
    assert dest != host and op.show(vm["id"])["status"] == "ACTIVE"
    v = volume(op, "vol1")
    assert v["status"] == "in-use" and attachment_hosts(v) == [dest]
    assert in_guest(c, vm["id"])[dest] == {vol["id"]: "/dev/vdb"}

    op.cli("server", "remove", "volume", "vm1", "vol1")
    v = wait_volume(op, "vol1", "available")
    done = {e["Action"] for e in op.cli_json("server", "event", "list", "vm1")}
    assert {"attach_volume", "detach_volume"} <= done
    assert v["attachments"] == []
    assert in_guest(c, vm["id"])[dest] == {}
    assert op.cli_json("server", "show", "vm1")["volumes_attached"] == []


def test_attach_errors_as_nova(inproc: tuple[InProcessCloud, Operator]) -> None:
    c, op = inproc
    vm = op.boot("vm-err", cloud="gureum")
    op.cli_json("volume", "create", "--size", "1", "busy")
    busy = wait_volume(op, "busy", "available")
    path = f"/servers/{vm['id']}/os-volume_attachments"
    r = op.call("POST", path, json={"volumeAttachment": {
        "volumeId": "8d1b1a54-0000-4000-8000-000000000000"}})
    assert r.status_code == 404, r.text
    r = op.call("POST", path, json={"volumeAttachment": {"volumeId": busy["id"],
                                                         "device": "vdb"}})
    assert r.status_code == 400 and "device" in r.text, r.text
    r = op.call("POST", path, json={"volumeAttachment": {"volumeId": busy["id"]}})
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"]["device"] == "/dev/vdb"
    wait_volume(op, "busy", "in-use")
    r = op.call("POST", path, json={"volumeAttachment": {"volumeId": busy["id"]}})
    assert r.status_code in (400, 409), r.text
    r = op.call("GET", f"{path}/{busy['id']}", version="2.89")
    shown = r.json()["volumeAttachment"]
    assert "id" not in shown and shown["attachment_id"] and shown["bdm_uuid"]
    assert shown["delete_on_termination"] is False
    # A failed plug rolls back: the volume is available again, nothing attached.
    op.cli_json("volume", "create", "--size", "1", "unlucky")
    unlucky = wait_volume(op, "unlucky", "available")
    host = op.show(vm["id"])["OS-EXT-SRV-ATTR:host"]
    drivers(c)[host].inject("attach_volume", "no free slot")
    r = op.call("POST", path, json={"volumeAttachment": {"volumeId": unlucky["id"]}})
    assert r.status_code == 200, r.text
    time.sleep(0.5)
    v = wait_volume(op, "unlucky", "available")
    assert v["attachments"] == []
    ids = [a["volumeId"] for a in op.call("GET", path).json()["volumeAttachments"]]
    assert ids == [busy["id"]]
    # While a volume is being plugged, the server does not move (409), then it may.
    drivers(c)[host].delays["attach_volume"] = 2.0
    r = op.call("POST", path, json={"volumeAttachment": {"volumeId": unlucky["id"]}})
    assert r.status_code == 200, r.text
    r = op.call("POST", f"/servers/{vm['id']}/action", json={"migrate": None})
    assert r.status_code == 409 and "being attached" in r.text, r.text
    wait_volume(op, "unlucky", "in-use")
    drivers(c)[host].delays.pop("attach_volume")
    # Deleting the server gives its volumes back.
    op.delete(vm["id"])
    assert wait_volume(op, "busy", "available")["attachments"] == []
    assert wait_volume(op, "unlucky", "available")["attachments"] == []


def test_boot_from_volume(inproc: tuple[InProcessCloud, Operator]) -> None:
    c, op = inproc
    image = op.image_id("cirros")
    op.cli_json("volume", "create", "--size", "1", "--image", image, "root1")
    root = wait_volume(op, "root1", "available", timeout=60)
    op.cli("server", "create", "--flavor", "1", "--volume", "root1", "--nic", "none",
           "--wait", "bfv1")
    shown = op.cli_json("server", "show", "bfv1")
    assert shown["status"] == "ACTIVE"
    assert [a["id"] for a in shown["volumes_attached"]] == [root["id"]]
    v = volume(op, "root1")
    assert v["status"] == "in-use" and v["attachments"][0]["device"] == "/dev/vda"
    guest = in_guest(c, shown["id"])
    assert list(guest.values()) == [{root["id"]: "/dev/vda"}]
    # `server image create`: a snapshot of the volume, and an image that maps it.
    op.cli("server", "image", "create", "--name", "of-a-volume", "--wait", "bfv1")
    snap_image = op.cli_json("image", "show", "of-a-volume")
    props = snap_image["properties"]
    assert snap_image["size"] in (0, None) and props["root_device_name"] == "/dev/vda"
    (entry,) = json.loads(props["block_device_mapping"])
    assert entry["boot_index"] == 0 and entry["source_type"] == "snapshot"
    snap = op.cli_json("volume", "snapshot", "show", entry["snapshot_id"])
    assert snap["volume_id"] == root["id"]
    # A server booted from that image gets a new volume made from the snapshot.
    op.cli("server", "create", "--flavor", "1", "--image", "of-a-volume", "--nic", "none",
           "--wait", "bfv-again")
    again = op.cli_json("server", "show", "bfv-again")
    assert again["status"] == "ACTIVE"
    (made,) = again["volumes_attached"]
    assert made["id"] != root["id"]
    assert volume(op, made["id"])["snapshot_id"] == entry["snapshot_id"]
    op.cli("server", "delete", "--wait", "bfv-again")
    # The root volume cannot be detached.
    r = op.call("DELETE", f"/servers/{shown['id']}/os-volume_attachments/{root['id']}")
    assert r.status_code == 400, r.text
    op.cli("server", "delete", "--wait", "bfv1")
    assert wait_volume(op, "root1", "available")["attachments"] == []

    # `--boot-from-volume SIZE` with an image: a volume made from it, the server's root.
    op.cli("server", "create", "--flavor", "1", "--image", "cirros", "--boot-from-volume",
           "1", "--nic", "none", "--wait", "bfv3")
    made3 = op.cli_json("server", "show", "bfv3")["volumes_attached"]
    assert len(made3) == 1
    listed = op.cli_json("server", "volume", "list", "bfv3")
    assert [(v["Volume ID"], v["Device"]) for v in listed] == [(made3[0]["id"], "/dev/vda")]
    op.cli("server", "delete", "--wait", "bfv3")
    assert wait_volume(op, made3[0]["id"], "available")["bootable"] in (True, "true")

    # A data volume given at boot (`--block-device-mapping vdc=data1:volume`), with an image.
    op.cli_json("volume", "create", "--size", "1", "data1")
    data1 = wait_volume(op, "data1", "available")
    body = {"server": {"name": "withdata", "flavorRef": "1", "networks": "none",
                       "imageRef": image, "block_device_mapping_v2": [{
                           "uuid": data1["id"], "source_type": "volume",
                           "destination_type": "volume", "device_name": "vdc",
                           "boot_index": -1}]}}
    r = op.call("POST", "/servers", json=body)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert op.wait(sid, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"
    assert list(in_guest(c, sid).values()) == [{data1["id"]: "/dev/vdc"}]
    assert wait_volume(op, "data1", "in-use")["attachments"][0]["device"] == "/dev/vdc"
    op.delete(sid)
    wait_volume(op, "data1", "available")

    # An image-backed volume made at boot, deleted with the server.
    body = {"server": {"name": "bfv2", "flavorRef": "1", "networks": "none",
                       "block_device_mapping_v2": [{
                           "uuid": image, "source_type": "image",
                           "destination_type": "volume", "volume_size": 1,
                           "boot_index": 0, "delete_on_termination": True}]}}
    r = op.call("POST", "/servers", json=body)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = op.wait(sid, {"ACTIVE", "ERROR"}, timeout=60)
    assert server["status"] == "ACTIVE", server.get("fault")
    (made,) = server["os-extended-volumes:volumes_attached"]
    assert made["delete_on_termination"] is True
    op.delete(sid)
    deadline = time.monotonic() + 30
    while op.cli("volume", "show", made["id"], check=False).returncode == 0:
        assert time.monotonic() < deadline, "the volume was not deleted with its server"
        time.sleep(0.2)


def test_attachment_shapes_per_microversion(inproc: tuple[InProcessCloud, Operator]) -> None:
    _, op = inproc
    vm = op.boot("vm-shapes", cloud="gureum")
    op.cli_json("volume", "create", "--size", "1", "shaped")
    vol = wait_volume(op, "shaped", "available")
    path = f"/servers/{vm['id']}/os-volume_attachments"
    body = {"volumeAttachment": {"volumeId": vol["id"], "tag": "data"}}
    r = op.call("POST", path, version="2.48", json=body)
    assert r.status_code == 400 and "tag" in r.text, r.text  # tags from 2.49
    body["volumeAttachment"]["delete_on_termination"] = True
    r = op.call("POST", path, version="2.79", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"] == {
        "id": vol["id"], "serverId": vm["id"], "volumeId": vol["id"], "device": "/dev/vdb",
        "tag": "data", "delete_on_termination": True}
    wait_volume(op, "shaped", "in-use")

    def shown(version: str) -> dict[str, Any]:
        r = op.call("GET", f"{path}/{vol['id']}", version=version)
        assert r.status_code == 200, r.text
        listed = op.call("GET", path, version=version).json()["volumeAttachments"]
        assert listed == [r.json()["volumeAttachment"]]
        out: dict[str, Any] = r.json()["volumeAttachment"]
        return out

    base = {"id": vol["id"], "serverId": vm["id"], "volumeId": vol["id"], "device": "/dev/vdb"}
    assert shown("2.1") == base
    assert shown("2.70") == {**base, "tag": "data"}
    assert shown("2.79") == {**base, "tag": "data", "delete_on_termination": True}
    newest = shown("2.89")
    assert "id" not in newest and newest["attachment_id"] and newest["bdm_uuid"]
    # PUT: delete_on_termination from 2.85; another volume is a swap (admin): one that
    # does not exist is Nova's 400 (it is named in the body).
    r = op.call("PUT", f"{path}/{vol['id']}", version="2.84",
                json={"volumeAttachment": {"volumeId": vol["id"]}})
    assert r.status_code == 400, r.text
    r = op.call("PUT", f"{path}/{vol['id']}", version="2.85", json={
        "volumeAttachment": {"volumeId": vol["id"], "delete_on_termination": False}})
    assert r.status_code == 202, r.text
    assert shown("2.79")["delete_on_termination"] is False
    r = op.call("PUT", f"{path}/{vol['id']}", version="2.85", json={
        "volumeAttachment": {"volumeId": "8d1b1a54-0000-4000-8000-000000000000"}})
    assert r.status_code == 400, r.text
    r = op.call("GET", f"{path}/8d1b1a54-0000-4000-8000-000000000000")
    assert r.status_code == 404, r.text
    # A server in a state that cannot take a volume: 409.
    op.cli("server", "suspend", "vm-shapes")
    op.wait(vm["id"], {"SUSPENDED"})
    op.cli_json("volume", "create", "--size", "1", "late")
    late = wait_volume(op, "late", "available")
    r = op.call("POST", path, json={"volumeAttachment": {"volumeId": late["id"]}})
    assert r.status_code == 409 and "suspended" in r.text, r.text
    op.delete(vm["id"])
    assert wait_volume(op, "shaped", "available")["attachments"] == []


def test_an_attach_cut_by_kill_9_finishes_after_the_restart(
        tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> None:
    """`kill -9` of `gureum up` while a host plugs a volume (a slow driver): the
    restarted conductor finds the mapping still attaching and asks again (plugging is
    idempotent); the volume ends in-use, attached, and in the guest's definition."""
    import json

    from tests.harness import GureumUp

    data = tmp_path_factory.mktemp("s12-kill") / "data"
    up = GureumUp(data, hosts=1, settings={"compute": {"fake_delays": "attach_volume:30"}})
    up.start()
    op = Operator(up.url, up.clouds_yaml, cli)
    try:
        vm = op.boot("vm-k", cloud="gureum")
        op.cli_json("volume", "create", "--size", "1", "volk")
        vol = wait_volume(op, "volk", "available")
        op.cli("server", "add", "volume", "vm-k", "volk")
        assert volume(op, "volk")["status"] == "attaching"
        time.sleep(1)  # the conductor has asked the host, which takes its time
    finally:
        op.close()
        assert up.proc is not None
        up.proc.kill()
        up.proc.wait()
        up.stop()
    again = GureumUp(data, hosts=1, settings={})
    again.port = up.port
    again.start()
    op = Operator(again.url, again.clouds_yaml, cli)
    try:
        v = wait_volume(op, "volk", "in-use")
        assert [a["server_id"] for a in v["attachments"]] == [vm["id"]]
        guest = json.loads((data / "hosts" / "c01" / "guests" / f"{vm['id']}.json")
                           .read_text())
        assert [b["volume_id"] for b in guest["spec"]["block_devices"]] == [vol["id"]]
    finally:
        op.close()
        assert again.stop() == 0


def test_a_swap_cut_by_kill_9_finishes_after_the_restart(
        tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> None:
    """`kill -9` of `gureum up` while a host copies a volume for a swap (a slow driver):
    the restarted conductor finds the mapping still swapping and asks again (a swap is
    idempotent); the old volume ends available, the new one in-use on the same device."""
    import json

    from tests.harness import GureumUp

    data = tmp_path_factory.mktemp("s12-kill-swap") / "data"
    up = GureumUp(data, hosts=1, settings={"compute": {"fake_delays": "swap_volume:30"}})
    up.start()
    op = Operator(up.url, up.clouds_yaml, cli)
    try:
        vm = op.boot("vm-s", cloud="gureum")
        op.cli_json("volume", "create", "--size", "1", "vol-a")
        op.cli_json("volume", "create", "--size", "1", "vol-b")
        wait_volume(op, "vol-a", "available")
        new = wait_volume(op, "vol-b", "available")
        op.cli("server", "add", "volume", "vm-s", "vol-a", "--device", "/dev/vdb")
        old = wait_volume(op, "vol-a", "in-use")
        r = op.call("PUT", f"/servers/{vm['id']}/os-volume_attachments/{old['id']}",
                    json={"volumeAttachment": {"volumeId": new["id"]}})
        assert r.status_code == 202, r.text
        assert volume(op, "vol-b")["status"] == "attaching"
        assert volume(op, "vol-a")["status"] == "detaching"
        time.sleep(1)  # the conductor has asked the host, which takes its time
    finally:
        op.close()
        assert up.proc is not None
        up.proc.kill()
        up.proc.wait()
        up.stop()
    again = GureumUp(data, hosts=1, settings={})
    again.port = up.port
    again.start()
    op = Operator(again.url, again.clouds_yaml, cli)
    try:
        v = wait_volume(op, "vol-b", "in-use")
        assert [(a["server_id"], a["device"]) for a in v["attachments"]] == [
            (vm["id"], "/dev/vdb")]
        assert wait_volume(op, "vol-a", "available")["attachments"] == []
        guest = json.loads((data / "hosts" / "c01" / "guests" / f"{vm['id']}.json")
                           .read_text())
        assert [b["volume_id"] for b in guest["spec"]["block_devices"]] == [new["id"]]
    finally:
        op.close()
        assert again.stop() == 0
