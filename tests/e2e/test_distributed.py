"""Distributed mode for real: every role its own process, RabbitMQ between them.

`gureum api`, `gureum conductor` and two `gureum compute --host c01/c02` run
as separate subprocesses on a fresh PostgreSQL database (MariaDB when only
that is up) with `--bus-url amqp://…`, started the way the README tells an
operator to. The compute agents are given a database URL that answers nothing:
they never touch the database. The real `openstack` CLI drives the cloud:
token, boot, console, stop/start, a cold migration and its confirm, a live
migration between the two agent processes, a snapshot, delete. Then the conductor is killed with
SIGKILL in the middle of a resize while other work waits in the outbox
unannounced; a restarted conductor finishes both. A second test mixes the
two: `gureum up --hosts 0` on RabbitMQ takes a `gureum compute` process.

Skipped, with the reason, when RabbitMQ or both databases are not reachable
(`scripts/services` starts them). Each run uses its own database and its own
bus name prefix, so runs sharing a broker never meet.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.harness import BIN, TEST_SETTINGS, GureumUp, free_port, toml_text
from tests.scenarios.ops import DEMO, CliServer, Operator

pytestmark = pytest.mark.e2e

BUS_URL = "amqp://guest:guest@127.0.0.1:5672/"
DATABASES = [  # (name, URL of the new database, admin URL, port)
    ("postgresql", "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
     "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", 5432),
    ("mariadb", "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4",
     "mysql+pymysql://root@127.0.0.1:3306/mysql", 3306),
]
# What the agents get instead: if they touched a database, they could not start.
NO_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:9/no-database-for-agents"
TRANSFER = 3.0  # seconds a disk transfer takes: the window to kill the conductor in


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database on the first server that runs, dropped afterwards."""
    if not reachable(5672):
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (scripts/services starts it)")
    found = [d for d in DATABASES if reachable(d[3])]
    if not found:
        pytest.skip("neither PostgreSQL (5432) nor MariaDB (3306) runs on 127.0.0.1 "
                    "(scripts/services starts them)")
    name, url, admin_url, _port = found[0]
    db = f"gureum_dist_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {db}"))
    try:
        yield url.format(db=db)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if name == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE {db}{force}"))
        admin.dispose()


@pytest.fixture(scope="module")
def cli() -> Iterator[CliServer]:
    server = CliServer()
    yield server
    server.close()


class Role:
    """One `gureum <role>` process, started as an operator would; its output in a log."""

    def __init__(self, name: str, argv: list[str], ready: str, log: Path) -> None:
        self.name = name
        self.argv = argv
        self.ready = ready
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Role:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(BIN / "gureum"), *self.argv], stdout=out,
                                         stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready in self.log.read_bytes()[offset:].decode(errors="replace"):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start (exit {self.proc.poll()}):\n"
                             f"{self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crashed machine."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class Distributed:
    """The processes of one distributed cloud on this machine (one data directory)."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.prefix = f"e2e-{uuid.uuid4().hex[:12]}"
        settings: dict[str, dict[str, Any]] = {k: dict(v) for k, v in TEST_SETTINGS.items()}
        settings["server"] = {"port": self.port}
        settings["bus"] = {"prefix": self.prefix}
        settings["compute"]["fake_delays"] = f"import_disks:{TRANSFER}"
        self.config = root / "gureum.toml"
        self.config.write_text(toml_text(settings))
        self.database_url = database_url
        self.roles: dict[str, Role] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self, *extra: str, database: str | None = None) -> list[str]:
        return [*extra, "--config", str(self.config), "--data-dir", str(self.data),
                "--database-url", database or self.database_url, "--bus-url", BUS_URL]

    def manage(self, *task: str) -> str:
        proc = subprocess.run([str(BIN / "gureum"), "manage", *self.args(*task)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def role(self, name: str, argv: list[str], ready: str) -> Role:
        role = self.roles[name] = Role(name, argv, ready, self.root / f"{name}.log")
        return role.start()

    def start(self) -> None:
        self.role("api", self.args("api"), "gureum api listening")
        self.role("conductor", self.args("conductor"), "gureum conductor running")
        for host in ("c01", "c02"):
            self.role(host, self.args("compute", "--host", host, database=NO_DATABASE),
                      f"gureum compute agent {host} running")

    def logs(self) -> str:
        return "\n".join(f"--- {n}.log ---\n{r.tail()}" for n, r in self.roles.items())

    def stop(self) -> dict[str, int | None]:
        return {name: role.stop() for name, role in reversed(self.roles.items())}


def wait_for(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_each_role_in_its_own_process_over_rabbitmq(
        tmp_path: Path, database_url: str, cli: CliServer) -> None:
    cloud = Distributed(tmp_path, database_url)
    assert "database schema at revision" in cloud.manage("db", "upgrade")
    assert "bootstrapped" in cloud.manage("bootstrap")
    try:
        cloud.start()
        op = Operator(cloud.url, cloud.data / "clouds.yaml", cli)
        try:
            drive(op, cloud)
        except BaseException:
            print(cloud.logs())
            raise
        finally:
            op.close()
        assert all(role.alive() for role in cloud.roles.values()), cloud.logs()
    finally:
        codes = cloud.stop()
    assert codes == {"c02": 0, "c01": 0, "conductor": 0, "api": 0}, cloud.logs()


def drive(op: Operator, cloud: Distributed) -> None:
    token = op.cli_json("token", "issue")
    assert token["id"] and token["project_id"]

    def computes_up() -> bool:
        rows = op.cli_json("compute", "service", "list")
        return {r["Host"] for r in rows if r["Binary"] == "nova-compute"
                and r["State"] == "up"} == {"c01", "c02"}
    wait_for("both compute agents to report", computes_up, timeout=30)

    # Block Storage: the API writes the row, the conductor process makes the file.
    op.cli("volume", "create", "--size", "1", "dvol", cloud=DEMO)
    wait_for("the volume to be made by the conductor process",
             lambda: op.cli_json("volume", "show", "dvol", cloud=DEMO)["status"] == "available",
             timeout=30)
    services = {r["Binary"]: r["State"] for r in op.cli_json("volume", "service", "list")}
    assert services == {"cinder-scheduler": "up", "cinder-volume": "up",
                        "cinder-backup": "up"}, services
    op.cli("volume", "delete", "dvol", cloud=DEMO)

    vm1 = op.cli_json("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                      "--network", "private", "--wait", "vm1", cloud=DEMO)
    assert vm1["status"] == "ACTIVE", vm1
    vm2 = op.cli_json("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                      "--network", "private", "--wait", "vm2", cloud=DEMO)
    assert vm2["status"] == "ACTIVE", vm2
    sid = vm1["id"]
    # The API asks the agent's process for the console, over the bus.
    assert "vm2 login:" in op.cli("console", "log", "show", "vm2", cloud=DEMO).stdout

    op.cli("server", "stop", "vm1", cloud=DEMO)
    assert op.wait(sid, {"SHUTOFF"})["OS-EXT-STS:power_state"] == 4
    op.cli("server", "start", "vm1", cloud=DEMO)
    source = op.wait(sid, {"ACTIVE"})["OS-EXT-SRV-ATTR:host"]
    other = {"c01": "c02", "c02": "c01"}[source]

    # A cold migration moves the disk from one agent process to the other.
    assert "Complete" in op.cli("server", "migrate", "--wait", sid).stdout
    assert op.wait(sid, {"VERIFY_RESIZE"}, timeout=60)["OS-EXT-SRV-ATTR:host"] == other
    op.cli("server", "resize", "confirm", sid)
    assert op.wait(sid, {"ACTIVE"})["OS-EXT-SRV-ATTR:host"] == other

    # A live migration between the agent processes (the fake hands the guest over
    # through the hosts' shared directory).
    assert "Complete" in op.cli("server", "migrate", "--live-migration", "--wait",
                                sid).stdout
    assert op.wait(sid, {"ACTIVE"})["OS-EXT-SRV-ATTR:host"] == source

    # SIGKILL the conductor while a resize transfers the disk; meanwhile a stop is
    # handed over through the outbox with nobody listening for its announcement.
    op.cli("server", "resize", "--flavor", "m1.small", "vm1", cloud=DEMO)
    op.wait_task(sid, "resize_migrated", timeout=30)  # the transfer step is running
    cloud.roles["conductor"].kill()
    op.cli("server", "stop", "vm2", cloud=DEMO)
    assert op.show(vm2["id"])["OS-EXT-STS:task_state"] == "powering-off"
    time.sleep(TRANSFER)  # the transfer ends on the agent with nobody to tell
    cloud.roles["conductor"].start()
    resized = op.wait(sid, {"VERIFY_RESIZE"}, timeout=120)
    assert (resized["OS-EXT-SRV-ATTR:host"], resized["flavor"]["original_name"]) == (
        other, "m1.small"), resized
    assert op.wait(vm2["id"], {"SHUTOFF"}, timeout=60)["OS-EXT-STS:power_state"] == 4
    # A snapshot: the agent writes it into the image store the API and conductor use
    # (one machine, one data directory).
    op.cli("server", "image", "create", "--name", "vm2-snap", "--wait", "vm2", cloud=DEMO)
    snap = op.cli_json("image", "show", "vm2-snap", cloud=DEMO)
    assert snap["status"] == "active" and snap["size"] > 0, snap
    op.cli("image", "delete", "vm2-snap", cloud=DEMO)
    op.cli("server", "resize", "confirm", "vm1", cloud=DEMO)
    assert op.wait(sid, {"ACTIVE"})["OS-EXT-SRV-ATTR:host"] == other
    migrations = op.migrations(sid)
    assert sorted(m["status"] for m in migrations) == ["completed", "confirmed", "confirmed"]

    for name in ("vm1", "vm2"):
        op.cli("server", "delete", "--wait", name, cloud=DEMO)
    assert op.cli_json("server", "list", cloud=DEMO) == []


def test_gureum_up_on_rabbitmq_takes_an_agent_started_apart(tmp_path: Path,
                                                            cli: CliServer) -> None:
    """`gureum up --hosts 0 --bus-url amqp://…` (SQLite) and one `gureum compute` process."""
    if not reachable(5672):
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (scripts/services starts it)")
    data = tmp_path / "data"
    up = GureumUp(data, hosts=0, extra_args=["--bus-url", BUS_URL],
                  settings={"bus": {"prefix": f"e2e-{uuid.uuid4().hex[:12]}"}}).start()
    agent = Role("c07", ["compute", "--host", "c07", "--config",
                         str(tmp_path / "data-gureum.toml"), "--data-dir", str(data),
                         "--bus-url", BUS_URL], "gureum compute agent c07 running",
                 tmp_path / "c07.log")
    try:
        agent.start()
        op = Operator(up.url, up.clouds_yaml, cli)
        try:
            vm = op.cli_json("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                             "--network", "private", "--wait", "vm7", cloud=DEMO)
            assert op.show(vm["id"])["OS-EXT-SRV-ATTR:host"] == "c07"
            op.cli("server", "delete", "--wait", "vm7", cloud=DEMO)
        finally:
            op.close()
    finally:
        assert agent.stop() == 0, agent.tail()
        assert up.stop() == 0
