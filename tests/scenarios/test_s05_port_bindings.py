"""S5. Port bindings follow the instance.

After every move — live migration, cold migration (confirmed), resize and its
revert, evacuation — `openstack port show` gives the server's host as
``binding_host_id``, with ``vif_details`` computed for that host (never an
empty copy of an old row). A live migration makes an INACTIVE binding on the
destination before the move (``GET /v2.0/ports/{id}/bindings`` shows it while
the guest moves), activates it at cut-over and deletes the source's; a failed
or aborted one leaves the source's binding active and nothing else.

`gureum doctor` finds a binding an upgrade left without its ``vif_details`` (no
``port_filter``) and ``--fix`` computes it again for the server's host.

Hosts: c01 to c04 on the fake driver; live migrations from c03 take 20 s (so one
can be watched and aborted), those from c04 fail.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gureum.config import load_settings
from tests.harness import BIN
from tests.scenarios.ops import DEMO, CliServer, Operator, cloud

pytestmark = pytest.mark.e2e

SLOW = 20.0


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s05", hosts=4, compute={
            "fake_delays": f"c03:live_migrate:{SLOW}",
            "fake_failures": "c04:live_migrate"}) as o:
        yield o


def network_id(op: Operator, name: str = "private") -> str:
    r = op.api.request("GET", f"/network/v2.0/networks?name={name}", op.tokens[DEMO])
    (net,) = r.json()["networks"]
    return str(net["id"])


def boot(op: Operator, name: str, host: str) -> dict[str, Any]:
    return op.boot(name, cloud="gureum", host=host, networks=[{"uuid": network_id(op)}])


def ports(op: Operator, server: str) -> list[dict[str, Any]]:
    """`openstack port list --server S --long`, then `port show` of each (as admin)."""
    rows = op.cli_json("port", "list", "--server", server, "--long")
    assert rows, f"{server} has no ports"
    return [op.cli_json("port", "show", row["ID"]) for row in rows]


def bindings(op: Operator, port_id: str) -> list[tuple[str, str]]:
    r = op.api.request("GET", f"/network/v2.0/ports/{port_id}/bindings",
                       op.tokens["gureum"])
    assert r.status_code == 200, r.text
    return sorted((b["host"], b["status"]) for b in r.json()["bindings"])


def assert_bound(op: Operator, server: str, host: str) -> None:
    shown = op.cli_json("server", "show", server)
    assert shown["OS-EXT-SRV-ATTR:host"] == host
    for port in ports(op, server):
        assert port["binding_host_id"] == host, port
        # Computed for the host (never an empty copy): the fake hosts' network agents
        # run the noop data plane, which enforces no security groups.
        assert port["binding_vif_details"]["bridge_name"] == "br-int", port
        assert port["binding_vif_details"]["port_filter"] is False, port
        assert port["status"] == "ACTIVE"
        assert bindings(op, port["id"]) == [(host, "ACTIVE")]


def test_live_migration_moves_the_binding(op: Operator) -> None:
    boot(op, "vm1", "c01")
    assert_bound(op, "vm1", "c01")
    op.run("openstack --os-cloud gureum server migrate --live-migration --host c02 --wait vm1")
    listed = op.cli("port", "list", "--server", "vm1", "--long").stdout
    (port,) = ports(op, "vm1")
    assert port["id"] in listed
    assert_bound(op, "vm1", "c02")
    assert op.cli_json("port", "list", "--server", "vm1", "--host", "c02")[0]["ID"] == \
        port["id"]


def test_a_moving_guest_has_an_inactive_binding_on_its_destination(op: Operator) -> None:
    vm = boot(op, "vm-slow", "c03")
    op.cli("server", "migrate", "--live-migration", "--host", "c01", "vm-slow")
    (port,) = ports(op, "vm-slow")
    deadline = time.monotonic() + 15
    while bindings(op, port["id"]) != [("c01", "INACTIVE"), ("c03", "ACTIVE")]:
        assert time.monotonic() < deadline, bindings(op, port["id"])
        time.sleep(0.2)
    assert op.cli_json("port", "show", port["id"])["binding_host_id"] == "c03"
    rows = []
    while not rows:
        rows = op.cli_json("server", "migration", "list", "--server", "vm-slow",
                           "--status", "running")
        assert time.monotonic() < deadline
    op.cli("server", "migration", "abort", "vm-slow", str(rows[0]["Id"]))
    op.wait(vm["id"], {"ACTIVE"})
    assert_bound(op, "vm-slow", "c03")  # the source's binding, and no leftover


def test_failed_live_migration_leaves_the_source_binding(op: Operator) -> None:
    vm = boot(op, "vm-fail", "c04")
    op.cli("server", "migrate", "--live-migration", "--host", "c01", "vm-fail")
    deadline = time.monotonic() + 30
    while True:
        shown = op.show(vm["id"])
        if shown["status"] == "ACTIVE" and not shown["OS-EXT-STS:task_state"] and \
                op.cli_json("server", "migration", "list", "--server", "vm-fail"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    (mig,) = op.cli_json("server", "migration", "list", "--server", "vm-fail")
    assert mig["Status"] == "error"
    assert_bound(op, "vm-fail", "c04")


def test_cold_migration_and_resize_rebind(op: Operator) -> None:
    boot(op, "vm-cold", "c01")
    op.cli("server", "migrate", "--host", "c02", "--wait", "vm-cold")
    assert_bound(op, "vm-cold", "c02")  # VERIFY_RESIZE: it runs on c02 already
    op.cli("server", "migration", "confirm", "vm-cold")
    op.wait(op.cli_json("server", "show", "vm-cold")["id"], {"ACTIVE"})
    assert_bound(op, "vm-cold", "c02")
    # A resize and its revert: back on the source, bound there again.
    op.cli("server", "resize", "--flavor", "m1.small", "--wait", "vm-cold")
    moved_to = op.cli_json("server", "show", "vm-cold")["OS-EXT-SRV-ATTR:host"]
    assert moved_to != "c02"
    assert_bound(op, "vm-cold", moved_to)
    op.cli("server", "resize", "revert", "vm-cold")
    op.wait(op.cli_json("server", "show", "vm-cold")["id"], {"ACTIVE"})
    assert_bound(op, "vm-cold", "c02")


def test_evacuation_rebinds(op: Operator) -> None:
    vm = boot(op, "vm-evac", "c02")
    op.cli("compute", "service", "set", "--down", "c02", "nova-compute")
    op.cli("server", "evacuate", "--host", "c01", "vm-evac")
    op.wait(vm["id"], {"ACTIVE"})
    assert_bound(op, "vm-evac", "c01")


def test_doctor_repairs_a_binding_an_upgrade_emptied(op: Operator) -> None:
    boot(op, "vm-doc", "c01")
    (port,) = ports(op, "vm-doc")
    data_dir = op.clouds_yaml.parent
    config = data_dir.parent / f"{data_dir.name}-gureum.toml"
    engine = sa.create_engine(load_settings(str(config), data_dir=str(data_dir)).database_url)
    with engine.begin() as conn:  # what the upgrade in S5's story left behind
        conn.execute(sa.text("UPDATE network_port_bindings SET vif_details = '{}' "
                             "WHERE port_id = :p"), {"p": port["id"]})
    engine.dispose()
    assert not op.cli_json("port", "show", port["id"])["binding_vif_details"]

    def doctor(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "gureum"), "doctor", "--data-dir", str(data_dir),
                               "--config", str(config), *flags],
                              capture_output=True, text=True, timeout=60)

    found = doctor()
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"binding-vif: port {port['id']} of server" in found.stdout
    fixed = doctor("--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert_bound(op, "vm-doc", "c01")
    again = doctor()
    assert again.returncode == 0 and "no problems found" in again.stdout, again.stdout
