"""Test harness: a cloud in a background thread, a `gureum up` subprocess, clients.

Both kinds of cloud are real: real HTTP on a real port, a real SQLite file,
real token keys. The in-process one is faster to start and lets a test look
inside; the subprocess one is exactly what a user runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from gureum.cloud import Cloud
from gureum.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Cheap bcrypt and quick heartbeats: tests measure behaviour, not cost.
TEST_SETTINGS: dict[str, dict[str, Any]] = {
    "identity": {"password_hash_rounds": 4, "address_failure_threshold": 10_000},
    # The fake driver, named: the default is QEMU wherever it is installed.
    "compute": {"driver": "fake", "report_interval": 1.0, "service_down_time": 5.0,
                "fake_test_mode": True},
}


def toml_text(sections: dict[str, dict[str, Any]]) -> str:
    """Settings sections as TOML (strings, numbers and booleans: all settings are)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return json.dumps(str(v))  # a JSON string is a valid TOML basic string
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value(v)}" for key, v in values.items())
    return "\n".join(lines) + "\n"


TEST_CONFIG = toml_text(TEST_SETTINGS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(data_dir: Path, port: int | None = None, **sections: dict[str, Any]
                  ) -> Settings:
    overrides: dict[str, dict[str, Any]] = {
        # Tests fail logins on purpose; only the throttle's own test wants the slow-down.
        "identity": {"password_hash_rounds": 4, "address_failure_threshold": 10_000},
        "compute": {"driver": "fake", "report_interval": 1.0, "service_down_time": 5.0,
                    "fake_test_mode": True},
        "server": {"port": port or free_port()},
        # Work a crashed conductor leased is taken over within seconds, not 30.
        "conductor": {"work_lease": 2.0},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(None, overrides, environ={}, data_dir=data_dir)


class InProcessCloud:
    """A Cloud running on its own event loop in a background thread."""

    def __init__(self, settings: Settings, hosts: int = 1) -> None:
        self.settings = settings
        self.hosts = hosts
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.cloud: Cloud | None = None

    @property
    def url(self) -> str:
        return self.settings.public_url

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> InProcessCloud:
        self.thread.start()

        async def _start() -> Cloud:
            cloud = Cloud(self.settings, self.hosts)
            await cloud.start()
            return cloud

        self.cloud = self.run(_start())
        return self

    def stop(self) -> None:
        if self.cloud is not None:
            self.run(self.cloud.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def admin_password(self) -> str:
        assert self.cloud and self.cloud.passwords
        return self.cloud.passwords[0]

    @property
    def demo_password(self) -> str:
        assert self.cloud and self.cloud.passwords
        return self.cloud.passwords[1]


def password_auth(user: str, password: str, project: str | None = None,
                  domain: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    elif domain:
        auth["scope"] = {"domain": {"id": domain}}
    return {"auth": auth}


class Api:
    """An httpx client for one cloud, with token helpers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def token(self, user: str, password: str, project: str | None = None) -> str:
        r = self.http.post("/identity/v3/auth/tokens", json=password_auth(user, password,
                                                                          project))
        assert r.status_code == 201, r.text
        return r.headers["x-subject-token"]

    def request(self, method: str, path: str, token: str | None = None, **kw: Any
                ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["X-Auth-Token"] = token
        return self.http.request(method, path, headers=headers, **kw)

    def close(self) -> None:
        self.http.close()


class GureumUp:
    """`gureum up` as a subprocess, the way a user starts it."""

    def __init__(self, data_dir: Path, hosts: int = 1, extra_args: list[str] | None = None,
                 settings: dict[str, dict[str, Any]] | None = None) -> None:
        """``settings``: sections merged over the test config, e.g.
        ``{"compute": {"fake_failures": "c02:preflight"}}``."""
        self.data_dir = data_dir
        self.settings: dict[str, dict[str, Any]] = {
            name: dict(values) for name, values in TEST_SETTINGS.items()}
        for name, values in (settings or {}).items():
            self.settings.setdefault(name, {}).update(values)
        self.port = free_port()
        self.hosts = hosts
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[str] | None = None
        self._log: Any = None
        self.ready_line = ""
        self.log_path = data_dir.parent / f"{data_dir.name}-gureum.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def start(self, timeout: float = 60) -> GureumUp:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir.parent / f"{self.data_dir.name}-gureum.toml"
        config.write_text(toml_text(self.settings))
        self._log = log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [str(BIN / "gureum"), "up", "--data-dir", str(self.data_dir), "--port",
             str(self.port), "--hosts", str(self.hosts), "--config", str(config),
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gureum up exited with {self.proc.returncode}; "
                                       f"log: {self.log_path.read_text()[-3000:]}")
                continue
            if "gureum is ready" in line:
                self.ready_line = line.strip()
                return self
        raise RuntimeError(f"gureum up not ready in {timeout}s; log: "
                           f"{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as Ctrl-C would; the exit code of a clean shutdown is 0."""
        try:
            if self.proc is None:
                return 0
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            return self.proc.returncode
        finally:
            if self.proc is not None and self.proc.stdout is not None:
                self.proc.stdout.close()
            if self._log is not None:
                self._log.close()
                self._log = None

    def openstack(self, *args: str, check: bool = True, timeout: float = 120
                  ) -> subprocess.CompletedProcess[str]:
        """Run the real `openstack` CLI against this cloud."""
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}
        for key in [k for k in env if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
            env.pop(key)
        proc = subprocess.run([str(BIN / "openstack"), *args], env=env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def credentials(self) -> tuple[str, str]:
        from gureum.cloud import read_passwords

        found = read_passwords(self.clouds_yaml)
        assert found is not None
        return found
