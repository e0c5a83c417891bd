"""An operator at a `gureum up` cloud: the real `openstack` CLI, plus a quick look.

The commands a scenario is about run through the real CLI (``run`` takes the
command line as an operator types it). Each runs as its own process with its
own arguments, environment, output and exit code; by default the process is
forked from a server that has the CLI already imported (``cli_server.py``), so
a command costs a fraction of a second instead of seconds of imports. Set
``GUREUM_E2E_CLI=exec`` to start the `openstack` program afresh every time.

Setting the stage and watching the server settle go over the Compute API
directly, which is faster than a CLI process per poll; what they read is what
`openstack server show` would print.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gureum.cloud import read_passwords
from tests.harness import BIN, Api, GureumUp

ADMIN = "gureum"
DEMO = "gureum-demo"


class CliServer:
    """The client of cli_server.py: one `openstack` command at a time, each forked."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("cli_server.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.scratch = tempfile.TemporaryDirectory(prefix="gureum-cli-")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(json.loads(line))

    def run(self, argv: list[str], env: dict[str, str], timeout: float,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None and self.proc.poll() is None
        out, err, given = (Path(self.scratch.name) / n for n in ("stdout", "stderr", "stdin"))
        given.write_text(input or "")
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "stdin": str(given),
                                          "stdout": str(out), "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        pid = self.answers.get(timeout=30)["pid"]
        try:
            rc = self.answers.get(timeout=timeout)["rc"]
        except queue.Empty:
            os.kill(pid, signal.SIGKILL)  # the command's own process, forked for it
            self.answers.get(timeout=30)
            raise subprocess.TimeoutExpired(["openstack", *argv], timeout) from None
        return subprocess.CompletedProcess(["openstack", *argv], rc, out.read_text(),
                                           err.read_text())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.scratch.cleanup()


class Operator:
    """The admin and the demo member of one cloud (a `gureum up` or an in-process one)."""

    def __init__(self, url: str, clouds_yaml: Path, cli: CliServer | None = None) -> None:
        self.url = url
        self.clouds_yaml = clouds_yaml
        self.cli_server = cli
        self.api = Api(url)
        found = read_passwords(clouds_yaml)
        assert found is not None, f"no passwords in {clouds_yaml}"
        admin_password, demo_password = found
        self.tokens = {ADMIN: self.api.token("admin", admin_password, "admin"),
                       DEMO: self.api.token("demo", demo_password, "demo")}

    def close(self) -> None:
        self.api.close()

    # -- the CLI ---------------------------------------------------------------------------
    def openstack(self, *args: str, check: bool = True, timeout: float = 120,
                  input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`openstack <args…>` with this cloud's clouds.yaml; ``input`` answers prompts."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        if self.cli_server is None or os.environ.get("GUREUM_E2E_CLI") == "exec":
            proc = subprocess.run([str(BIN / "openstack"), *args], env=env, input=input or "",
                                  capture_output=True, text=True, timeout=timeout,
                                  start_new_session=True)  # no terminal to prompt on
        else:
            proc = self.cli_server.run(list(args), env, timeout, input)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def cli(self, *args: str, cloud: str = ADMIN, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """`openstack --os-cloud <cloud> <args…>`."""
        return self.openstack("--os-cloud", cloud, *args, check=check)

    def cli_json(self, *args: str, cloud: str = ADMIN) -> Any:
        return json.loads(self.cli(*args, "-f", "json", cloud=cloud).stdout)

    def run(self, command: str, check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """One command line exactly as typed (``openstack --os-cloud gureum …``)."""
        words = shlex.split(command)
        assert words[0] == "openstack", command
        return self.openstack(*words[1:], check=check, timeout=timeout, input=input)

    # -- the Compute API ------------------------------------------------------------------
    def call(self, method: str, path: str, cloud: str = ADMIN, version: str = "2.100",
             **kw: Any) -> httpx.Response:
        return self.api.request(method, f"/compute/v2.1{path}", self.tokens[cloud],
                                headers={"OpenStack-API-Version": f"compute {version}"}, **kw)

    def boot(self, name: str, cloud: str = DEMO, flavor: str = "1", image: str | None = None,
             networks: Any = "none", wait: bool = True, **server: Any) -> dict[str, Any]:
        """A server as `openstack server create --wait` would leave it (ACTIVE)."""
        body = {"server": {"name": name, "flavorRef": flavor, "networks": networks,
                           "imageRef": image or self.image_id("cirros", cloud), **server}}
        r = self.call("POST", "/servers", cloud, json=body)
        assert r.status_code == 202, r.text
        sid = str(r.json()["server"]["id"])
        return self.wait(sid, {"ACTIVE"}) if wait else self.show(sid)

    def image_id(self, name: str, cloud: str = ADMIN) -> str:
        r = self.api.request("GET", f"/image/v2/images?name={name}", self.tokens[cloud])
        assert r.status_code == 200, r.text
        (image,) = r.json()["images"]
        return str(image["id"])

    def show(self, server_id: str) -> dict[str, Any]:
        """The server as an admin sees it (host, power state, task state)."""
        r = self.call("GET", f"/servers/{server_id}")
        assert r.status_code == 200, r.text
        return dict(r.json()["server"])

    def wait(self, server_id: str, statuses: set[str], timeout: float = 30
             ) -> dict[str, Any]:
        """Poll until the status is one of ``statuses`` with no task running."""
        deadline = time.monotonic() + timeout
        while True:
            server = self.show(server_id)
            if server["status"] in statuses and not server["OS-EXT-STS:task_state"]:
                return server
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{server_id} stayed {server['status']} "
                    f"({server['OS-EXT-STS:task_state']}), wanted {statuses}; fault: "
                    f"{server.get('fault')}")
            time.sleep(0.05)

    def wait_task(self, server_id: str, task_state: str | None, timeout: float = 30
                  ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            server = self.show(server_id)
            if server["OS-EXT-STS:task_state"] == task_state:
                return server
            if time.monotonic() > deadline:
                raise AssertionError(f"{server_id} task_state stayed "
                                     f"{server['OS-EXT-STS:task_state']}, wanted {task_state}")
            time.sleep(0.05)

    def actions(self, server_id: str) -> list[dict[str, Any]]:
        """Newest first, each with its events (details and hosts: admin at 2.84)."""
        r = self.call("GET", f"/servers/{server_id}/os-instance-actions", version="2.84")
        assert r.status_code == 200, r.text
        out = []
        for a in r.json()["instanceActions"]:
            shown = self.call("GET", f"/servers/{server_id}/os-instance-actions/"
                                     f"{a['request_id']}", version="2.84")
            assert shown.status_code == 200, shown.text
            out.append(dict(shown.json()["instanceAction"]))
        return out

    def last_action(self, server_id: str, name: str) -> dict[str, Any]:
        for action in self.actions(server_id):
            if action["action"] == name:
                return action
        raise AssertionError(f"no {name} action on {server_id}")

    def migrations(self, server_id: str) -> list[dict[str, Any]]:
        r = self.call("GET", f"/os-migrations?instance_uuid={server_id}", version="2.80")
        assert r.status_code == 200, r.text
        return list(r.json()["migrations"])

    def service(self, host: str, **changes: Any) -> None:
        """PUT /os-services/{id} for a host's compute service (disable, force down…)."""
        r = self.call("GET", f"/os-services?host={host}&binary=nova-compute", version="2.53")
        assert r.status_code == 200, r.text
        (svc,) = r.json()["services"]
        r = self.call("PUT", f"/os-services/{svc['id']}", version="2.53", json=changes)
        assert r.status_code == 200, r.text

    def only_enabled(self, *hosts: str) -> None:
        """Steer the scheduler: every other compute host disabled."""
        r = self.call("GET", "/os-services?binary=nova-compute", version="2.53")
        for svc in r.json()["services"]:
            wanted = "enabled" if svc["host"] in hosts else "disabled"
            if svc["status"] != wanted:
                self.service(svc["host"], status=wanted)

    def delete(self, server_id: str, timeout: float = 30) -> None:
        r = self.call("DELETE", f"/servers/{server_id}")
        assert r.status_code in (204, 404), r.text
        deadline = time.monotonic() + timeout
        while self.call("GET", f"/servers/{server_id}").status_code != 404:
            assert time.monotonic() < deadline, f"{server_id} was not deleted"
            time.sleep(0.05)


def events(action: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An action's events by name (the last of each name)."""
    out: dict[str, dict[str, Any]] = {}
    for ev in sorted(action["events"], key=lambda e: e["start_time"] or ""):
        out[ev["event"]] = ev
    return out


def cli_events(op: Operator, server: str, cloud: str, action: str) -> dict[str, Any]:
    """`openstack server event list` then `event show` of the newest ``action``."""
    listed = op.cli_json("server", "event", "list", server, cloud=cloud)
    request_id = next(row["Request ID"] for row in listed if row["Action"] == action)
    shown: dict[str, Any] = op.cli_json("server", "event", "show", server, request_id,
                                        cloud=cloud)
    return shown


@contextlib.contextmanager
def cloud(tmp_path_factory: pytest.TempPathFactory, cli: CliServer | None, name: str,
          hosts: int, **settings: dict[str, Any]) -> Iterator[Operator]:
    """A `gureum up --hosts N` of the scenario's own, with its own settings."""
    data_dir: Path = tmp_path_factory.mktemp(name) / "data"
    up = GureumUp(data_dir, hosts=hosts, settings=settings).start()
    op = Operator(up.url, up.clouds_yaml, cli)
    try:
        yield op
    finally:
        op.close()
        assert up.stop() == 0, up.log_path.read_text()[-3000:]


