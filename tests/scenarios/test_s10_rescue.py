"""S10. Looking inside a broken guest's disk.

Instead of `virsh suspend`, `qemu-nbd -c`, mount, look, umount, `qemu-nbd -d`,
`virsh resume` (and an unmanageable instance when a step was forgotten), the
member uses `openstack server rescue` / `unrescue`, `openstack server pause` /
`unpause`, `suspend` / `resume`, and reads `openstack console log show`. Every
step leaves a state the next command accepts, and a wrong order gets Nova's
409 instead of a wedged instance.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.scenarios.ops import DEMO, CliServer, Operator, cloud

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s10", hosts=2,
               compute={"shutdown_timeout": 2, "shutdown_retry_interval": 0.5}) as o:
        yield o


@pytest.fixture(scope="module")
def vm1(op: Operator) -> dict[str, Any]:
    return op.boot("vm1")


def state(op: Operator, server_id: str, statuses: set[str]) -> tuple[str, int]:
    s = op.wait(server_id, statuses)
    return s["status"], s["OS-EXT-STS:power_state"]


def member(op: Operator, *args: str) -> str:
    return op.cli(*args, cloud=DEMO).stdout


def test_rescue_and_unrescue(op: Operator, vm1: dict[str, Any]) -> None:
    member(op, "server", "rescue", "vm1")
    assert state(op, vm1["id"], {"RESCUE", "ERROR"}) == ("RESCUE", 1)
    # Still the same server on the same host, and its console answers.
    assert "login:" in member(op, "console", "log", "show", "vm1")
    proc = op.cli("server", "pause", "vm1", cloud=DEMO, check=False)
    assert proc.returncode != 0 and "while it is in vm_state rescued" in proc.stderr

    member(op, "server", "unrescue", "vm1")
    assert state(op, vm1["id"], {"ACTIVE", "ERROR"}) == ("ACTIVE", 1)
    actions = [r["Action"] for r in op.cli_json("server", "event", "list", "vm1",
                                                cloud=DEMO)]
    assert actions[:2] == ["unrescue", "rescue"]


def test_pause_and_unpause(op: Operator, vm1: dict[str, Any]) -> None:
    member(op, "server", "pause", "vm1")
    assert state(op, vm1["id"], {"PAUSED", "ERROR"}) == ("PAUSED", 3)
    proc = op.cli("server", "suspend", "vm1", cloud=DEMO, check=False)
    assert proc.returncode != 0 and "while it is in vm_state paused" in proc.stderr
    member(op, "server", "unpause", "vm1")
    assert state(op, vm1["id"], {"ACTIVE", "ERROR"}) == ("ACTIVE", 1)


def test_suspend_and_resume(op: Operator, vm1: dict[str, Any]) -> None:
    member(op, "server", "suspend", "vm1")
    assert state(op, vm1["id"], {"SUSPENDED", "ERROR"}) == ("SUSPENDED", 7)
    shown = op.cli_json("server", "show", "vm1", cloud=DEMO)
    assert shown["status"] == "SUSPENDED"
    member(op, "server", "resume", "vm1")
    assert state(op, vm1["id"], {"ACTIVE", "ERROR"}) == ("ACTIVE", 1)


def test_console_log(op: Operator, vm1: dict[str, Any]) -> None:
    out = member(op, "console", "log", "show", "vm1")
    assert out.strip().endswith("vm1 login:")
    last = member(op, "console", "log", "show", "--lines", "1", "vm1")
    assert last.strip() == "vm1 login:"


def test_every_step_left_the_server_manageable(op: Operator, vm1: dict[str, Any]) -> None:
    member(op, "server", "stop", "vm1")
    assert state(op, vm1["id"], {"SHUTOFF", "ERROR"}) == ("SHUTOFF", 4)
    member(op, "server", "start", "vm1")
    assert state(op, vm1["id"], {"ACTIVE", "ERROR"}) == ("ACTIVE", 1)
    actions = [r["Action"] for r in op.cli_json("server", "event", "list", "vm1",
                                                cloud=DEMO)]
    assert actions == ["start", "stop", "resume", "suspend", "unpause", "pause", "unrescue",
                       "rescue", "create"]
