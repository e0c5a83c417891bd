"""Hosts that fail under real guests: S2 with the destination unreachable, S13 host death.

A host's agent must be killable on its own, so here the compute agents are
their own processes, as in distributed mode: `gureum up --driver qemu --hosts 0`
(API, conductor, SQLite) on RabbitMQ, and `gureum compute --host c01` and
`--host c02`, both with one ``[compute] instances_path`` (shared storage). The
operator's commands are the real `openstack` CLI.

- S2: c02's agent stops answering (SIGSTOP) and a cold migration to it is
  asked for: the preflight cannot reach it, so the guest is never powered off;
  it keeps running on c01, ACTIVE, with the fault.
- S13: c01 dies (its agent and its QEMU processes killed with SIGKILL), the
  operator fences it (`compute service set --down`) and evacuates: the guest
  boots on c02 from the same disk (its boot counter goes on), and c01's agent
  started again does not start the stale copy.

Skipped, with the reason, when RabbitMQ is not running (scripts/services starts it).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_distributed import BUS_URL, Role, reachable
from tests.e2e_qemu.guests import (
    START_TIMEOUT,
    QemuCloud,
    boots,
    cleanup,
    process_host,
    qemu_processes,
    require_qemu,
    ticks,
    wait_gone,
)
from tests.harness import GureumUp
from tests.scenarios.ops import DEMO, CliServer

pytestmark = pytest.mark.e2e

RPC_TIMEOUT = 8.0  # how long the conductor waits for an agent that does not answer


@dataclass
class Apart:
    """`gureum up --hosts 0` and the compute agents started apart from it."""

    op: QemuCloud
    up: GureumUp
    agents: dict[str, Role]

    def logs(self) -> str:
        return "\n".join(f"--- {h} ---\n{r.tail()}" for h, r in self.agents.items())


@pytest.fixture(scope="module")
def apart(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Apart]:
    require_qemu()
    if not reachable(5672):
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (scripts/services starts it)")
    root: Path = tmp_path_factory.mktemp("qemu-apart")
    shared = root / "shared-instances"
    shared.mkdir()
    data = root / "data"
    up = GureumUp(data, hosts=0, extra_args=["--driver", "qemu", "--bus-url", BUS_URL],
                  settings={"bus": {"prefix": f"e2e-{uuid.uuid4().hex[:12]}"},
                            "compute": {"instances_path": str(shared),
                                        "rpc_timeout": RPC_TIMEOUT,
                                        "service_down_time": 30.0}})
    up.start(timeout=START_TIMEOUT)
    config = data.parent / f"{data.name}-gureum.toml"
    agents = {host: Role(host, ["compute", "--host", host, "--driver", "qemu", "--config",
                                str(config), "--data-dir", str(data), "--bus-url", BUS_URL],
                         f"gureum compute agent {host} running", root / f"{host}.log")
              for host in ("c01", "c02")}
    op = QemuCloud(up.url, up.clouds_yaml, cli, data, (shared,))
    try:
        for role in agents.values():
            role.start(timeout=120)
        wait_up(op, "c01", "c02")
        yield Apart(op, up, agents)
    finally:
        try:
            for role in agents.values():
                if role.proc is not None and role.proc.poll() is None:
                    os.kill(role.proc.pid, signal.SIGCONT)
            cleanup(op)
        finally:
            op.close()
            for role in agents.values():
                role.stop()
            up.stop(timeout=60)


def wait_up(op: QemuCloud, *hosts: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = op.cli_json("compute", "service", "list", "--service", "nova-compute")
        up = {r["Host"] for r in rows if r["State"] == "up" and r["Status"] == "enabled"}
        if set(hosts) <= up:
            return
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)


def test_s2_destination_unreachable_keeps_the_guest_running_on_its_source(
        apart: Apart) -> None:
    op = apart.op
    op.only_enabled("c01")
    sid = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                      "--nic", "none", "--wait", "s2", cloud=DEMO)["id"]
    op.only_enabled("c01", "c02")
    op.wait_boot(sid, 1)
    before = op.wait_tick(sid, 0)

    c02 = apart.agents["c02"]
    assert c02.proc is not None
    os.kill(c02.proc.pid, signal.SIGSTOP)  # alive, heartbeat recent, answering nothing
    try:
        op.cli("server", "migrate", "--host", "c02", sid)
        server = op.wait(sid, {"ACTIVE", "ERROR", "VERIFY_RESIZE"}, timeout=RPC_TIMEOUT * 6)
    finally:
        os.kill(c02.proc.pid, signal.SIGCONT)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"],
            server["OS-EXT-STS:power_state"]) == ("ACTIVE", "c01", 1), server
    shown = op.cli_json("server", "show", sid)
    assert "c02" in shown["fault"]["message"], shown.get("fault")
    # Never powered off: the same boot goes on ticking on c01.
    op.wait_tick(sid, before + 2)
    console = op.console(sid)
    assert console.count("GUREUM-READY") == 1 and ticks(console)[-1] > before
    assert [process_host(p) for p in qemu_processes(sid)] == ["c01"]
    events = {e["event"]: e["result"] for e in op.last_action(sid, "migrate")["events"]}
    assert "compute_resize_instance" not in events, events  # the power-off step never ran
    op.cli("server", "delete", "--wait", "s2", cloud=DEMO)
    assert op.leftovers(sid) == []
    wait_up(op, "c02")


def test_s13_host_death_then_evacuate_on_shared_storage(apart: Apart) -> None:
    op = apart.op
    op.only_enabled("c01")
    sid = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                      "--network", "private", "--wait", "vm1", cloud=DEMO)["id"]
    op.only_enabled("c01", "c02")
    assert op.wait_boot(sid, 1).boot_count == 1
    # A clean stop syncs the counter to the disk; the next boot's write is buffered.
    op.cli("server", "stop", "vm1", cloud=DEMO)
    op.wait(sid, {"SHUTOFF"}, timeout=90)
    op.cli("server", "start", "vm1", cloud=DEMO)
    assert op.wait_boot(sid, 2).boot_count == 2

    # c01 dies: its agent and its guests, all at once, no clean-up of any kind.
    apart.agents["c01"].kill()
    for proc in qemu_processes(sid):
        assert process_host(proc) == "c01"
        proc.send_signal(signal.SIGKILL)
    wait_gone(sid)

    op.cli("compute", "service", "set", "--down", "c01", "nova-compute")
    op.cli("server", "evacuate", "--host", "c02", sid)
    server = op.wait(sid, {"ACTIVE", "ERROR"}, timeout=120)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "c02"), server
    # The same disk, seen from c02: the counter on it goes on (a rebuilt disk says 1; the
    # second boot's unsynced write died with c01's QEMU, so 1 + 1).
    boot = op.wait_console(sid, _boot_after_evacuation, "the boot on c02")
    assert boot == 2
    assert [process_host(p) for p in qemu_processes(sid)] == ["c02"]
    (mig,) = op.cli_json("server", "migration", "list", "--server", sid)
    assert (mig["Type"], mig["Source Compute"], mig["Dest Compute"]) == (
        "evacuation", "c01", "c02")

    # c01 comes back: its agent destroys the stale copy instead of starting it, and
    # keeps the disk it shares with c02.
    disk_files = [p for p in apart.op.roots[1].rglob("*") if sid in str(p)]
    apart.agents["c01"].start(timeout=120)
    deadline = time.monotonic() + 30
    while (rows := op.cli_json("server", "migration", "list", "--host", "c01",
                               "--type", "evacuation")) and \
            {r["Status"] for r in rows} != {"completed"}:
        assert time.monotonic() < deadline, (rows, apart.logs())
        time.sleep(0.5)
    time.sleep(2)  # a heartbeat or two: nothing starts on c01
    assert [process_host(p) for p in qemu_processes(sid)] == ["c02"]
    assert all(p.exists() for p in disk_files), disk_files
    before = op.wait_tick(sid, 0)
    op.wait_tick(sid, before + 1)  # still running on c02
    op.cli("compute", "service", "set", "--up", "c01", "nova-compute")
    op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)
    assert op.leftovers(sid) == []


def _boot_after_evacuation(text: str) -> int | None:
    """The counter of the boot on c02 (the console log is beside the shared disk, so
    it follows the two boots on c01; a console started afresh has only this one)."""
    seen = boots(text)
    if seen and seen[-1].ready and len(seen) != 2:
        return seen[-1].boot_count
    return None
