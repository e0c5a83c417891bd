"""Block Storage through the real `openstack` CLI, as users type it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def demo(up: GureumUp, *args: str, check: bool = True) -> Any:
    proc = up.openstack("--os-cloud", "gureum-demo", *args, check=check)
    if not check:
        return proc
    return json.loads(proc.stdout) if "-f" in args else proc.stdout


def admin(up: GureumUp, *args: str) -> Any:
    return json.loads(up.openstack("--os-cloud", "gureum", *args, "-f", "json").stdout)


def wait_status(up: GureumUp, kind: str, name: str, want: str, timeout: float = 30
                ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = demo(up, kind, "show", name, "-f", "json")
        if shown["status"] == want:
            return shown
        time.sleep(0.3)
    raise AssertionError(f"{kind} {name} is {shown.get('status')}, not {want}")


def test_volume_create_list_show_set_delete(gureum_up: GureumUp) -> None:
    created = demo(gureum_up, "volume", "create", "--size", "1", "vol1", "-f", "json")
    assert created["size"] == 1 and created["name"] == "vol1"
    wait_status(gureum_up, "volume", "vol1", "available")
    listed = demo(gureum_up, "volume", "list", "--long", "-f", "json")
    (row,) = [r for r in listed if r["Name"] == "vol1"]
    assert row["Status"] == "available" and row["Size"] == 1 and row["Type"] == "__DEFAULT__"
    demo(gureum_up, "volume", "set", "--name", "vol1b", "--description", "hello",
         "--property", "k=v", "vol1")
    shown = demo(gureum_up, "volume", "show", "vol1b", "-f", "json")
    assert shown["description"] == "hello" and shown["properties"] == {"k": "v"}
    demo(gureum_up, "volume", "set", "--size", "2", "vol1b")
    assert wait_status(gureum_up, "volume", "vol1b", "available")["size"] == 2
    listed = admin(gureum_up, "volume", "list", "--all-projects", "--long")
    assert "vol1b" in {r["Name"] for r in listed}
    demo(gureum_up, "volume", "delete", "vol1b")
    deadline = time.monotonic() + 30
    while "vol1b" in {r["Name"] for r in demo(gureum_up, "volume", "list", "-f", "json")}:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_bad_size_is_refused(gureum_up: GureumUp) -> None:
    proc = demo(gureum_up, "volume", "create", "--size", "0", "bad", check=False)
    assert proc.returncode != 0 and "size" in proc.stderr.lower()


def test_volume_service_list_quota_and_pools(gureum_up: GureumUp) -> None:
    services = admin(gureum_up, "volume", "service", "list")
    assert {s["Binary"] for s in services} == {"cinder-scheduler", "cinder-volume",
                                               "cinder-backup"}
    assert all(s["State"] == "up" and s["Status"] == "enabled" for s in services)
    pools = admin(gureum_up, "volume", "backend", "pool", "list", "--long")
    assert pools and pools[0]["Name"].endswith("@file#file")
    quota = gureum_up.openstack("--os-cloud", "gureum", "quota", "show", "-f", "json")
    assert quota.returncode == 0


def wait_gone(up: GureumUp, kind: str, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while name in {r["Name"] for r in demo(up, kind, "list", "-f", "json")}:
        assert time.monotonic() < deadline, f"{kind} {name} still there"
        time.sleep(0.3)


def test_snapshots_and_volumes_from_snapshot_and_image(gureum_up: GureumUp) -> None:
    demo(gureum_up, "volume", "create", "--size", "1", "src", "-f", "json")
    wait_status(gureum_up, "volume", "src", "available")
    demo(gureum_up, "volume", "snapshot", "create", "--volume", "src", "--property", "a=b",
         "snap1", "-f", "json")
    snap = _wait_snapshot(gureum_up, "snap1")
    assert snap["properties"] == {"a": "b"}
    listed = demo(gureum_up, "volume", "snapshot", "list", "--long", "-f", "json")
    assert "snap1" in {r["Name"] for r in listed}
    demo(gureum_up, "volume", "create", "--snapshot", "snap1", "--size", "2", "from-snap",
         "-f", "json")
    assert wait_status(gureum_up, "volume", "from-snap", "available")["size"] == 2
    demo(gureum_up, "volume", "create", "--source", "src", "--size", "1", "clone1", "-f",
         "json")
    wait_status(gureum_up, "volume", "clone1", "available")
    demo(gureum_up, "volume", "create", "--image", "cirros", "--size", "1", "from-image",
         "-f", "json")
    shown = wait_status(gureum_up, "volume", "from-image", "available")
    assert shown["bootable"] in (True, "true")
    assert "image_name" in str(shown["volume_image_metadata"])
    demo(gureum_up, "volume", "snapshot", "delete", "snap1")
    deadline = time.monotonic() + 30
    while "snap1" in {r["Name"] for r in demo(gureum_up, "volume", "snapshot", "list",
                                              "-f", "json")}:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    for name in ("src", "from-snap", "clone1", "from-image"):
        demo(gureum_up, "volume", "delete", name)


def _wait_snapshot(up: GureumUp, name: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = demo(up, "volume", "snapshot", "show", name, "-f", "json")
        if shown["status"] == "available":
            return shown
        time.sleep(0.3)
    raise AssertionError(f"snapshot {name} is {shown.get('status')}")


def test_type_with_property_and_transfer(gureum_up: GureumUp) -> None:
    created = admin(gureum_up, "volume", "type", "create", "--property", "speed=fast",
                    "--description", "quick", "fasttype")
    assert created["name"] == "fasttype"
    shown = admin(gureum_up, "volume", "type", "show", "fasttype")
    assert "speed" in str(shown["properties"])
    demo(gureum_up, "volume", "create", "--size", "1", "--type", "fasttype", "typed",
         "-f", "json")
    assert wait_status(gureum_up, "volume", "typed", "available")["type"] == "fasttype"
    transfer = demo(gureum_up, "volume", "transfer", "request", "create", "--name", "tr1",
                    "typed", "-f", "json")
    assert transfer["auth_key"]
    admin_proc = gureum_up.openstack("--os-cloud", "gureum", "volume", "transfer", "request",
                                     "accept", "--auth-key", transfer["auth_key"],
                                     transfer["id"], "-f", "json")
    assert json.loads(admin_proc.stdout)["volume_id"] == transfer["volume_id"]
    proc = demo(gureum_up, "volume", "show", "typed", check=False)
    assert proc.returncode != 0
    gureum_up.openstack("--os-cloud", "gureum", "volume", "delete", transfer["volume_id"])


def test_other_projects_volume_is_not_found(gureum_up: GureumUp) -> None:
    admin(gureum_up, "volume", "create", "--size", "1", "admins-vol")
    proc = demo(gureum_up, "volume", "show", "admins-vol", check=False)
    assert proc.returncode != 0 and "No Volume found for admins-vol" in proc.stderr


def test_image_create_from_volume(gureum_up: GureumUp) -> None:
    demo(gureum_up, "volume", "create", "--size", "1", "img-src", "-f", "json")
    wait_status(gureum_up, "volume", "img-src", "available")
    demo(gureum_up, "image", "create", "--volume", "img-src", "--disk-format", "qcow2",
         "vol-image")
    wait_status(gureum_up, "volume", "img-src", "available")
    deadline = time.monotonic() + 30
    while demo(gureum_up, "image", "show", "vol-image", "-f", "json")["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    demo(gureum_up, "image", "delete", "vol-image")
    demo(gureum_up, "volume", "delete", "img-src")


def test_qos_and_default_type(gureum_up: GureumUp) -> None:
    qos = admin(gureum_up, "volume", "qos", "create", "--property", "read_iops_sec=100",
                "qos1")
    assert qos["name"] == "qos1"
    admin(gureum_up, "volume", "type", "create", "qostype")
    gureum_up.openstack("--os-cloud", "gureum", "volume", "qos", "associate", "qos1",
                        "qostype")
    shown = admin(gureum_up, "volume", "qos", "show", "qos1")
    assert "qostype" in str(shown["associations"])


def test_quota_set_and_service_disable(gureum_up: GureumUp) -> None:
    gureum_up.openstack("--os-cloud", "gureum", "quota", "set", "--volumes", "7",
                        "--gigabytes", "70", "demo")
    try:
        _check_quota_and_disable(gureum_up)
    finally:  # the session's other tests keep the defaults
        gureum_up.openstack("--os-cloud", "gureum", "quota", "set", "--volumes", "10",
                            "--gigabytes", "1000", "demo")


def _check_quota_and_disable(gureum_up: GureumUp) -> None:
    quota = {r["Resource"]: r["Limit"] for r in admin(gureum_up, "quota", "show", "demo")}
    assert quota["volumes"] == 7 and quota["gigabytes"] == 70
    limits = {r["Name"]: r["Value"] for r in json.loads(gureum_up.openstack(
        "--os-cloud", "gureum-demo", "limits", "show", "--absolute", "-f", "json").stdout)}
    assert limits["max_total_volumes"] == 7
    (volume_service,) = [s for s in admin(gureum_up, "volume", "service", "list")
                         if s["Binary"] == "cinder-volume"]
    gureum_up.openstack("--os-cloud", "gureum", "volume", "service", "set", "--disable",
                        "--disable-reason", "disk swap", volume_service["Host"],
                        "cinder-volume")
    try:
        rows = admin(gureum_up, "volume", "service", "list", "--long")
        (row,) = [s for s in rows if s["Binary"] == "cinder-volume"]
        assert row["Status"] == "disabled" and row["Disabled Reason"] == "disk swap"
    finally:
        gureum_up.openstack("--os-cloud", "gureum", "volume", "service", "set", "--enable",
                            volume_service["Host"], "cinder-volume")


def test_create_bootable_read_only_and_unset(gureum_up: GureumUp) -> None:
    created = demo(gureum_up, "volume", "create", "--size", "1", "--bootable", "--read-only",
                   "--property", "a=1", "flags", "-f", "json")
    assert created["name"] == "flags"
    shown = wait_status(gureum_up, "volume", "flags", "available")
    assert shown["bootable"] in (True, "true")
    demo(gureum_up, "volume", "set", "--non-bootable", "--read-write", "flags")
    demo(gureum_up, "volume", "unset", "--property", "a", "flags")
    shown = demo(gureum_up, "volume", "show", "flags", "-f", "json")
    assert shown["bootable"] in (False, "false") and shown["properties"] == {}
    demo(gureum_up, "volume", "delete", "flags")


def test_backup_create_list_restore_delete(gureum_up: GureumUp) -> None:
    demo(gureum_up, "volume", "create", "--size", "1", "bsrc", "-f", "json")
    wait_status(gureum_up, "volume", "bsrc", "available")
    demo(gureum_up, "volume", "backup", "create", "--name", "bk1", "bsrc", "-f", "json")
    deadline = time.monotonic() + 30
    while demo(gureum_up, "volume", "backup", "show", "bk1", "-f", "json")["status"] != \
            "available":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    listed = demo(gureum_up, "volume", "backup", "list", "--long", "-f", "json")
    assert "bk1" in {r["Name"] for r in listed}
    demo(gureum_up, "volume", "backup", "restore", "--force", "bk1", "bsrc")
    wait_status(gureum_up, "volume", "bsrc", "available")
    demo(gureum_up, "volume", "backup", "restore", "bk1", "brestored")
    wait_status(gureum_up, "volume", "brestored", "available")
    deadline = time.monotonic() + 30
    while demo(gureum_up, "volume", "backup", "show", "bk1", "-f", "json")["status"] != \
            "available":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    demo(gureum_up, "volume", "backup", "delete", "bk1")
    demo(gureum_up, "volume", "delete", "bsrc", "brestored")
