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
    assert {s["Binary"] for s in services} == {"cinder-scheduler", "cinder-volume"}
    assert all(s["State"] == "up" and s["Status"] == "enabled" for s in services)
    pools = admin(gureum_up, "volume", "backend", "pool", "list", "--long")
    assert pools and pools[0]["Name"].endswith("@file#file")
    quota = gureum_up.openstack("--os-cloud", "gureum", "quota", "show", "-f", "json")
    assert quota.returncode == 0
