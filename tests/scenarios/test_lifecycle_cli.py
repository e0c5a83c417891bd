"""The instance lifecycle commands of the issue, typed verbatim; each exits 0.

Two servers are called vm1: the member's (demo project) for the member's
commands and the admin's (admin project) for the admin's, because `openstack
--os-cloud gureum … vm1` finds servers by name in the admin project only, as
it does against Nova. Between commands the test waits for the server to
settle, as an operator looking at `openstack server list` would; only the
`--wait` commands wait by themselves.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scenarios.ops import ADMIN, CliServer, Operator, cloud

pytestmark = pytest.mark.e2e

MEMBER = "openstack --os-cloud gureum-demo "
ADMIN_CLI = "openstack --os-cloud gureum "


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "lifecycle", hosts=3,
               compute={"shutdown_timeout": 2, "shutdown_retry_interval": 0.5}) as o:
        yield o


@pytest.fixture(scope="module")
def member_vm1(op: Operator) -> dict[str, Any]:
    return op.boot("vm1")


@pytest.fixture(scope="module")
def admin_vm1(op: Operator) -> dict[str, Any]:
    return op.boot("vm1", cloud=ADMIN, host="c01")


def run(op: Operator, line: str, input: str | None = None) -> str:
    return op.run(line, input=input).stdout


def state(op: Operator, server: dict[str, Any], *statuses: str) -> tuple[str, str, str]:
    s = op.wait(server["id"], set(statuses))
    return s["status"], s["OS-EXT-SRV-ATTR:host"], s["flavor"]["original_name"]


def test_stop_start(op: Operator, member_vm1: dict[str, Any]) -> None:
    run(op, MEMBER + "server stop vm1")
    assert state(op, member_vm1, "SHUTOFF")[0] == "SHUTOFF"
    run(op, MEMBER + "server start vm1")
    assert state(op, member_vm1, "ACTIVE")[0] == "ACTIVE"


def test_hard_reboot(op: Operator, member_vm1: dict[str, Any]) -> None:
    out = run(op, MEMBER + "server reboot --hard --wait vm1")
    assert "Complete" in out
    assert op.show(member_vm1["id"])["status"] == "ACTIVE"


def test_resize_confirm(op: Operator, member_vm1: dict[str, Any]) -> None:
    assert "Complete" in run(op, MEMBER + "server resize --flavor m1.small --wait vm1")
    assert state(op, member_vm1, "VERIFY_RESIZE")[2] == "m1.small"
    run(op, MEMBER + "server resize confirm vm1")
    assert state(op, member_vm1, "ACTIVE")[2] == "m1.small"


def test_resize_revert(op: Operator, member_vm1: dict[str, Any]) -> None:
    assert "Complete" in run(op, MEMBER + "server resize --flavor m1.medium --wait vm1")
    assert state(op, member_vm1, "VERIFY_RESIZE")[2] == "m1.medium"
    run(op, MEMBER + "server resize revert vm1")
    assert state(op, member_vm1, "ACTIVE")[2] == "m1.small"


def test_cold_migrate_confirm(op: Operator, admin_vm1: dict[str, Any]) -> None:
    op.service("c03", status="disabled")  # keep c03 free for the live migration below
    try:
        assert "Complete" in run(op, ADMIN_CLI + "server migrate --wait vm1")
    finally:
        op.service("c03", status="enabled")
    assert state(op, admin_vm1, "VERIFY_RESIZE")[1] == "c02"
    run(op, ADMIN_CLI + "server resize confirm vm1")
    assert state(op, admin_vm1, "ACTIVE")[:2] == ("ACTIVE", "c02")


def test_live_migrate(op: Operator, admin_vm1: dict[str, Any]) -> None:
    assert "Complete" in run(op, ADMIN_CLI + "server migrate --live-migration --host c03 "
                                             "--wait vm1")
    assert state(op, admin_vm1, "ACTIVE")[:2] == ("ACTIVE", "c03")
    out = run(op, ADMIN_CLI + "server migration list --server vm1")
    rows = [ln for ln in out.splitlines() if "live-migration" in ln]
    assert len(rows) == 1 and "c02" in rows[0] and "c03" in rows[0] and "completed" in rows[0]


@pytest.mark.xfail(strict=True, raises=subprocess.TimeoutExpired, reason=(
    "python-openstackclient 10.5 bug: `server evacuate --wait` waits for "
    "success_status ['ACTIVE'] but osc_lib's wait_for_status compares the lowercased "
    "status ('active'), so it never returns although the server is ACTIVE"))
def test_evacuate_wait(op: Operator, admin_vm1: dict[str, Any]) -> None:
    run(op, ADMIN_CLI + "compute service set --down c03 nova-compute")
    try:
        # ACTIVE within the CLI's first 5 s poll interval; 10 s is plenty.
        op.run(ADMIN_CLI + "server evacuate --wait vm1", timeout=10)
    finally:
        after = state(op, admin_vm1, "ACTIVE")
        assert after[0] == "ACTIVE" and after[1] in ("c01", "c02")


def test_reset_state_and_hard_reboot(op: Operator, admin_vm1: dict[str, Any]) -> None:
    run(op, ADMIN_CLI + "server set --state error vm1", input="y\n")  # answers the prompt
    assert op.show(admin_vm1["id"])["status"] == "ERROR"
    run(op, ADMIN_CLI + "server set --state active --auto-approve vm1")
    assert op.show(admin_vm1["id"])["status"] == "ACTIVE"
    run(op, ADMIN_CLI + "server reboot --hard vm1")
    server = op.wait(admin_vm1["id"], {"ACTIVE"})
    assert server["OS-EXT-STS:power_state"] == 1


def test_shelve_unshelve(op: Operator, member_vm1: dict[str, Any]) -> None:
    run(op, MEMBER + "server shelve vm1")
    assert state(op, member_vm1, "SHELVED_OFFLOADED")[0] == "SHELVED_OFFLOADED"
    run(op, MEMBER + "server unshelve vm1")
    assert state(op, member_vm1, "ACTIVE")[0] == "ACTIVE"


def test_rescue_unrescue(op: Operator, member_vm1: dict[str, Any]) -> None:
    run(op, MEMBER + "server rescue vm1")
    assert state(op, member_vm1, "RESCUE")[0] == "RESCUE"
    run(op, MEMBER + "server unrescue vm1")
    assert state(op, member_vm1, "ACTIVE")[0] == "ACTIVE"


def test_event_list(op: Operator, member_vm1: dict[str, Any]) -> None:
    out = run(op, MEMBER + "server event list vm1")
    actions = [ln.split("|")[3].strip() for ln in out.splitlines()
               if ln.startswith("| req-")]
    assert actions == ["unrescue", "rescue", "unshelve", "shelve", "revertResize", "resize",
                       "confirmResize", "resize", "reboot", "start", "stop", "create"]
