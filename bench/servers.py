"""The two servers under test: a fresh `gureum up`, and upstream Keystone from PyPI.

Keystone comes from the shared recipe (``shared/bench/keystone``: a venv with
Keystone, uwsgi and a bootstrapped SQLite database, served by ``serve.sh``),
set up once under ``~/.cache/gureum-bench/keystone`` and reused by later runs.
Every process started here is stopped here, by its own pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
KEYSTONE_PORT = 35357
KEYSTONE_URL = f"http://127.0.0.1:{KEYSTONE_PORT}"


def shared_dir(name: str, explicit: Path | None = None, env: str = "") -> Path:
    """A peer's recipe in the shared folder: ``explicit``, $``env``, or
    ``../shared/bench/<name>`` beside the repository (/work/shared for a worktree)."""
    candidates = [explicit] if explicit else []
    if env and os.environ.get(env):
        candidates.append(Path(os.environ[env]))
    candidates += [ROOT.parent / "shared" / "bench" / name,
                   Path("/work/shared/bench") / name]
    for path in candidates:
        if path is not None and (path / "setup.sh").exists():
            return path.resolve()
    raise RuntimeError(f"the {name} recipe (shared/bench/{name}/setup.sh) was not found; "
                       f"tried {', '.join(str(c) for c in candidates)}")


def recipe_dir(explicit: Path | None = None) -> Path:
    """The shared Keystone recipe (setup.sh, serve.sh)."""
    return shared_dir("keystone", explicit, "BENCH_KEYSTONE_RECIPE")


def cache_dir() -> Path:
    """Where peers are installed once per machine (venvs, databases): outside the
    repository, so every worktree and clone shares them."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gureum-bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- process-tree accounting -----------------------------------------------------------

def _tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB."""
    total = 0
    for proc in _tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants so far."""
    total = 0.0
    for proc in _tree(pid):
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, not idle or waiting)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def children_seconds() -> float:
    """CPU seconds of this process's finished children (wrk runs are waited for)."""
    t = os.times()
    return t.children_user + t.children_system


def _stop_pid(pid: int, timeout: float = 15.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- servers --------------------------------------------------------------------------

@dataclass
class Server:
    """A running identity server, as the benchmark sees it."""

    name: str
    base_url: str  # the identity root: {base_url}/v3/auth/tokens
    password: str
    pid: int = 0
    user: str = "admin"
    project: str = "admin"
    domain: str = "Default"
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_url(self) -> str:
        return f"{self.base_url}/v3/auth/tokens"

    def password_body(self) -> dict[str, Any]:
        return {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user, "domain": {"name": self.domain},
                "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": {"name": self.domain}}}}}

    def token_body(self, token: str) -> dict[str, Any]:
        return {"auth": {
            "identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": {"name": self.project, "domain": {"name": self.domain}}}}}

    def issue(self, client: httpx.Client, rescope_of: str | None = None) -> str:
        body = self.token_body(rescope_of) if rescope_of else self.password_body()
        r = client.post(self.tokens_url, json=body)
        if r.status_code != 201:
            raise RuntimeError(f"{self.name}: token issue failed: {r.status_code} "
                               f"{r.text[:300]}")
        return r.headers["x-subject-token"]

    def check_validate(self, client: httpx.Client, admin: str, subject: str) -> None:
        r = client.get(self.tokens_url,
                       headers={"X-Auth-Token": admin, "X-Subject-Token": subject})
        if r.status_code != 200 or r.json()["token"]["project"]["name"] != self.project:
            raise RuntimeError(f"{self.name}: validation failed: {r.status_code} "
                               f"{r.text[:300]}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        raise NotImplementedError


class GureumServer(Server):
    """`gureum up` with default settings (bcrypt cost 12) in a fresh data directory."""

    proc: subprocess.Popen[str] | None = None

    @classmethod
    def start(cls, data_dir: Path, log_path: Path, timeout: float = 90.0) -> GureumServer:
        port = free_port()
        gureum = Path(sys.executable).parent / "gureum"
        cmd = [str(gureum) if gureum.exists() else sys.executable,
               *([] if gureum.exists() else ["-m", "gureum.cli.main"]),
               "up", "--data-dir", str(data_dir), "--port", str(port), "--driver", "fake"]
        log = open(log_path, "w")  # noqa: SIM115 - lives as long as the server
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
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
        password = _clouds_password(data_dir / "clouds.yaml")
        server = cls("gureum", f"http://127.0.0.1:{port}/identity", password, pid=proc.pid)
        server.proc = proc
        return server

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _stop_pid(self.proc.pid)
            self.proc.wait(timeout=10)


def _clouds_password(path: Path, index: int = 0) -> str:
    """A password from clouds.yaml: cloud `gureum` (admin) is the first password line,
    `gureum-demo` (demo) the second."""
    found = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("password:"):
            found.append(json.loads(line.split(":", 1)[1].strip()))
    if len(found) <= index:
        raise RuntimeError(f"no password number {index + 1} in {path}")
    value: str = found[index]
    return value


class KeystoneServer(Server):
    """Keystone under uwsgi (2 workers) from the shared recipe, with or without its cache.

    The recipe stays where it is: its ``setup.sh`` installs into a state directory
    (venv, keys, SQLite database) once, and its own ``serve.sh`` starts uwsgi from
    there, so a change to the recipe (keep-alive, say) is what the next run measures.
    """

    state_dir: Path = Path()

    @staticmethod
    def ensure_setup(state_dir: Path, recipe: Path, log_path: Path) -> None:
        """Run the recipe's setup.sh once; later runs reuse the venv and database."""
        if (state_dir / "keystone.db").exists() and (state_dir / "venv/bin/uwsgi").exists():
            return
        print(f"setting up Keystone from PyPI in {state_dir} (a few minutes, once)…",
              flush=True)
        if state_dir.exists() and any(state_dir.iterdir()):
            raise RuntimeError(f"{state_dir} holds an incomplete Keystone setup; remove it "
                               "and run again")
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:
            subprocess.run(["bash", str(recipe / "setup.sh")], check=True, stdout=log,
                           stderr=subprocess.STDOUT,
                           env={**os.environ, "BENCH_DIR": str(state_dir)})

    @staticmethod
    def version(state_dir: Path) -> str:
        out = subprocess.run(
            [str(state_dir / "venv/bin/python"), "-c",
             "import importlib.metadata as m; print(m.version('keystone'), "
             "m.version('uwsgi'))"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "?"

    @classmethod
    def start(cls, state_dir: Path, recipe: Path, cache: bool) -> KeystoneServer:
        if port_open(KEYSTONE_PORT):
            raise RuntimeError(f"something already listens on 127.0.0.1:{KEYSTONE_PORT}; "
                               "stop it (an earlier Keystone?) and run again")
        mode = "memcache" if cache else "nocache"
        subprocess.run(["bash", str(recipe / "serve.sh"), "uwsgi", "2", mode], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "BENCH_DIR": str(state_dir)},
                       timeout=120)
        pid = int((state_dir / "server.pid").read_text().strip())
        server = cls("keystone" if cache else "keystone-nocache", KEYSTONE_URL, "secret",
                     pid=pid)
        server.state_dir = state_dir
        return server

    def stop(self) -> None:
        _stop_pid(self.pid)  # the uwsgi master; --die-on-term takes its workers down
        deadline = time.monotonic() + 10
        while port_open(KEYSTONE_PORT) and time.monotonic() < deadline:
            time.sleep(0.2)
