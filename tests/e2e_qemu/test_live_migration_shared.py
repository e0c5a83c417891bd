"""Live migration with shared instances: `gureum up --driver qemu --hosts 2` whose two
hosts have one ``[compute] instances_path`` (as one NFS export mounted on both).

The hosts detect the sharing with their marker files, so only memory moves: the
destination's QEMU opens the same disk file. The guest's ticks go on on c02 (no
boot there), the source's QEMU process is gone, and the migration record holds
the downtime QEMU measured.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e_qemu.guests import (
    QemuCloud,
    process_host,
    qemu_cloud,
    qemu_processes,
    ticks,
    wait_gone,
)
from tests.e2e_qemu.test_lifecycle import assert_downtime
from tests.scenarios.ops import DEMO, CliServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[QemuCloud]:
    with qemu_cloud(tmp_path_factory, cli, "qemu-shared", hosts=2, shared=True) as o:
        yield o


def test_live_migration_on_shared_instances_moves_memory_only(op: QemuCloud) -> None:
    op.only_enabled("c01")
    vm = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                     "--network", "private", "--wait", "vm1", cloud=DEMO)
    op.only_enabled("c01", "c02")
    sid = vm["id"]
    op.wait_boot(sid, 1)
    (source_proc,) = qemu_processes(sid)
    assert process_host(source_proc) == "c01"
    disk = next(a for a in source_proc.info["cmdline"] if a.startswith("file="))
    disk = disk.split(",")[0]  # file=<path>

    before = op.wait_tick(sid, 0)
    op.cli("server", "migrate", "--live-migration", "--host", "c02", "--wait", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == "c02"
    after = op.wait_tick(sid, before + 2)
    console = op.console(sid)
    assert console.count("GUREUM-READY") <= 1 and ticks(console)[-1] == after
    wait_gone(sid, host="c01")
    (dest_proc,) = qemu_processes(sid)
    assert process_host(dest_proc) == "c02"
    # The very same disk file: nothing was copied.
    assert any(a.split(",")[0] == disk for a in dest_proc.info["cmdline"])
    (mig,) = op.migrations(sid)
    assert (mig["migration_type"], mig["status"]) == ("live-migration", "completed")
    assert_downtime(op, sid)
    op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)
    assert op.leftovers(sid) == []
