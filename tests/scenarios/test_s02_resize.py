"""S2. Resize without the trap.

The operator's story: `resize --wait` fails, the guest is already shut down and
the instance sits in ERROR. In gureum a preflight on the destination runs
before the guest is powered off, so a failure there leaves the server running
and ACTIVE; a failure after the power-off rolls back (the guest runs again on
its source, ACTIVE); either way the reason is in `fault` of `openstack server
show` and in `openstack server event list`. Only an unrecoverable failure
leaves ERROR, and `openstack server set --state active` + `openstack server
reboot --hard` recover it.

One cloud of four fake hosts, each broken in its own way
(compute.fake_failures): c02 fails every preflight, c03 every disk import, c04
cannot power a guest on. Which host a move goes to is steered as an operator
would, by disabling the other compute services.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.scenarios.ops import ADMIN, DEMO, CliServer, Operator, cli_events, cloud, events

pytestmark = pytest.mark.e2e

FAILURES = "c02:preflight,c03:import_disks,c04:power_on"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s02", hosts=4, compute={
            "fake_failures": FAILURES, "shutdown_timeout": 2,
            "shutdown_retry_interval": 0.5}) as o:
        yield o


@pytest.fixture(scope="module")
def vm1(op: Operator) -> dict[str, Any]:
    """The member's server, on c01."""
    op.only_enabled("c01")
    return op.boot("vm1")


def where(op: Operator, server_id: str) -> tuple[str, str, int, str]:
    s = op.show(server_id)
    return (s["status"], s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-STS:power_state"],
            s["flavor"]["original_name"])


def last_migration(op: Operator, server_id: str) -> dict[str, Any]:
    return max(op.migrations(server_id), key=lambda m: m["id"])


def test_preflight_failure_leaves_the_server_running_on_its_source(
        op: Operator, vm1: dict[str, Any]) -> None:
    op.only_enabled("c01", "c02")  # the only possible destination fails its preflight
    proc = op.cli("server", "resize", "--flavor", "m1.small", "--wait", "vm1", cloud=DEMO,
                  check=False)
    # The CLI either reports the error or sees the server ACTIVE again.
    assert proc.returncode != 0 or "Complete" in proc.stdout, proc
    assert where(op, vm1["id"]) == ("ACTIVE", "c01", 1, "m1.tiny")

    shown = op.cli_json("server", "show", "vm1", cloud=DEMO)
    assert shown["status"] == "ACTIVE"
    assert "preflight" in shown["fault"]["message"], shown.get("fault")
    assert "preflight fails on c02" in shown["fault"]["message"]

    resize = cli_events(op, "vm1", DEMO, "resize")
    got = {e["event"]: e["result"] for e in resize["events"]}
    assert got["compute_prep_resize"] == "Error"
    assert "compute_resize_instance" not in got  # the guest was never powered off
    assert (last_migration(op, vm1["id"])["status"],
            last_migration(op, vm1["id"])["dest_compute"]) == ("error", "c02")


def test_failure_after_power_off_rolls_back_to_the_source(
        op: Operator, vm1: dict[str, Any]) -> None:
    op.only_enabled("c01", "c03")  # c03 passes preflight, then cannot import the disk
    op.cli("server", "resize", "--flavor", "m1.small", "vm1", cloud=DEMO)
    op.wait(vm1["id"], {"ACTIVE", "VERIFY_RESIZE", "ERROR"})
    assert where(op, vm1["id"]) == ("ACTIVE", "c01", 1, "m1.tiny")  # running again

    shown = op.cli_json("server", "show", "vm1", cloud=DEMO)
    assert "import_disks fails on c03" in shown["fault"]["message"], shown.get("fault")
    assert "rolled back" in shown["fault"]["message"]
    resize = cli_events(op, "vm1", DEMO, "resize")
    got = {e["event"]: e["result"] for e in resize["events"]}
    assert got["compute_prep_resize"] == "Success"
    assert got["compute_resize_instance"] == "Success"  # it was powered off …
    assert "Error" in got.values()  # … and the step after that failed
    details = [e["details"] for e in op.last_action(vm1["id"], "resize")["events"]
               if e["result"] == "Error"]
    assert any("import_disks fails on c03" in (d or "") for d in details), details


def test_resize_confirm_and_revert(op: Operator, vm1: dict[str, Any]) -> None:
    """(`resize --wait` is in test_lifecycle_cli; here the API is polled, faster.)"""
    op.only_enabled("c01", "c04")
    op.cli("server", "resize", "--flavor", "m1.small", "vm1", cloud=DEMO)
    op.wait(vm1["id"], {"VERIFY_RESIZE", "ACTIVE", "ERROR"})
    assert where(op, vm1["id"]) == ("VERIFY_RESIZE", "c04", 1, "m1.small")
    op.cli("server", "resize", "confirm", "vm1", cloud=DEMO)
    server = op.wait(vm1["id"], {"ACTIVE"})
    assert where(op, vm1["id"]) == ("ACTIVE", "c04", 1, "m1.small")
    flavor = server["flavor"]
    assert (flavor["ram"], flavor["disk"], flavor["vcpus"]) == (2048, 20, 1)
    assert "fault" not in op.cli_json("server", "show", "vm1", cloud=DEMO)
    assert last_migration(op, vm1["id"])["status"] == "confirmed"

    # c04 → c01 as m1.medium, then back to c04 as it was.
    op.cli("server", "resize", "--flavor", "m1.medium", "vm1", cloud=DEMO)
    op.wait(vm1["id"], {"VERIFY_RESIZE", "ACTIVE", "ERROR"})
    assert where(op, vm1["id"]) == ("VERIFY_RESIZE", "c01", 1, "m1.medium")
    op.cli("server", "resize", "revert", "vm1", cloud=DEMO)
    op.wait(vm1["id"], {"ACTIVE"})
    assert where(op, vm1["id"]) == ("ACTIVE", "c04", 1, "m1.small")
    assert last_migration(op, vm1["id"])["status"] == "reverted"
    actions = [row["Action"] for row in op.cli_json("server", "event", "list", "vm1",
                                                    cloud=DEMO)]
    assert actions[:4] == ["revertResize", "resize", "confirmResize", "resize"]


def test_cold_migration_and_confirm(op: Operator) -> None:
    op.only_enabled("c01")
    vm2 = op.boot("vm2", cloud=ADMIN)
    op.only_enabled("c01", "c04")
    op.cli("server", "migrate", "--wait", "vm2")
    assert where(op, vm2["id"]) == ("VERIFY_RESIZE", "c04", 1, "m1.tiny")
    op.cli("server", "migration", "confirm", "vm2")
    op.wait(vm2["id"], {"ACTIVE"})
    assert where(op, vm2["id"]) == ("ACTIVE", "c04", 1, "m1.tiny")
    mig = last_migration(op, vm2["id"])
    assert (mig["migration_type"], mig["source_compute"], mig["dest_compute"],
            mig["status"]) == ("migration", "c01", "c04", "confirmed")


def test_unrecoverable_failure_leaves_error_and_set_state_plus_hard_reboot_recover(
        op: Operator) -> None:
    op.only_enabled("c04")
    vm3 = op.boot("vm3", cloud=ADMIN)
    # To c03, whose disk import fails; rolling back needs c04 to power the guest on
    # again, and it cannot: nothing more can be undone automatically.
    op.only_enabled("c03", "c04")
    proc = op.cli("server", "resize", "--flavor", "m1.small", "--wait", "vm3", check=False)
    assert proc.returncode != 0 and "Error resizing server" in proc.stderr, proc
    shown = op.cli_json("server", "show", "vm3")
    assert shown["status"] == "ERROR"
    assert "import_disks fails on c03" in shown["fault"]["message"]
    assert "power_on fails on c04" in shown["fault"]["message"]

    op.cli("server", "set", "--state", "active", "--auto-approve", "vm3")
    op.cli("server", "reboot", "--hard", "vm3")
    op.wait(vm3["id"], {"ACTIVE"})
    assert where(op, vm3["id"]) == ("ACTIVE", "c04", 1, "m1.tiny")
    assert "fault" not in op.cli_json("server", "show", "vm3")
    reboot = events(op.last_action(vm3["id"], "reboot"))
    assert reboot["compute_reboot_instance"]["result"] == "Success"


def test_claims_add_up_after_all_that(op: Operator, vm1: dict[str, Any]) -> None:
    """vm1 (m1.small) and vm2, vm3 (m1.tiny) live on c04; nothing is left claimed
    elsewhere by the failed, reverted and rolled-back moves."""
    used = {h["hypervisor_hostname"]: h["memory_mb_used"] for h in op.call(
        "GET", "/os-hypervisors/detail", version="2.33").json()["hypervisors"]}
    reserved = 512
    assert used == {"c01": reserved, "c02": reserved, "c03": reserved,
                    "c04": reserved + 2048 + 512 + 512}, used
