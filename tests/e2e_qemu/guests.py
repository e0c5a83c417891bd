"""An operator at a `gureum up --driver qemu` cloud, and what the test guest prints.

The cloud is the real `gureum up --driver qemu --hosts 2` subprocess (or, for a
host that dies, its roles as separate processes), driven by the real
`openstack` CLI (tests/scenarios/ops.py). Every guest is a real
``qemu-system-x86_64`` process running the test image (gureum/testimage), whose
serial console says what the guest saw: its RAM and disk size, its boot
counter, its NICs' MACs, a ready marker, a tick a second, and how it powered
off. This module reads those lines and looks at the host: QEMU processes,
files left behind, taps on bridges.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.harness import GureumUp
from tests.scenarios.ops import ADMIN, CliServer, Operator

READY = "GUREUM-READY"  # gureum.testimage.READY_MARKER
BOOT_TIMEOUT = 180.0  # a TCG boot on a busy 2-core machine, with room
START_TIMEOUT = 600.0  # the first start builds the test image


@dataclass
class Boot:
    """One boot of the test guest, as its console shows it."""

    ram_mb: int | None = None
    disk_mb: int | None = None
    boot_count: int | None = None
    nics: list[tuple[str, str]] = field(default_factory=list)  # (name, MAC)
    acpi: str = ""
    ready: bool = False
    ticks: list[int] = field(default_factory=list)
    powered_off_cleanly: bool = False

    @property
    def last_tick(self) -> int:
        return self.ticks[-1] if self.ticks else 0


def boots(console: str) -> list[Boot]:
    """Every boot on the console, oldest first (a console log spans power cycles)."""
    out: list[Boot] = []
    for raw in console.splitlines():
        line = raw.strip().strip("\x00")
        if line.startswith("gureum-guest: kernel") and "init starting" in line:
            out.append(Boot())
            continue
        if not out:
            continue
        boot = out[-1]
        if line == READY:
            boot.ready = True
        elif line == "gureum-guest: powered off cleanly":
            boot.powered_off_cleanly = True
        elif line.startswith("tick "):
            with contextlib.suppress(ValueError):
                boot.ticks.append(int(line[5:]))
        elif line.startswith("ram-mb: "):
            boot.ram_mb = int(line[8:])
        elif line.startswith("disk-mb: "):
            boot.disk_mb = int(line[9:])
        elif line.startswith("boot-count: "):
            value = line[12:]
            boot.boot_count = int(value) if value.isdigit() else None
        elif line.startswith("nic: "):
            name, _, mac = line[5:].partition(" ")
            boot.nics.append((name, mac.lower()))
        elif line.startswith("acpi: "):
            boot.acpi = line[6:]
    return out


def ticks(console: str) -> list[int]:
    """Every tick on the console, in order (across boots and hosts)."""
    return [int(m) for m in re.findall(r"^tick (\d+)\s*$", console, re.MULTILINE)]


class QemuCloud(Operator):
    """The admin and the demo member of a QEMU cloud, and a look at its hosts."""

    def __init__(self, url: str, clouds_yaml: Path, cli: CliServer | None, data_dir: Path,
                 extra_roots: tuple[Path, ...] = ()) -> None:
        super().__init__(url, clouds_yaml, cli)
        self.data_dir = data_dir
        self.roots = (data_dir, *extra_roots)

    # -- the console ----------------------------------------------------------------------
    def console(self, server_id: str) -> str:
        """What `openstack console log show` prints, over the API (cheap to poll)."""
        r = self.call("POST", f"/servers/{server_id}/action",
                      json={"os-getConsoleOutput": {"length": None}})
        assert r.status_code == 200, r.text
        return str(r.json()["output"])

    def wait_console(self, server_id: str, check: Callable[[str], Any], what: str,
                     timeout: float = BOOT_TIMEOUT) -> Any:
        """Poll the console until ``check(text)`` is true-ish; returns its value."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.console(server_id)
            found = check(text)
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"{server_id}: timed out waiting for {what}; console tail:\n"
                             f"{text[-2000:]}\nserver: {self.show(server_id)}")

    def wait_boot(self, server_id: str, number: int, timeout: float = BOOT_TIMEOUT) -> Boot:
        """The guest's ``number``-th boot on this console, once it printed its ready marker."""
        def ready(text: str) -> Boot | None:
            seen = boots(text)
            return seen[number - 1] if len(seen) >= number and seen[number - 1].ready \
                else None
        return self.wait_console(server_id, ready, f"boot {number} to be ready", timeout)

    def wait_tick(self, server_id: str, above: int, timeout: float = 60) -> int:
        def later(text: str) -> int | None:
            seen = ticks(text)
            return seen[-1] if seen and seen[-1] > above else None
        return int(self.wait_console(server_id, later, f"a tick above {above}", timeout))

    # -- the hosts ------------------------------------------------------------------------
    def host_of(self, server_id: str) -> str:
        return str(self.show(server_id)["OS-EXT-SRV-ATTR:host"])

    def leftovers(self, guest_id: str) -> list[str]:
        """Files and directories of the guest's anywhere in the cloud's directories, and
        its QEMU processes: what a delete must not leave behind."""
        found = [f"process {p.pid}: {' '.join(p.info['cmdline'] or [])}"
                 for p in qemu_processes(guest_id)]
        for root in self.roots:
            for path in root.rglob(f"*{guest_id}*"):
                found.append(str(path))
        return found


def qemu_processes(guest_id: str) -> list[psutil.Process]:
    """The running QEMU processes of a guest (its -uuid), on any host of this machine."""
    out = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if not cmd or "qemu-system" not in os.path.basename(cmd[0]):
            continue
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(a == guest_id for a in cmd) or any(guest_id in a for a in cmd):
            out.append(proc)
    return out


def process_host(proc: psutil.Process) -> str | None:
    """Which compute host a QEMU process belongs to: its files are under hosts/<host>/."""
    for arg in proc.info.get("cmdline") or proc.cmdline():
        m = re.search(r"/hosts/(c\d+)/", arg)
        if m:
            return m.group(1)
    return None


def wait_gone(guest_id: str, host: str | None = None, timeout: float = 30) -> None:
    """Until no QEMU process of the guest runs (on ``host``, when given)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in qemu_processes(guest_id)
                if host is None or process_host(p) == host]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"QEMU of {guest_id} still runs: "
                                 f"{[' '.join(p.info['cmdline']) for p in left]}")
        time.sleep(0.2)


# -- NICs on the host ---------------------------------------------------------------------

def links(master: str | None = None) -> dict[str, dict[str, Any]]:
    """Network links of this machine (``ip -j link``), those enslaved to ``master``."""
    argv = ["ip", "-j", "link", "show", *(["master", master] if master else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {}
    return {link["ifname"]: link for link in json.loads(proc.stdout or "[]")}


def is_root() -> bool:
    return os.geteuid() == 0


# -- the cloud ------------------------------------------------------------------------------

def require_qemu() -> None:
    """The QEMU tests are part of the suite: a missing QEMU fails them, saying why."""
    missing = [b for b in ("qemu-system-x86_64", "qemu-img") if shutil.which(b) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install Debian's qemu-system-x86 and "
                    "qemu-utils (`make up` or .ci/run do it)")


@contextlib.contextmanager
def qemu_cloud(tmp_path_factory: pytest.TempPathFactory, cli: CliServer | None, name: str,
               hosts: int = 2, shared: bool = False, **settings: dict[str, Any]
               ) -> Iterator[QemuCloud]:
    """`gureum up --driver qemu --hosts N` of the module's own.

    ``shared``: the hosts' ``[compute] instances_path`` is one directory (as one NFS
    export mounted on each), detected by the hosts' marker files; otherwise each
    host has its own.
    """
    require_qemu()
    root: Path = tmp_path_factory.mktemp(name)
    data_dir = root / "data"
    sections: dict[str, dict[str, Any]] = {k: dict(v) for k, v in settings.items()}
    extra: tuple[Path, ...] = ()
    if shared:
        instances = root / "shared-instances"
        instances.mkdir()
        sections.setdefault("compute", {})["instances_path"] = str(instances)
        extra = (instances,)
    up = GureumUp(data_dir, hosts=hosts, extra_args=["--driver", "qemu"], settings=sections)
    up.start(timeout=START_TIMEOUT)
    op = QemuCloud(up.url, up.clouds_yaml, cli, data_dir, extra)
    try:
        yield op
    finally:
        try:
            cleanup(op)
        finally:
            op.close()
            code = up.stop(timeout=60)
            clean_data_plane(data_dir)
            assert code == 0, up.log_path.read_text()[-3000:]


def clean_data_plane(data_dir: Path) -> None:
    """Remove what the hosts' linuxbridge data planes made (bridges, namespaces,
    dnsmasq, nftables tables): a stopped cloud's networks outlive it, as its guests
    would, and the next test's must not meet them."""
    from gureum.netagent.dataplane.linuxbridge import LinuxBridgeDataPlane
    for record in sorted(data_dir.glob("hosts/*/dataplane/record.json")):
        host_dir = record.parent.parent
        with contextlib.suppress(Exception):
            LinuxBridgeDataPlane.for_state_dir(host_dir.name, host_dir).cleanup_now()


def cleanup(op: QemuCloud) -> None:
    """Delete what a failed test left running: guests outlive `gureum up` by design, so
    a test run must not leave its QEMU processes behind."""
    r = op.call("GET", "/servers?all_tenants=1")
    if r.status_code != 200:
        return
    for server in r.json()["servers"]:
        with contextlib.suppress(Exception):
            op.delete(server["id"], timeout=60)
    for server in r.json()["servers"]:
        for proc in qemu_processes(server["id"]):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def server_ports(op: Operator, server: str) -> list[dict[str, Any]]:
    """The server's ports as `openstack port show` prints them (binding included)."""
    listed = op.cli_json("port", "list", "--server", server, cloud=ADMIN)
    return [op.cli_json("port", "show", row["ID"], cloud=ADMIN) for row in listed]
