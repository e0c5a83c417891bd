"""NIC changes when one role dies on its own: `gureum api`, `gureum conductor` and
`gureum compute --host c01` as separate processes on RabbitMQ and PostgreSQL (or
MariaDB), as tests/e2e/test_distributed.py starts them.

1. The compute agent is SIGKILLed while it plugs a NIC (a slow fake driver). The API
   gets no answer and says 409; the attach is rolled back once the agent is back: its
   NIC is not in the guest and the port is free (nothing half-attached).
2. The conductor is SIGKILLed while the agent unplugs the NIC of a port deleted under
   the server (``DELETE /v2.0/ports/{id}``), and the agent before it is done. A
   restarted conductor takes the unplug up again: the guest has no NIC for the
   deleted port, and nothing is left in flight.

Skipped, as test_distributed.py is, when RabbitMQ or both databases are not running.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.e2e.test_distributed import (  # noqa: F401 - fixtures
    NO_DATABASE,
    Distributed,
    cli,
    database_url,
    wait_for,
)
from tests.harness import TEST_SETTINGS, toml_text
from tests.scenarios.ops import DEMO, CliServer, Operator

SLOW = 20.0  # seconds the fake driver takes to plug a NIC before the agent is killed


def config(cloud: Distributed, name: str, delays: str) -> Path:
    settings: dict[str, dict[str, Any]] = {k: dict(v) for k, v in TEST_SETTINGS.items()}
    settings["server"] = {"port": cloud.port}
    settings["bus"] = {"prefix": cloud.prefix}
    settings["compute"].update(fake_delays=delays, rpc_timeout=3.0)
    path = cloud.root / f"{name}.toml"
    path.write_text(toml_text(settings))
    return path


def in_flight(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM compute_interface_operations")).scalar() or 0)
    finally:
        engine.dispose()


def guest_ports(cloud: Distributed, server_id: str) -> list[str]:
    (path,) = cloud.data.rglob(f"c01/guests/{server_id}.json")
    return [str(p["port_id"]) for p in json.loads(path.read_text())["spec"]["network_info"]]


def test_an_agent_or_conductor_killed_in_a_nic_change(
        tmp_path: Path, database_url: str, cli: CliServer) -> None:  # noqa: F811
    cloud = Distributed(tmp_path, database_url)
    slow_plug = config(cloud, "slow-plug", f"attach_interface:{SLOW}")
    slow_unplug = config(cloud, "slow-unplug", "detach_interface:6")
    cloud.config = slow_unplug
    cloud.manage("db", "upgrade")
    cloud.manage("bootstrap")

    def agent(conf: Path) -> None:
        argv = cloud.args("compute", "--host", "c01", database=NO_DATABASE)
        argv[argv.index("--config") + 1] = str(conf)
        cloud.role("c01", argv, "gureum compute agent c01 running")

    try:
        cloud.role("api", cloud.args("api"), "gureum api listening")
        cloud.role("conductor", cloud.args("conductor"), "gureum conductor running")
        agent(slow_plug)
        op = Operator(cloud.url, cloud.data / "clouds.yaml", cli)
        try:
            wait_for("c01 to report", lambda: any(
                r["Host"] == "c01" and r["State"] == "up"
                for r in op.cli_json("compute", "service", "list")), timeout=30)
            vm = op.cli_json("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                             "--network", "private", "--wait", "vm1", cloud=DEMO)
            sid = vm["id"]
            (boot_port,) = guest_ports(cloud, sid)

            # 1. The agent dies in the middle of the plug.
            port = op.cli_json("port", "create", "--network", "private", "p1", cloud=DEMO)
            answers: list[int] = []
            thread = threading.Thread(target=lambda: answers.append(op.call(
                "POST", f"/servers/{sid}/os-interface", DEMO,
                json={"interfaceAttachment": {"port_id": port["id"]}}).status_code))
            thread.start()
            wait_for("the agent to be plugging", lambda: op.cli_json(
                "port", "show", port["id"])["device_id"] == sid, timeout=20)
            time.sleep(0.5)
            cloud.roles["c01"].kill()
            agent(slow_unplug)  # back at once; this time only unplugging is slow
            thread.join(60)
            assert answers == [409], answers
            wait_for("the attach to be rolled back", lambda: op.cli_json(
                "port", "show", port["id"])["device_id"] == "", timeout=90)
            assert guest_ports(cloud, sid) == [boot_port]
            assert op.wait(sid, {"ACTIVE"})["status"] == "ACTIVE"

            # 2. The conductor dies while the agent unplugs a deleted port's NIC.
            r = op.call("POST", f"/servers/{sid}/os-interface", DEMO,
                        json={"interfaceAttachment": {"port_id": port["id"]}})
            assert r.status_code == 200, r.text
            assert guest_ports(cloud, sid) == [boot_port, port["id"]]
            op.cli("port", "delete", "p1", cloud=DEMO)
            time.sleep(1.0)  # the conductor asked the agent; the unplug takes 6 s
            cloud.roles["conductor"].kill()
            cloud.roles["c01"].kill()  # and the agent before it is done: only a
            agent(slow_plug)           # resumed unplug can take the NIC out now
            assert guest_ports(cloud, sid) == [boot_port, port["id"]]
            cloud.roles["conductor"].start()
            wait_for("the deleted port's NIC to leave the guest",
                     lambda: guest_ports(cloud, sid) == [boot_port], timeout=90)
            listed = op.call("GET", f"/servers/{sid}/os-interface", DEMO).json()
            assert [i["port_id"] for i in listed["interfaceAttachments"]] == [boot_port]
            wait_for("nothing left in flight", lambda: in_flight(database_url) == 0)
            op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)
        except BaseException:
            print(cloud.logs())
            raise
        finally:
            op.close()
    finally:
        cloud.stop()
