"""Guests outlive `gureum up`, even on the fake hypervisor (issue 7).

Before, the fake driver kept its guests in process memory: after a restart
`openstack server start` failed with "Guest … is not on host" and `openstack
console log show` got a 500. Now the guests are in the host's state directory,
so a stopped server starts again and its console answers; a guest that is
really gone (its definition file removed while the cloud was down) shows as
power state NOSTATE with a fault, its console log is a 404 (Nova's answer), and
a hard reboot rebuilds it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e

DEMO = ("--os-cloud", "gureum-demo")
NOSTATE, RUNNING = 0, 1  # `-f json` prints the power state as its number


def show(up: GureumUp, name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(up.openstack(*DEMO, "server", "show", "-f", "json",
                                                  name).stdout)
    return out


def wait(up: GureumUp, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        server = show(up, name)
        if server["status"] == status and not server.get("OS-EXT-STS:task_state"):
            return server
        assert time.monotonic() < deadline, server
        time.sleep(0.3)


def test_stopped_and_running_guests_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = GureumUp(data).start()
    try:
        for name in ("vm1", "vm2"):
            first.openstack(*DEMO, "server", "create", "--flavor", "m1.tiny", "--image",
                            "cirros", "--network", "private", "--wait", name)
        first.openstack(*DEMO, "server", "stop", "vm1")
        wait(first, "vm1", "SHUTOFF")
        gone = show(first, "vm2")["id"]
    finally:
        assert first.stop() == 0
    # vm2's definition disappears while the cloud is down (a guest really missing).
    definition = data / "hosts" / "c01" / "guests" / f"{gone}.json"
    assert definition.is_file()
    definition.unlink()

    second = GureumUp(data)
    second.port = first.port
    second.start()
    try:
        assert show(second, "vm1")["status"] == "SHUTOFF"
        second.openstack(*DEMO, "server", "start", "vm1")
        assert wait(second, "vm1", "ACTIVE")["OS-EXT-STS:power_state"] == RUNNING
        assert "login:" in second.openstack(*DEMO, "console", "log", "show", "vm1").stdout

        missing = show(second, "vm2")
        assert missing["status"] == "ACTIVE"
        assert missing["OS-EXT-STS:power_state"] == NOSTATE
        assert "missing from its host" in missing["fault"]["message"]
        proc = second.openstack(*DEMO, "console", "log", "show", "vm2", check=False)
        assert proc.returncode != 0 and "404" in proc.stderr and "500" not in proc.stderr, proc
        second.openstack(*DEMO, "server", "reboot", "--hard", "--wait", "vm2")
        rebuilt = wait(second, "vm2", "ACTIVE")
        assert rebuilt["OS-EXT-STS:power_state"] == RUNNING and not rebuilt.get("fault")
        assert definition.is_file()
    finally:
        assert second.stop() == 0
    assert "Traceback" not in second.log_path.read_text()
