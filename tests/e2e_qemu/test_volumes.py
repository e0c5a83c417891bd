"""Volumes in real guests: `openstack server add volume` hot-plugs a volume into a
running QEMU guest (QMP shows the volume's file opened and its virtio disk plugged;
the test guest prints ``GUREUM-DISK vdb <bytes> <serial>`` once its kernel sees
it), `server remove volume` unplugs it (``GUREUM-DISK-GONE``), and a live migration
takes it along: the destination's QEMU opens the same volume file. A swap puts a
larger volume under the same disk (``GUREUM-DISK-SIZE``); a server booted from a
volume has it as its only disk.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.virt.qemu.monitor import Monitor
from tests.e2e_qemu.guests import QemuCloud, qemu_cloud
from tests.scenarios.ops import DEMO, CliServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[QemuCloud]:
    with qemu_cloud(tmp_path_factory, cli, "qemu-volumes", hosts=2, shared=True) as o:
        yield o


def block_devices(op: QemuCloud, server_id: str) -> dict[str, str]:
    """QMP query-block of the guest's QEMU: device (qdev path) → the file it has open."""
    host = op.host_of(server_id)
    sock = op.data_dir / "hosts" / host / "guests" / server_id / "qmp.sock"
    if not sock.exists():  # the host's state directory, wherever gureum up put it
        (sock,) = op.data_dir.rglob(f"{host}/**/guests/{server_id}/qmp.sock")
    found: Any = asyncio.run(Monitor(sock, server_id).execute("query-block"))
    return {str(b.get("qdev") or b.get("device")): str((b.get("inserted") or {}).get("file"))
            for b in found}


def wait_volume(op: QemuCloud, name: str, status: str, timeout: float = 60
                ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (v := op.cli_json("volume", "show", name, cloud=DEMO))["status"] != status:
        assert time.monotonic() < deadline, f"{name} stayed {v['status']}, wanted {status}"
        time.sleep(0.2)
    shown: dict[str, Any] = v
    return shown


def test_hot_plug_unplug_and_live_migrate_with_a_volume(op: QemuCloud) -> None:
    op.only_enabled("c01")
    vm = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                     "--network", "private", "--wait", "vm1", cloud=DEMO)
    op.only_enabled("c01", "c02")
    sid = vm["id"]
    op.wait_boot(sid, 1)
    vol = op.cli_json("volume", "create", "--size", "1", "vol1", cloud=DEMO)
    wait_volume(op, "vol1", "available")

    op.cli("server", "add", "volume", "vm1", "vol1", "--device", "/dev/vdb", cloud=DEMO)
    wait_volume(op, "vol1", "in-use")
    opened = [f for dev, f in block_devices(op, sid).items() if "dev-vol-" in dev]
    assert len(opened) == 1 and vol["id"] in opened[0], block_devices(op, sid)
    seen = op.wait_console(sid, lambda text: re.search(
        r"GUREUM-DISK (vd\w+) (\d+) (\S+)", text), "the guest to see the new disk")
    assert int(seen.group(2)) == 1 << 30 and seen.group(3) == vol["id"][:20]

    op.cli("server", "migrate", "--live-migration", "--host", "c02", "--wait", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == "c02"
    moved = [f for dev, f in block_devices(op, sid).items() if "dev-vol-" in dev]
    assert moved == opened  # the same file, opened on c02
    attachment = wait_volume(op, "vol1", "in-use")["attachments"][0]
    assert attachment["server_id"] == sid

    # A cold migration back to c01 (the guest stops, starts there with the volume).
    op.cli("server", "migrate", "--host", "c01", "--wait", sid)
    op.wait(sid, {"VERIFY_RESIZE"}, timeout=120)
    op.cli("server", "resize", "confirm", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == "c01"
    assert [f for dev, f in block_devices(op, sid).items() if "dev-vol-" in dev] == opened
    assert wait_volume(op, "vol1", "in-use")["attachments"][0]["host_name"] == "c01"
    op.wait_boot(sid, 2)
    assert "GUREUM-DISK" not in op.console(sid).split("GUREUM-READY")[-1]  # there at boot

    op.cli("server", "remove", "volume", "vm1", "vol1", cloud=DEMO)
    wait_volume(op, "vol1", "available", timeout=90)
    assert not [d for d in block_devices(op, sid) if "dev-vol-" in d]
    op.wait_console(sid, lambda text: f"GUREUM-DISK-GONE {seen.group(1)}" in text,
                    "the guest to see the disk go")
    op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)


def test_swap_volume_in_a_running_guest(op: QemuCloud) -> None:
    """Nova's swap volume on a running guest: QEMU mirrors the disk onto the new (larger)
    volume and pivots; QMP shows the guest's same disk device on the new volume's file,
    the guest sees its vdb grow (never unplugged), and the old volume is available; a
    live migration then keeps that disk on the new volume."""
    vm = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                     "--network", "private", "--wait", "vm-swap", cloud=DEMO)
    sid = vm["id"]
    op.wait_boot(sid, 1)
    old = op.cli_json("volume", "create", "--size", "1", "swap-a", cloud=DEMO)
    new = op.cli_json("volume", "create", "--size", "2", "swap-b", cloud=DEMO)
    wait_volume(op, "swap-a", "available")
    wait_volume(op, "swap-b", "available")
    op.cli("server", "add", "volume", "vm-swap", "swap-a", "--device", "/dev/vdb", cloud=DEMO)
    wait_volume(op, "swap-a", "in-use")
    op.wait_console(sid, lambda text: re.search(r"GUREUM-DISK vdb 1073741824 ", text),
                    "the guest to see the volume")
    (device,) = [d for d in block_devices(op, sid) if "dev-vol-" in d]

    r = op.call("PUT", f"/servers/{sid}/os-volume_attachments/{old['id']}",
                json={"volumeAttachment": {"volumeId": new["id"]}})
    assert r.status_code == 202, r.text
    assert wait_volume(op, "swap-a", "available", timeout=120)["attachments"] == []
    (attachment,) = wait_volume(op, "swap-b", "in-use")["attachments"]
    assert attachment["server_id"] == sid and attachment["device"] == "/dev/vdb"
    opened = block_devices(op, sid)
    assert new["id"] in opened[device], opened  # the same disk, on the new file
    assert not any(old["id"] in f for f in opened.values()), opened
    op.wait_console(sid, lambda text: "GUREUM-DISK-SIZE vdb 2147483648" in text,
                    "the guest to see its disk grow to the new volume's size")
    assert "GUREUM-DISK-GONE" not in op.console(sid)

    # A live migration after the swap: the destination defines the disk from the
    # server's mapping (the new volume), the same disk the guest has.
    here = op.host_of(sid)
    there = "c02" if here == "c01" else "c01"
    op.cli("server", "migrate", "--live-migration", "--host", there, "--wait", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == there
    moved = block_devices(op, sid)
    assert new["id"] in moved[device], moved
    lines = len(op.console(sid).splitlines())
    op.wait_console(sid, lambda text: len(text.splitlines()) > lines + 2,
                    "the guest to tick on")
    assert "GUREUM-DISK-GONE" not in op.console(sid)
    op.cli("server", "delete", "--wait", "vm-swap", cloud=DEMO)
    assert wait_volume(op, "swap-b", "available")["attachments"] == []


def local_disks(op: QemuCloud, server_id: str) -> list[str]:
    """The server's local root disk files (``instances/<uuid>/disk``) on any host."""
    return [str(p) for root in op.roots for p in root.rglob(f"{server_id}/disk")]


def test_boot_from_volume(op: QemuCloud) -> None:
    """`server create --volume`: the guest boots from the volume's file, its one disk
    (vda; no local root disk, neither in its QEMU nor as a file), with the kernel and
    command line of the image the volume was made from; it stays so through a live
    migration and a cold one; deleting the server gives the volume back."""
    op.cli_json("volume", "create", "--size", "1", "--image", "cirros", "root1", cloud=DEMO)
    root = wait_volume(op, "root1", "available", timeout=120)
    vm = op.cli_json("server", "create", "--volume", "root1", "--flavor", "m1.nano",
                     "--network", "private", "--wait", "bfv1", cloud=DEMO)
    sid = vm["id"]
    assert op.wait_boot(sid, 1).disk_mb == 1024  # vda is the 1 GB volume
    opened = block_devices(op, sid)
    assert len(opened) == 1 and root["id"] in next(iter(opened.values())), opened
    assert local_disks(op, sid) == []
    assert wait_volume(op, "root1", "in-use")["attachments"][0]["device"] == "/dev/vda"

    source = op.host_of(sid)
    other = "c02" if source == "c01" else "c01"
    op.cli("server", "migrate", "--live-migration", "--host", other, "--wait", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == other
    assert block_devices(op, sid) == opened  # the same one file, opened there
    op.cli("server", "migrate", "--host", source, "--wait", sid)
    op.wait(sid, {"VERIFY_RESIZE"}, timeout=120)
    op.cli("server", "resize", "confirm", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == source
    assert op.wait_boot(sid, 2).disk_mb == 1024
    assert list(block_devices(op, sid).values()) == list(opened.values())
    assert local_disks(op, sid) == []

    # `server image create`: a snapshot of the volume in an image without data; a server
    # booted from that image boots from a new volume made from the snapshot.
    op.cli("server", "image", "create", "--name", "bfv1-snap", "--wait", sid, cloud=DEMO)
    props = op.cli_json("image", "show", "bfv1-snap", cloud=DEMO)["properties"]
    (entry,) = json.loads(props["block_device_mapping"])
    again = op.cli_json("server", "create", "--image", "bfv1-snap", "--flavor", "m1.nano",
                        "--network", "private", "--wait", "bfv2", cloud=DEMO)
    assert op.wait_boot(again["id"], 1).disk_mb == 1024
    (made,) = op.cli_json("server", "show", "bfv2", cloud=DEMO)["volumes_attached"]
    assert op.cli_json("volume", "show", made["id"], cloud=DEMO)["snapshot_id"] == \
        entry["snapshot_id"]
    (root2,) = block_devices(op, again["id"]).values()
    assert made["id"] in root2 and local_disks(op, again["id"]) == []
    op.cli("server", "delete", "--wait", "bfv2", cloud=DEMO)
    op.cli("server", "delete", "--wait", "bfv1", cloud=DEMO)
    assert wait_volume(op, "root1", "available")["attachments"] == []
