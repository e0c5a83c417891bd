"""`kill -9` of `gureum up` (API, conductor and agent in one process) in the middle of
a NIC hot-plug, a hot-unplug, and the unplug of a port deleted under a server; then a
restart on the same data directory.

The host's (fake) driver is slowed down on the step, so the process dies while the
agent is plugging or unplugging. Afterwards the server is ACTIVE, nothing of the
change is left in flight, and the guest and the database agree: an attach is
finished (the port attached exactly once, one NIC for it in the guest), a detach or
an unplug is finished (no NIC left in the guest without a port; a port the user
made is free again). Before the fix nothing took such work up: the port stayed
bound to the server while the guest had no NIC (attach), and a deleted port's NIC
stayed in the guest for good.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gureum.compute.models import InterfaceOperation
from gureum.db import Database
from tests.harness import GureumUp
from tests.scenarios.ops import ADMIN, DEMO, Operator

pytestmark = pytest.mark.e2e

# The agent's calls time out soon: nothing in these rounds waits long for an answer.
COMPUTE = {"rpc_timeout": 3.0}


def guest_ports(data: Path, server_id: str) -> list[str]:
    """The port of each NIC in the (fake) guest's definition on c01."""
    path = data / "hosts" / "c01" / "guests" / f"{server_id}.json"
    guest: dict[str, Any] = json.loads(path.read_text())
    return [str(p["port_id"]) for p in guest["spec"]["network_info"]]


def operations(data: Path) -> int:
    db = Database(f"sqlite:///{data / 'gureum.db'}")
    try:
        with db.session(write=False) as s:
            return int(s.scalar(select(func.count()).select_from(InterfaceOperation)) or 0)
    finally:
        db.dispose()


def until(fn: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "never converged"
        time.sleep(0.2)
    return value


def start(data: Path, delays: str = "", port: int | None = None) -> GureumUp:
    up = GureumUp(data, hosts=1, settings={"compute": {**COMPUTE, "fake_delays": delays}})
    if port is not None:
        up.port = port
    return up.start()


def kill(up: GureumUp) -> None:
    assert up.proc is not None
    up.proc.kill()
    up.proc.wait()
    up.stop()


def in_background(fn: Any) -> None:
    """A request whose answer never comes (the process dies under it)."""
    def run() -> None:
        try:
            fn()
        except Exception:  # the connection breaks: that is the point
            pass
    threading.Thread(target=run, daemon=True).start()


@pytest.mark.parametrize("step", ["attach", "detach", "port-delete"])
def test_sigkill_in_the_middle_of_a_nic_change_converges(tmp_path: Path, step: str) -> None:
    data = tmp_path / "data"
    delay = {"attach": "attach_interface", "detach": "detach_interface",
             "port-delete": "detach_interface"}[step]
    # The attach round is slowed from the start; the others attach for real first.
    first = start(data, delays=f"c01:{delay}:60" if step == "attach" else "")
    op = Operator(first.url, first.clouds_yaml)
    try:
        net = op.cli_json("network", "show", "private")["id"]
        sid = op.boot("vm", networks=[{"uuid": net}])["id"]
        (boot_port,) = guest_ports(data, sid)
        port = op.cli_json("port", "create", "--network", "private", "extra", cloud=DEMO)
        attach = {"interfaceAttachment": {"port_id": port["id"]}}
        if step == "attach":
            in_background(lambda: op.call("POST", f"/servers/{sid}/os-interface", DEMO,
                                          json=attach))
            until(lambda: operations(data) == 1, timeout=20)
            time.sleep(0.5)  # the agent is now in the (slow) driver call
        else:
            r = op.call("POST", f"/servers/{sid}/os-interface", DEMO, json=attach)
            assert r.status_code == 200, r.text
    finally:
        op.close()
        if step == "attach":
            kill(first)
        else:
            assert first.stop() == 0
    if step != "attach":
        second = start(data, delays=f"c01:{delay}:60", port=first.port)
        op = Operator(second.url, second.clouds_yaml)
        try:
            if step == "detach":
                in_background(lambda: op.call(
                    "DELETE", f"/servers/{sid}/os-interface/{port['id']}", DEMO))
            else:
                r = op.api.request("DELETE", f"/network/v2.0/ports/{port['id']}",
                                   op.tokens[DEMO])
                assert r.status_code == 204, r.text
            until(lambda: operations(data) == 1, timeout=20)
            time.sleep(0.5)
        finally:
            op.close()
            kill(second)

    last = start(data, port=first.port)
    op = Operator(last.url, last.clouds_yaml)
    try:
        until(lambda: operations(data) == 0)
        server = op.wait(sid, {"ACTIVE"})
        listed = [i["port_id"] for i in op.call("GET", f"/servers/{sid}/os-interface",
                                                DEMO).json()["interfaceAttachments"]]
        in_guest = guest_ports(data, sid)
        assert sorted(listed) == sorted(in_guest), (listed, in_guest)  # no NIC without a port
        assert len(set(in_guest)) == len(in_guest)  # none plugged twice
        if step == "attach":
            assert sorted(in_guest) == sorted([boot_port, port["id"]])
        else:
            assert in_guest == [boot_port]
        shown = op.api.request("GET", f"/network/v2.0/ports/{port['id']}", op.tokens[ADMIN])
        if step == "port-delete":
            assert shown.status_code == 404
        elif step == "detach":
            assert shown.json()["port"]["device_id"] == ""
        else:
            assert shown.json()["port"]["device_id"] == sid
        addresses = {a["addr"] for n in server["addresses"].values() for a in n}
        assert (port["fixed_ips"][0]["ip_address"] in addresses) == (step == "attach")
    finally:
        op.close()
        assert last.stop() == 0
