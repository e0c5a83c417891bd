"""The cloud under the compute benchmark, and an asyncio client that watches it.

``BenchCloud`` is a `gureum up` subprocess (fake driver, N hosts, quotas raised by a
config file) or, for the smoke test, any running cloud given by URL. ``ComputeClient``
speaks the Compute API with one admin token over httpx; ``Watcher`` polls
``GET /servers/detail?all_tenants=1&changes-since=…`` and tells subscribers when a
server's state changes, so that hundreds of servers are followed with a few requests
per second instead of one poll per server. Every process started here is stopped
here, by its own pid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.servers import ROOT, _clouds_password, cpu_seconds, free_port

MV = "compute 2.100"

# The bench's settings over the defaults: no quota in the way, hosts big enough in
# vCPUs for 100 m1.nano servers on one host (the evacuation run), and otherwise the
# defaults a user gets (bcrypt cost 12, 10 s heartbeats, no fake delays).
BENCH_SETTINGS: dict[str, dict[str, Any]] = {
    "quota": {"instances": -1, "cores": -1, "ram": -1},
    "compute": {"driver": "fake", "fake_vcpus": 32},
}


def toml_text(sections: dict[str, dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value(v)}" for key, v in values.items())
    return "\n".join(lines) + "\n"


@dataclass
class BenchCloud:
    """A running cloud: its URL, admin password, database and (if ours) its process."""

    url: str
    password: str
    database_url: str
    hosts: int
    settings: dict[str, dict[str, Any]]
    clouds_yaml: Path | None = None
    pid: int = 0  # 0: not a process of ours (CPU is then not accounted)
    proc: subprocess.Popen[str] | None = None

    @classmethod
    def start(cls, data_dir: Path, hosts: int, log_path: Path,
              settings: dict[str, dict[str, Any]] | None = None,
              timeout: float = 120.0, extra_args: list[str] | None = None) -> BenchCloud:
        merged = {k: dict(v) for k, v in BENCH_SETTINGS.items()}
        for name, values in (settings or {}).items():
            merged.setdefault(name, {}).update(values)
        data_dir.mkdir(parents=True, exist_ok=True)
        config = data_dir.parent / f"{data_dir.name}.toml"
        config.write_text(toml_text(merged))
        port = free_port()
        gureum = Path(sys.executable).parent / "gureum"
        cmd = [str(gureum) if gureum.exists() else sys.executable,
               *([] if gureum.exists() else ["-m", "gureum.cli.main"]),
               "up", "--data-dir", str(data_dir), "--port", str(port),
               "--hosts", str(hosts), "--config", str(config), *(extra_args or [])]
        log = open(log_path, "w")  # noqa: SIM115 - lives as long as the cloud
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        ready = False
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "gureum is ready" in line:
                ready = True
                break
        if not ready:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"gureum up did not start; see {log_path}")
        clouds = data_dir / "clouds.yaml"
        return cls(f"http://127.0.0.1:{port}", _clouds_password(clouds),
                   f"sqlite:///{data_dir / 'gureum.db'}", hosts, merged, clouds, proc.pid,
                   proc)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid) if self.pid else 0.0

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a clean stop), SIGKILL after ``timeout``. Waits on the Popen: a
        child that exited stays a zombie until reaped, so probing its pid with signal 0
        (``bench.servers._stop_pid``) would wait out the whole timeout."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def setting(self, section: str, key: str, default: Any) -> Any:
        return self.settings.get(section, {}).get(key, default)


class ApiError(RuntimeError):
    def __init__(self, what: str, response: httpx.Response) -> None:
        super().__init__(f"{what}: {response.status_code} {response.text[:300]}")
        self.status = response.status_code


class ComputeClient:
    """The Compute (and a little Identity/Image/Network) API over one async httpx client."""

    def __init__(self, cloud: BenchCloud, connections: int = 128) -> None:
        self.cloud = cloud
        self.http = httpx.AsyncClient(
            base_url=cloud.url, timeout=httpx.Timeout(300.0, connect=30.0),
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections))
        self.token = ""

    async def close(self) -> None:
        await self.http.aclose()

    async def login(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.cloud.password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = await self.http.post("/identity/v3/auth/tokens", json=body)
        if r.status_code != 201:
            raise ApiError("login", r)
        self.token = r.headers["x-subject-token"]

    def headers(self, version: str | None = MV) -> dict[str, str]:
        out = {"X-Auth-Token": self.token}
        if version:
            out["OpenStack-API-Version"] = version
        return out

    async def get(self, path: str, version: str | None = MV) -> Any:
        r = await self.http.get(path, headers=self.headers(version))
        if r.status_code != 200:
            raise ApiError(f"GET {path}", r)
        return r.json()

    async def send(self, method: str, path: str, body: Any = None,
                   version: str | None = MV) -> httpx.Response:
        return await self.http.request(method, path, json=body, headers=self.headers(version))

    # -- lookups and setup ---------------------------------------------------------------
    async def image_id(self, name: str = "cirros") -> str:
        images = (await self.get(f"/image/v2/images?name={name}", None))["images"]
        return str(images[0]["id"])

    async def flavor(self, name: str, ram: int, vcpus: int = 1, disk: int = 1) -> str:
        """The id of flavor ``name``, created (admin) if it does not exist."""
        for f in (await self.get("/compute/v2.1/flavors"))["flavors"]:
            if f["name"] == name:
                return str(f["id"])
        r = await self.send("POST", "/compute/v2.1/flavors", {"flavor": {
            "name": name, "ram": ram, "vcpus": vcpus, "disk": disk}})
        if r.status_code != 200:
            raise ApiError("create flavor", r)
        return str(r.json()["flavor"]["id"])

    async def network(self, name: str, cidr: str) -> str:
        """The id of network ``name`` (admin's project), created with one IPv4 subnet."""
        found = (await self.get(f"/network/v2.0/networks?name={name}", None))["networks"]
        if found:
            return str(found[0]["id"])
        r = await self.send("POST", "/network/v2.0/networks", {"network": {"name": name}}, None)
        if r.status_code != 201:
            raise ApiError("create network", r)
        net = str(r.json()["network"]["id"])
        r = await self.send("POST", "/network/v2.0/subnets", {"subnet": {
            "name": f"{name}-subnet", "network_id": net, "ip_version": 4, "cidr": cidr}},
            None)
        if r.status_code != 201:
            raise ApiError("create subnet", r)
        return net

    async def service_id(self, host: str) -> str:
        services = (await self.get(f"/compute/v2.1/os-services?host={host}",
                                   "compute 2.53"))["services"]
        return str(next(s["id"] for s in services if s["binary"] == "nova-compute"))

    async def force_down(self, host: str, down: bool) -> None:
        sid = await self.service_id(host)
        r = await self.send("PUT", f"/compute/v2.1/os-services/{sid}", {"forced_down": down},
                            "compute 2.53")
        if r.status_code != 200:
            raise ApiError("force down", r)

    async def memory_claimed(self) -> int:
        """Memory claimed on all hypervisors, MiB (the hosts' reservations left out)."""
        nodes = (await self.get("/compute/v2.1/os-hypervisors/detail", None))["hypervisors"]
        reserved = int(self.cloud.setting("compute", "reserved_host_memory_mb", 512))
        return sum(int(n["memory_mb_used"]) - reserved for n in nodes)

    # -- servers ---------------------------------------------------------------------------
    def server_body(self, name: str, flavor: str, image: str, networks: Any,
                    availability_zone: str | None = None) -> dict[str, Any]:
        server: dict[str, Any] = {"name": name, "flavorRef": flavor, "imageRef": image,
                                  "networks": networks}
        if availability_zone:
            server["availability_zone"] = availability_zone
        return {"server": server}

    async def create(self, body: dict[str, Any]) -> str:
        r = await self.send("POST", "/compute/v2.1/servers", body)
        if r.status_code != 202:
            raise ApiError("create server", r)
        return str(r.json()["server"]["id"])

    async def action(self, server_id: str, body: dict[str, Any],
                     version: str | None = MV) -> httpx.Response:
        return await self.send("POST", f"/compute/v2.1/servers/{server_id}/action", body,
                               version)

    async def delete(self, server_id: str) -> httpx.Response:
        return await self.send("DELETE", f"/compute/v2.1/servers/{server_id}")

    async def server_ids(self) -> list[str]:
        servers = (await self.get("/compute/v2.1/servers?all_tenants=1"))["servers"]
        return [str(s["id"]) for s in servers]


# -- watching many servers -------------------------------------------------------------------

Subscriber = Callable[[dict[str, Any], float], None]


def utc_iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


class Watcher:
    """Polls the servers changed lately and hands each one to the subscribers.

    Each poll asks for ``changes-since`` (the previous poll's start minus a margin, for
    transactions committed a little after their timestamp); every ``full_every``
    seconds it asks for everything changed since the watch began. A subscriber sees
    the same state more than once and must keep only the first time it matters. The
    time passed is when the poll's answer arrived (time.monotonic()); state changes are
    thus seen up to one poll interval (plus the poll itself) late.
    """

    def __init__(self, client: ComputeClient, interval: float = 0.2, margin: float = 2.0,
                 full_every: float = 5.0) -> None:
        self.client = client
        self.interval = interval
        self.margin = margin
        self.full_every = full_every
        self.subscribers: list[Subscriber] = []
        self.polls = 0
        self.poll_seconds = 0.0
        self._task: asyncio.Task[None] | None = None
        self._begun = dt.datetime.now(dt.UTC)

    async def __aenter__(self) -> Watcher:
        self._begun = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.margin)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        since = self._begun
        last_full = time.monotonic()
        while True:
            started = dt.datetime.now(dt.UTC)
            t0 = time.monotonic()
            if t0 - last_full >= self.full_every:
                since, last_full = self._begun, t0
            try:
                body = await self.client.get(
                    f"/compute/v2.1/servers/detail?all_tenants=1&changes-since="
                    f"{utc_iso(since)}")
            except (httpx.HTTPError, ApiError) as exc:
                print(f"  (watch poll failed: {exc}; retrying)", flush=True)
                await asyncio.sleep(self.interval)
                continue
            now = time.monotonic()
            self.polls += 1
            self.poll_seconds += now - t0
            for server in body["servers"]:
                for sub in list(self.subscribers):
                    sub(server, now)
            since = started - dt.timedelta(seconds=self.margin)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - t0)))


def settled(server: dict[str, Any], status: str) -> bool:
    return bool(server["status"] == status and not server.get("OS-EXT-STS:task_state"))


def host_of(server: dict[str, Any]) -> str:
    return str(server.get("OS-EXT-SRV-ATTR:host") or "")


def new_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"
