"""`gureum up`: the whole cloud in one process.

Starts, in order: database migrations, the key repository, first-start
bootstrap, the API server, the conductor, N compute agents (c01, c02, …) and a
network agent on each of those hosts.
Writes clouds.yaml, prints one line saying the cloud is ready, and runs until
SIGINT/SIGTERM, then stops everything in reverse order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from gureum.agent.service import ComputeAgent
from gureum.api.server import build_app, make_server, wait_started
from gureum.bus import open_transport
from gureum.conductor.service import Conductor
from gureum.config import Settings
from gureum.db import Database
from gureum.identity import bootstrap as identity_bootstrap
from gureum.netagent.service import NetworkAgent
from gureum.network import bootstrap as network_bootstrap

log = logging.getLogger("gureum")


def host_names(count: int) -> list[str]:
    return [f"c{i:02d}" for i in range(1, count + 1)]


def write_clouds_yaml(path: Path, public_url: str, region: str, admin_password: str,
                      demo_password: str) -> None:
    def cloud(user: str, password: str, project: str) -> list[str]:
        return [
            "    auth:",
            f"      auth_url: {json.dumps(public_url + '/identity')}",
            f"      username: {json.dumps(user)}",
            f"      password: {json.dumps(password)}",
            f"      project_name: {json.dumps(project)}",
            "      user_domain_name: Default",
            "      project_domain_name: Default",
            f"    region_name: {json.dumps(region)}",
            "    interface: public",
            "    identity_api_version: 3",
        ]

    lines = ["# Written by `gureum up`. Use: export OS_CLIENT_CONFIG_FILE=" + str(path),
             "clouds:", "  gureum:", *cloud("admin", admin_password, "admin"),
             "  gureum-demo:", *cloud("demo", demo_password, "demo")]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def read_passwords(path: Path) -> tuple[str, str] | None:
    """The admin and demo passwords from an existing clouds.yaml."""
    if not path.exists():
        return None
    found: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("password:"):
            found.append(json.loads(line.split(":", 1)[1].strip()))
    return (found[0], found[1]) if len(found) >= 2 else None


def prepare(settings: Settings, db: Database, out: Any = sys.stderr) -> tuple[str, str] | None:
    """Migrations, keys and bootstrap; returns (admin, demo) passwords when known."""
    from gureum.identity.core import Identity

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    db.upgrade()
    if db.is_sqlite and (settings.data_dir / "gureum.db").exists():
        os.chmod(settings.data_dir / "gureum.db", 0o600)
    identity = Identity(settings, db)
    if identity.keys.setup():
        print(f"created the token key repository in {identity.keys.path}", file=out)
    if identity.credential_keys.setup():
        print(f"created the credential key repository in {identity.credential_keys.path}",
              file=out)
    clouds = settings.data_dir / "clouds.yaml"
    if not identity_bootstrap.is_bootstrapped(identity):
        print("first start: creating the Default domain, projects, roles, users and the "
              "service catalog…", file=out)
        creds = identity_bootstrap.bootstrap(identity, settings.public_url,
                                             settings.server.region)
        passwords = (creds.admin_password, creds.demo_password)
        _bootstrap_compute(db)
        _bootstrap_images(settings, db, out)
        network_bootstrap.create_default_networks(settings, db, out)
    else:
        identity_bootstrap.reconcile_endpoints(identity, settings.public_url)
        identity_bootstrap.reconcile_roles(identity)
        _test_guest_on_qemu(settings, db, out)
        network_bootstrap.create_public_network(settings, db, out)
        passwords = read_passwords(clouds)  # type: ignore[assignment]
    if passwords is not None:
        write_clouds_yaml(clouds, settings.public_url, settings.server.region, *passwords)
    return passwords


def _bootstrap_compute(db: Database) -> None:
    from gureum.compute.flavors import create_default_flavors

    with db.session() as s:
        create_default_flavors(s)


def _bootstrap_images(settings: Settings, db: Database, out: Any) -> None:
    try:
        from gureum.image import bootstrap as image_bootstrap
    except ImportError:
        return
    image_bootstrap.register_default_images(settings, db, out)


def _test_guest_on_qemu(settings: Settings, db: Database, out: Any) -> None:
    """A cloud first started on the fake driver gets the test guest as cirros once it
    runs on QEMU (the placeholder boots nothing)."""
    from gureum.virt import resolve_driver

    if resolve_driver(settings.compute.driver) == "qemu":
        from gureum.image.bootstrap import upgrade_placeholder

        upgrade_placeholder(settings, db, out)


class Cloud:
    """Every role of a cloud in this event loop: API server, conductor, compute agents."""

    def __init__(self, settings: Settings, hosts: int) -> None:
        self.settings = settings
        self.hosts = hosts
        self.db = Database(settings.database_url, echo=settings.database.echo)
        self.passwords: tuple[str, str] | None = None
        self.bus = open_transport(settings.bus.url, prefix=settings.bus.prefix,
                                  prefetch=settings.bus.prefetch)
        self.app = build_app(settings, self.db, self.bus)
        self.server = make_server(self.app, settings)
        self.conductor = Conductor(settings, self.db, self.bus)
        # One process: NIC changes its API held before a restart are the conductor's
        # to finish at once (gureum/compute/interfaces.py).
        self.conductor.endpoint.server_interfaces.api_here = True
        self.agents = [ComputeAgent(settings, self.bus, name) for name in host_names(hosts)]
        self.network_agents = [NetworkAgent(settings, self.bus, name)
                               for name in host_names(hosts)]
        self.server_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.passwords = await asyncio.to_thread(prepare, self.settings, self.db)
        await self.bus.start()
        self.server_task = asyncio.create_task(self.server.serve(), name="api")
        await wait_started(self.server, self.server_task)
        # The conductor serves first (agents report to it as they start); what a
        # previous run left in flight is taken up once the agents are listening.
        await self.conductor.start(recover=False)
        for agent in self.agents:
            await agent.start()
        for netagent in self.network_agents:
            await netagent.start()
        await self.conductor.recover()

    def ready_line(self) -> str:
        settings = self.settings
        clouds = settings.data_dir / "clouds.yaml"
        hint = (f"export OS_CLIENT_CONFIG_FILE={clouds}; openstack --os-cloud gureum "
                "token issue" if self.passwords else
                f"clouds.yaml is missing from {settings.data_dir}; give admin and demo new "
                "passwords with `gureum manage bootstrap --reset-passwords`")
        hosts = self.hosts
        return (f"gureum is ready at {settings.public_url} ({hosts} compute host"
                f"{'s' if hosts != 1 else ''}, data in {settings.data_dir}). Next: {hint}")

    async def stop(self) -> None:
        """Stop every role; a phase that hangs is logged and left behind, never waited on
        forever (a stuck client connection must not keep the process alive)."""
        for netagent in reversed(self.network_agents):
            await _bounded(netagent.stop(), f"network agent {netagent.host}")
        for agent in reversed(self.agents):
            await _bounded(agent.stop(), f"compute agent {agent.host}")
        await _bounded(self.conductor.stop(), "conductor")
        self.server.should_exit = True
        if self.server_task is not None:
            done, _ = await asyncio.wait({self.server_task}, timeout=10)
            if not done:
                log.warning("the API server did not stop within 10s; leaving it")
                self.server_task.cancel()
        await _bounded(self.bus.stop(), "message bus")
        self.app.shutdown()
        self.db.dispose()


async def _bounded(coro: Any, what: str, timeout: float = 15) -> None:
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        log.warning("stopping the %s took more than %ss; leaving it", what, timeout)
        task.cancel()
    elif task.exception() is not None:
        log.warning("stopping the %s failed: %r", what, task.exception())


async def run_cloud(settings: Settings, hosts: int, ready_out: Any = sys.stdout) -> None:
    """`gureum up`: start, say so, run until SIGINT/SIGTERM, stop cleanly."""
    cloud = Cloud(settings, hosts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cloud.start()
        print(cloud.ready_line(), file=ready_out, flush=True)
        assert cloud.server_task is not None
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({cloud.server_task, stopper},
                                     return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if cloud.server_task in done:
            cloud.server_task.result()
    finally:
        print("gureum is stopping…", file=sys.stderr, flush=True)
        await cloud.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("gureum stopped.", file=sys.stderr, flush=True)
