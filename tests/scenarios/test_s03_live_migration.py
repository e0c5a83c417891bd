"""S3. Live migration, shared storage or not.

Shared storage is detected, not declared: hosts c01 and c02 of this cloud share
an instances directory (compute.fake_shared_storage, reported by their agents as
the same shared_storage_id), c03 has its own. `openstack server migrate
--live-migration [--host …]` moves memory only between c01 and c02 and the disk
too to or from c03 ("auto"); asking for the wrong kind is refused before the
guest is touched. The guest keeps running: MIGRATING, then ACTIVE with
OS-EXT-SRV-ATTR:host on the destination; `openstack server migration list`
shows the move; abort and force-complete work on a migration in progress
(migrations from c03 take 20 s here, compute.fake_delays "c03:live_migrate:20").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scenarios.ops import CliServer, Operator, cloud

pytestmark = pytest.mark.e2e

SLOW = 20.0  # seconds a live migration from c03 takes unless forced or aborted


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s03", hosts=3, compute={
            "fake_shared_storage": "c01,c02",
            "fake_delays": f"c03:live_migrate:{SLOW}"}) as o:
        yield o


def where(op: Operator, server_id: str) -> tuple[str, str, int]:
    s = op.show(server_id)
    return s["status"], s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-STS:power_state"]


def settle(op: Operator, server_id: str) -> dict[str, Any]:
    return op.wait(server_id, {"ACTIVE", "ERROR"})


def newest(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return max(rows, key=lambda m: m["Id"])


def test_live_migration_with_and_without_shared_storage(op: Operator) -> None:
    vm = op.boot("vm1", cloud="gureum", host="c01")

    # c01 and c02 share the instances directory: a block migration is refused …
    op.cli("server", "migrate", "--live-migration", "--host", "c02", "--block-migration",
           "vm1")
    server = settle(op, vm["id"])
    assert where(op, vm["id"]) == ("ACTIVE", "c01", 1)
    assert "shares the instances directory" in server["fault"]["message"]
    # … and the automatic choice moves memory only.
    op.cli("server", "migrate", "--live-migration", "--host", "c02", "--wait", "vm1")
    assert where(op, vm["id"]) == ("ACTIVE", "c02", 1)

    # c02 and c03 do not: a migration that needs shared storage is refused …
    op.cli("server", "migrate", "--live-migration", "--host", "c03", "--shared-migration",
           "vm1")
    server = settle(op, vm["id"])
    assert where(op, vm["id"]) == ("ACTIVE", "c02", 1)
    assert "do not share the instances directory" in server["fault"]["message"]
    # … and the automatic choice moves the disk too.
    op.cli("server", "migrate", "--live-migration", "--host", "c03", "--wait", "vm1")
    shown = op.cli_json("server", "show", "vm1")
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"],
            shown["OS-EXT-STS:power_state"]) == ("ACTIVE", "c03", 1)  # Running

    rows = op.cli_json("server", "migration", "list", "--server", "vm1")
    moves = sorted((r["Id"], r["Source Compute"], r["Dest Compute"], r["Status"],
                    r["Type"]) for r in rows)
    assert [m[1:] for m in moves] == [
        ("c01", "c02", "error", "live-migration"),
        ("c01", "c02", "completed", "live-migration"),
        ("c02", "c03", "error", "live-migration"),
        ("c02", "c03", "completed", "live-migration")]


def running_migration(op: Operator, name: str, timeout: float = 15) -> dict[str, Any]:
    """Poll `openstack server migration list --server NAME` until one is running."""
    deadline = time.monotonic() + timeout
    while True:
        rows = op.cli_json("server", "migration", "list", "--server", name,
                           "--status", "running")
        if rows:
            return newest(rows)
        assert time.monotonic() < deadline, "the live migration never started running"
        time.sleep(0.2)


def test_abort_keeps_the_guest_on_its_source(op: Operator) -> None:
    vm = op.boot("vm2", cloud="gureum", host="c03")
    started = time.monotonic()
    op.cli("server", "migrate", "--live-migration", "vm2")
    mig = running_migration(op, "vm2")
    assert where(op, vm["id"]) == ("MIGRATING", "c03", 1)  # still running while it moves
    op.cli("server", "migration", "abort", "vm2", str(mig["Id"]))
    settle(op, vm["id"])
    assert time.monotonic() - started < SLOW
    assert where(op, vm["id"]) == ("ACTIVE", "c03", 1)
    rows = op.cli_json("server", "migration", "list", "--server", "vm2")
    assert [(r["Id"], r["Status"]) for r in rows] == [(mig["Id"], "cancelled")]
    # Nothing in progress any more: the per-server list is empty.
    assert op.cli_json("server", "migration", "list", "--server", "vm2", "--status",
                       "running") == []


def test_force_complete_finishes_the_move_now(op: Operator) -> None:
    vm = op.boot("vm3", cloud="gureum", host="c03")
    started = time.monotonic()
    op.cli("server", "migrate", "--live-migration", "vm3")
    mig = running_migration(op, "vm3")
    op.cli("server", "migration", "force", "complete", "vm3", str(mig["Id"]))
    settle(op, vm["id"])
    assert time.monotonic() - started < SLOW
    status, host, power = where(op, vm["id"])
    assert (status, power) == ("ACTIVE", 1) and host in ("c01", "c02")
    (row,) = op.cli_json("server", "migration", "list", "--server", "vm3")
    assert (row["Id"], row["Source Compute"], row["Dest Compute"], row["Status"]) == (
        mig["Id"], "c03", host, "completed")
