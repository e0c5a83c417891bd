"""S13. A compute host dies for good.

Instead of `update instances set host='c02'`, `update ml2_port_bindings …` and a
hard reboot of every instance, the operator fences the host (`openstack compute
service set --down c01 nova-compute`) and runs `openstack server evacuate` per
server: the server is rebuilt on another host (the disk reused on shared
storage, otherwise rebuilt from its image) and its ports are bound there. An
evacuation while the host is still up is refused ("still in use"). When c01
comes back, its agent destroys its stale copies instead of starting them:
never two running copies.

The first half runs against `gureum up`. The host coming back cannot be
expressed there (its agents share the process and an in-memory bus), so the
second half stops and restarts one agent of an in-process cloud
(tests/scenarios/inproc.py) and drives it with the same CLI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gureum.compute import states
from tests.harness import InProcessCloud
from tests.scenarios.inproc import copies, drivers, host_down, host_up, inprocess
from tests.scenarios.ops import DEMO, CliServer, Operator, cloud

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s13", hosts=3) as o:
        yield o


def network_id(op: Operator, name: str = "private") -> str:
    r = op.api.request("GET", f"/network/v2.0/networks?name={name}", op.tokens[DEMO])
    (net,) = r.json()["networks"]
    return str(net["id"])


def port_hosts(op: Operator, server_id: str) -> list[str]:
    ports = op.cli_json("port", "list", "--server", server_id, "--long")
    return [op.cli_json("port", "show", p["ID"])["binding_host_id"] for p in ports]


def services(op: Operator) -> dict[str, dict[str, Any]]:
    rows = op.cli_json("compute", "service", "list", "--service", "nova-compute")
    return {r["Host"]: r for r in rows}


def test_evacuate_from_a_fenced_host(op: Operator) -> None:
    vm = op.boot("vm1", cloud="gureum", host="c01",
                 networks=[{"uuid": network_id(op)}])
    assert port_hosts(op, vm["id"]) == ["c01"]

    # The host is up: nothing to evacuate from.
    proc = op.cli("server", "evacuate", "vm1", check=False)
    assert proc.returncode != 0 and "still in use" in proc.stderr, proc

    op.cli("compute", "service", "set", "--down", "c01", "nova-compute")
    assert services(op)["c01"]["State"] == "down"
    # (`--wait` is left out: python-openstackclient 10.5 never sees the evacuation
    # finish, see test_lifecycle_cli.py; the server is watched over the API instead.)
    op.cli("server", "evacuate", "vm1")
    op.wait(vm["id"], {"ACTIVE", "ERROR"})
    shown = op.cli_json("server", "show", "vm1")
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
    dest = shown["OS-EXT-SRV-ATTR:host"]
    assert dest in ("c02", "c03")
    assert port_hosts(op, vm["id"]) == [dest]  # the port followed the server
    (mig,) = op.cli_json("server", "migration", "list", "--server", "vm1")
    assert (mig["Type"], mig["Source Compute"], mig["Dest Compute"], mig["Status"]) == (
        "evacuation", "c01", dest, "done")
    assert op.cli_json("server", "event", "list", "vm1")[0]["Action"] == "evacuate"

    # The fence stays until c01's compute service has started again and cleaned up
    # (Nova's rule: forcing it up now would let it start the stale copy).
    proc = op.cli("compute", "service", "set", "--up", "c01", "nova-compute", check=False)
    assert proc.returncode != 0
    r = op.call("PUT", f"/os-services/{services(op)['c01']['ID']}", version="2.53",
                json={"forced_down": False})
    assert r.status_code == 400 and "`done` evacuation migration records" in r.text
    assert services(op)["c01"]["State"] == "down"


# -- the dead host comes back (in-process) --------------------------------------------------

@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory, cli: CliServer
           ) -> Iterator[tuple[InProcessCloud, Operator]]:
    with inprocess(tmp_path_factory, cli, "s13-back", hosts=3,
                   compute={"fake_shared_storage": "c01,c02"}) as pair:
        yield pair


def test_the_dead_host_destroys_its_stale_copies_when_it_comes_back(
        inproc: tuple[InProcessCloud, Operator]) -> None:
    c, op = inproc
    shared = op.boot("vm-shared", cloud="gureum", host="c01")
    local = op.boot("vm-local", cloud="gureum", host="c01")

    c01 = host_down(c, "c01")  # the host dies; its guests' state is frozen with it
    op.cli("compute", "service", "set", "--down", "c01", "nova-compute")
    op.cli("server", "evacuate", "--host", "c02", "vm-shared")
    op.cli("server", "evacuate", "--host", "c03", "vm-local")
    for server in (shared, local):
        op.wait(server["id"], {"ACTIVE", "ERROR"})
    assert op.show(shared["id"])["OS-EXT-SRV-ATTR:host"] == "c02"
    assert op.show(local["id"])["OS-EXT-SRV-ATTR:host"] == "c03"
    # c02 sees c01's instances directory: the disk was reused, not rebuilt …
    calls = drivers(c)
    assert ("finish_migration", shared["id"]) in calls["c02"].calls
    assert ("spawn", shared["id"]) not in calls["c02"].calls
    # … c03 does not: rebuilt from the image.
    assert ("spawn", local["id"]) in calls["c03"].calls
    # The dead host still holds its (running, as it died) copies.
    assert copies(c, shared["id"]) == {"c01": states.RUNNING, "c02": states.RUNNING}

    # c01 comes back (as an operator would, before lifting the fence) with its
    # guests still defined: its agent destroys them instead of starting them.
    host_up(c, "c01", c01, resume_guests_state_on_host_boot=True)
    assert copies(c, shared["id"]) == {"c02": states.RUNNING}
    assert copies(c, local["id"]) == {"c03": states.RUNNING}
    assert ("destroy", shared["id"]) in c01.calls and ("destroy", local["id"]) in c01.calls
    # The disk c01 shares with c02 stays (c02's guest runs on it); its own copy goes.
    assert Path(drivers(c)["c02"].guests[shared["id"]].disks[0]).is_file()
    assert c01.instances_dir is not None
    assert not (c01.instances_dir / local["id"]).exists()
    op.cli("compute", "service", "set", "--up", "c01", "nova-compute")
    deadline = time.monotonic() + 10
    while (rows := op.cli_json("server", "migration", "list", "--host", "c01",
                               "--type", "evacuation")) and \
            {r["Status"] for r in rows} != {"completed"}:
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    assert sorted(r["Dest Compute"] for r in rows) == ["c02", "c03"]
    for server in (shared, local):
        assert op.show(server["id"])["status"] == "ACTIVE"
