"""Following one real guest through the Compute API: its state and its serial console.

The QEMU benchmark (bench/qemu.py) times each step from the request to the state the
API shows and, where the guest boots, to the ``GUREUM-READY`` line the test guest
(gureum/testimage) prints on its console. ``Follower.follow`` polls both, one
``GET /servers/{id}`` and one ``os-getConsoleOutput`` per interval, so a time is late
by up to one interval plus the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.compute_cloud import ApiError, ComputeClient, host_of, settled

READY = "GUREUM-READY"  # gureum.testimage.READY_MARKER


class StepFailed(RuntimeError):
    """A step did not reach its state (ERROR, a timeout, the wrong host)."""


@dataclass
class Boot:
    """One boot of the test guest as its console shows it."""

    ready: bool = False
    uptime_at_ready: float | None = None  # the guest's clock: kernel start → ready, s
    ram_mb: int | None = None
    disk_mb: int | None = None
    powered_off_cleanly: bool = False
    ticks: list[int] = field(default_factory=list)


def boots(console: str) -> list[Boot]:
    """Every boot on a console text, oldest first (the log spans power cycles)."""
    out: list[Boot] = []
    for raw in console.splitlines():
        line = raw.strip().strip("\x00")
        if line.startswith("gureum-guest: kernel") and "init starting" in line:
            out.append(Boot())
            continue
        if not out:
            continue
        boot = out[-1]
        with contextlib.suppress(ValueError):
            if line == READY:
                boot.ready = True
            elif line == "gureum-guest: powered off cleanly":
                boot.powered_off_cleanly = True
            elif line.startswith("uptime-at-ready: "):
                boot.uptime_at_ready = float(line.split(":", 1)[1])
            elif line.startswith("ram-mb: "):
                boot.ram_mb = int(line[8:])
            elif line.startswith("disk-mb: "):
                boot.disk_mb = int(line[9:])
            elif line.startswith("tick "):
                boot.ticks.append(int(line[5:]))
    return out


def last_tick(console: str) -> int:
    found = re.findall(r"^tick (\d+)\s*$", console, re.MULTILINE)
    return int(found[-1]) if found else 0


@dataclass
class Mark:
    """The console before a step: a boot that becomes ready after it is a new one. A
    console that no longer starts with this text was replaced (the guest moved to a
    host with its own instances directory), and then every boot on it is new."""

    before: str = ""

    def new_ready_boot(self, text: str) -> Boot | None:
        fresh = text[len(self.before):] if text.startswith(self.before) else text
        return next((b for b in boots(fresh) if b.ready), None)


@dataclass
class Seen:
    """When a step's state and (if asked) the new boot's ready line were seen, in
    seconds since the step's request was sent."""

    status_s: float | None = None
    ready_s: float | None = None
    server: dict[str, Any] = field(default_factory=dict)
    boot: Boot | None = None


Check = Callable[[dict[str, Any]], bool]


class Follower:
    def __init__(self, client: ComputeClient, poll: float = 0.2) -> None:
        self.client = client
        self.poll = poll

    async def server(self, sid: str) -> dict[str, Any] | None:
        r = await self.client.send("GET", f"/compute/v2.1/servers/{sid}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise ApiError(f"GET server {sid}", r)
        server: dict[str, Any] = r.json()["server"]
        return server

    async def console(self, sid: str) -> str:
        """The whole console log ("" while the API cannot give it, e.g. mid-move)."""
        try:
            r = await self.client.action(sid, {"os-getConsoleOutput": {"length": None}})
        except httpx.HTTPError:
            return ""
        return str(r.json().get("output") or "") if r.status_code == 200 else ""

    async def mark(self, sid: str) -> Mark:
        return Mark(await self.console(sid))

    async def act(self, sid: str, body: dict[str, Any]) -> tuple[float, str]:
        """Send a server action; (when it was sent, its request id)."""
        t0 = time.monotonic()
        r = await self.client.action(sid, body)
        if r.status_code not in (200, 202, 204):
            raise StepFailed(f"{next(iter(body))}: {r.status_code} {r.text[:200]}")
        return t0, r.headers.get("x-openstack-request-id", "")

    async def follow(self, sid: str, t0: float, done: Check | None, mark: Mark | None = None,
                     need_ready: bool = True, failed: Callable[[dict[str, Any]], str | None]
                     | None = None, timeout: float = 600.0) -> Seen:
        """Poll until ``done(server)`` (skipped when None) and, when ``mark`` is given and
        ``need_ready``, until a new boot printed its ready line. ERROR, ``failed`` or the
        timeout raise StepFailed."""
        seen = Seen()
        status_done = done is None
        ready_done = mark is None or not need_ready
        while True:
            if not status_done:
                server = await self.server(sid)
                now = time.monotonic()
                if server is None:
                    raise StepFailed("the server is gone")
                seen.server = server
                if server["status"] == "ERROR":
                    fault = (server.get("fault") or {}).get("message", "")
                    raise StepFailed(f"ERROR: {fault}")
                why = failed(server) if failed else None
                if why:
                    raise StepFailed(why)
                if done is not None and done(server):
                    seen.status_s = now - t0
                    status_done = True
            if mark is not None and seen.ready_s is None:
                boot = mark.new_ready_boot(await self.console(sid))
                if boot is not None:
                    seen.ready_s = time.monotonic() - t0
                    seen.boot = boot
                    ready_done = True
            if status_done and ready_done:
                return seen
            if time.monotonic() - t0 > timeout:
                state = {k: seen.server.get(k) for k in (
                    "status", "OS-EXT-STS:task_state", "OS-EXT-SRV-ATTR:host")}
                raise StepFailed(f"timed out after {timeout:.0f} s (status reached: "
                                 f"{status_done}, ready: {seen.ready_s is not None}; {state})")
            await asyncio.sleep(self.poll)

    async def wait_tick(self, sid: str, above: int, timeout: float = 60.0) -> int:
        """The guest still runs: a tick above ``above`` on its console."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tick = last_tick(await self.console(sid))
            if tick > above:
                return tick
            await asyncio.sleep(0.5)
        raise StepFailed(f"no tick above {above} within {timeout:.0f} s")

    async def gone(self, sid: str, t0: float, timeout: float = 300.0) -> float:
        while time.monotonic() - t0 < timeout:
            if await self.server(sid) is None:
                return time.monotonic() - t0
            await asyncio.sleep(self.poll)
        raise StepFailed(f"still there {timeout:.0f} s after delete")

    async def live_figures(self, sid: str, request_id: str, tries: int = 10
                           ) -> dict[str, float]:
        """QEMU's figures of a live migration, from the details of its
        compute_live_migration event (`openstack server event show`, 2.84, admin)."""
        for _ in range(tries):
            actions = (await self.client.get(
                f"/compute/v2.1/servers/{sid}/os-instance-actions", "compute 2.84")
            )["instanceActions"]
            live = [a for a in actions if a["action"] == "live-migration"]
            mine = [a for a in live if a["request_id"] == request_id] or live[:1]
            if mine:
                detail = (await self.client.get(
                    f"/compute/v2.1/servers/{sid}/os-instance-actions/"
                    f"{mine[0]['request_id']}", "compute 2.84"))["instanceAction"]
                for event in detail.get("events") or []:
                    if event["event"] == "compute_live_migration" and event.get("details"):
                        return parse_figures(event["details"])
            await asyncio.sleep(0.5)
        raise StepFailed("no compute_live_migration event with QEMU's figures")


def parse_figures(details: str) -> dict[str, float]:
    """'… downtime 42 ms, total 610 ms (12.3 MB of memory and 64.0 MB of disk copied).'"""
    out: dict[str, float] = {}
    for key, pattern in (("downtime_ms", r"downtime (\d+) ms"), ("total_ms", r"total (\d+) ms"),
                         ("memory_mb", r"([\d.]+) MB of memory"),
                         ("disk_mb", r"([\d.]+) MB of disk")):
        found = re.search(pattern, details)
        if found:
            out[key] = float(found.group(1))
    return out


def on_host(status: str, host: str) -> Check:
    return lambda s: settled(s, status) and host_of(s) == host


def off_host(status: str, host: str) -> Check:
    return lambda s: settled(s, status) and host_of(s) != host


def back_on_source(source: str) -> Callable[[dict[str, Any]], str | None]:
    """A move that ended where it began: the server was busy, and is settled on the
    source again (a failed live migration leaves the guest running there)."""
    busy = False

    def check(server: dict[str, Any]) -> str | None:
        nonlocal busy
        if server.get("OS-EXT-STS:task_state"):
            busy = True
            return None
        if busy and host_of(server) == source and server["status"] == "ACTIVE":
            return f"the move ended with the guest still on {source}"
        return None
    return check
