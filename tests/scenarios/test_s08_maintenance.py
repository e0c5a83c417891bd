"""S8. Planned maintenance of a compute host.

The Ops Guide's way works command for command with the real `openstack` CLI:
disable the compute service with a reason, list the host's servers, live-migrate
each one away (block migration: these hosts share no instances directory),
enable the service again and migrate back. (Stopping and starting the compute
service in between cannot be expressed in `gureum up`, whose agents share one
process; S9 and S13 stop and start an agent in-process.)

`gureum host drain c01` does the whole drain as one operation the conductor runs
and records (compute/host_operations.py, workflows/drain.py), per-server policy
included (one server stopped instead of moved). The command is interrupted
twice — Ctrl-C pauses the drain after the instance in flight, kill -9 of the
command leaves the drain running in the cloud — and each time running it again
continues the same operation. A server that cannot move (in ERROR) is reported,
the others move, the command exits non-zero with what to do; once fixed, the
same command finishes the drain. `gureum host restore c01` enables the service,
moves everything back and starts the stopped server again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import BIN
from tests.scenarios.ops import CliServer, Operator, cloud

pytestmark = pytest.mark.e2e

MOVE = 2.0  # seconds a live migration from c01 takes (compute.fake_delays)


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s08", hosts=2,
               compute={"fake_delays": f"c01:live_migrate:{MOVE}"}) as o:
        yield o


def services(op: Operator) -> dict[str, dict[str, Any]]:
    rows = op.cli_json("compute", "service", "list", "--service", "nova-compute", "--long")
    return {r["Host"]: r for r in rows}


def on_host(op: Operator, host: str) -> dict[str, str]:
    """Name → status of the servers `openstack server list --host` shows."""
    rows = op.cli_json("server", "list", "--host", host, "--all-projects")
    return {r["Name"]: r["Status"] for r in rows}


def test_the_ops_guide_commands_work_verbatim(op: Operator) -> None:
    a = op.boot("guide-a", cloud="gureum", host="c01")
    b = op.boot("guide-b", cloud="gureum", host="c01")

    op.run("openstack --os-cloud gureum compute service set --disable --disable-reason "
           "maintenance c01 nova-compute")
    c01 = services(op)["c01"]
    assert (c01["Status"], c01["Disabled Reason"]) == ("disabled", "maintenance")

    assert on_host(op, "c01") == {"guide-a": "ACTIVE", "guide-b": "ACTIVE"}
    op.run(f"openstack --os-cloud gureum server migrate {a['id']} --live-migration "
           "--host c02")
    # No shared storage between c01 and c02: the guide's block migration, asked for.
    op.run(f"openstack --os-cloud gureum server migrate {b['id']} --live-migration "
           "--host c02 --block-migration")
    for server in (a, b):
        settled = op.wait(server["id"], {"ACTIVE", "ERROR"})
        assert (settled["status"], settled["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "c02")
    assert on_host(op, "c01") == {}

    op.run("openstack --os-cloud gureum compute service set --enable c01 nova-compute")
    assert services(op)["c01"]["Status"] == "enabled"
    op.run(f"openstack --os-cloud gureum server migrate {a['id']} --live-migration "
           "--host c01 --wait")
    assert op.show(a["id"])["OS-EXT-SRV-ATTR:host"] == "c01"
    for server in (a, b):
        op.delete(server["id"])


class Command:
    """`gureum host …` as the operator runs it, reading its lines as they come."""

    def __init__(self, op: Operator, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(op.clouds_yaml)
        self.proc = subprocess.Popen(
            [str(BIN / "gureum"), "host", *args, "--os-cloud", "gureum"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.stderr = ""

    def until(self, prefix: str, timeout: float = 30) -> str:
        """Read lines until one starts with ``prefix``."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r}: {self.lines}; "
                             f"{self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def finish(self, timeout: float = 60) -> tuple[int, list[str]]:
        out, self.stderr = self.proc.communicate(timeout=timeout)
        self.lines += out.splitlines()
        return self.proc.returncode, self.lines


def gureum_host(op: Operator, *args: str) -> tuple[int, list[str]]:
    return Command(op, *args).finish()


def operation(op: Operator, host: str) -> dict[str, Any]:
    """The host's newest drain or restore, with its items."""
    r = op.call("GET", f"/gureum-host-operations?host={host}")
    assert r.status_code == 200, r.text
    newest = r.json()["operations"][0]
    r = op.call("GET", f"/gureum-host-operations/{newest['id']}")
    assert r.status_code == 200, r.text
    return dict(r.json()["operation"])


def test_gureum_host_drain_and_restore(op: Operator) -> None:
    servers = {name: op.boot(name, cloud="gureum", host="c01")
               for name in ("vm1", "vm2", "vm3", "vm4")}
    op.cli("server", "set", "--state", "error", "--auto-approve", "vm4")  # this one cannot move

    # Ctrl-C: the drain pauses after the instance in flight.
    first = Command(op, "drain", "c01", "--per-server", "vm2=stop")
    assert first.until("c01: compute service disabled (maintenance)")
    first.until("1/")
    first.proc.send_signal(signal.SIGINT)
    rc, lines = first.finish()
    assert rc == 130 and "drain of c01 paused" in lines[-1], lines
    paused = operation(op, "c01")
    assert paused["status"] == "paused" and paused["counts"].get("pending"), paused
    c01 = services(op)["c01"]
    assert (c01["Status"], c01["Disabled Reason"]) == ("disabled", "maintenance")

    # Run again, then kill -9 of the command: the drain goes on in the cloud.
    second = Command(op, "drain", "c01")
    assert "continuing after" in second.until("c01: compute service disabled")
    second.proc.kill()
    second.finish()
    deadline = time.monotonic() + 30
    while operation(op, "c01")["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # Run again: the same operation, to its end. vm4 (ERROR) failed, the rest moved.
    rc, lines = gureum_host(op, "drain", "c01")
    assert rc == 1, lines
    drained = operation(op, "c01")
    assert drained["id"] == paused["id"] and drained["status"] == "failed"
    items = {i["name"]: i for i in drained["items"]}
    assert {n: (i["status"], i["outcome"], i["dest"]) for n, i in items.items()} == {
        "vm1": ("done", "live-migrated", "c02"), "vm2": ("done", "stopped", None),
        "vm3": ("done", "live-migrated", "c02"), "vm4": ("failed", None, None)}
    assert "vm_state error" in items["vm4"]["message"]
    assert any("vm4" in line and "vm_state error" in line for line in lines), lines
    assert "run `gureum host drain c01` again" in "\n".join(lines)
    assert on_host(op, "c01") == {"vm2": "SHUTOFF", "vm4": "ERROR"}

    # Fixed: the same command finishes the drain.
    op.cli("server", "set", "--state", "active", "--auto-approve", "vm4")
    rc, lines = gureum_host(op, "drain", "c01")
    assert rc == 0, lines
    assert any(line.startswith("4/4 vm4 live-migrated to c02") for line in lines), lines
    assert "c01 drained in" in lines[-1]
    assert on_host(op, "c01") == {"vm2": "SHUTOFF"}
    assert on_host(op, "c02") == {"vm1": "ACTIVE", "vm3": "ACTIVE", "vm4": "ACTIVE"}
    # Each move is the ordinary one: a live migration record per server.
    (mig,) = op.cli_json("server", "migration", "list", "--server", "vm1")
    assert (mig["Type"], mig["Source Compute"], mig["Dest Compute"], mig["Status"]) == (
        "live-migration", "c01", "c02", "completed")

    rc, lines = gureum_host(op, "restore", "c01")
    assert rc == 0, lines
    assert "c01 restored in" in lines[-1], lines
    assert services(op)["c01"]["Status"] == "enabled"
    assert on_host(op, "c01") == {name: "ACTIVE" for name in servers}
    restored = operation(op, "c01")
    assert restored["kind"] == "restore" and restored["drain_id"] == drained["id"]
    assert sorted((i["name"], i["outcome"]) for i in restored["items"]) == [
        ("vm1", "live-migrated"), ("vm2", "started"), ("vm3", "live-migrated"),
        ("vm4", "live-migrated")]
