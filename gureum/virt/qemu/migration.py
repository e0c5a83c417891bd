"""Live migration between QEMU processes on two hosts, over QMP (S3).

Destination (``listen``): QEMU was started with ``-incoming defer`` from the
same definition as the source's (same machine, RAM, vCPUs, devices). For a
block migration its empty disk (same virtual size, on the same cached base) is
exported writable over NBD (``nbd-server-start`` on a socket bound here and
handed to QEMU, ``nbd-server-add``); then ``migrate-incoming`` listens for the
memory. The URI returned names both ends::

    qemu+tcp://HOST:PORT/GUEST?nbd=NBDPORT&drive=disk0&sync=top

Source (``Outgoing``): capabilities ``return-path`` (the destination confirms
it loaded the state, so a destination that fails leaves the source running),
and for a block migration ``pause-before-switchover``. Block migration is the
libvirt way: ``drive-mirror`` of each drive to its NBD export (``sync=top``:
the destination has the base image; ``full`` when it has not), wait until the
mirrors are ready, ``migrate``; at ``pre-switchover`` (the guest's vCPUs are
stopped) the mirrors are cancelled, which for a ready mirror means the last
writes are copied and the target closed, then ``migrate-continue``. The
destination starts the guest only once the disks are complete.

Shared instances directory (both hosts see each other's marker file): memory
only, both QEMUs open the same qcow2 file (cache=none; QEMU hands the image
over with the migration). Downtime: QEMU's own measurement, ``downtime`` of
``query-migrate`` at completion, is returned with the other figures.

Abort: ``migrate_cancel`` and the mirrors cancelled at once; the guest keeps
running on the source, untouched (its disk was only read). Force complete:
the downtime limit is lifted and the bandwidth unbounded, so QEMU pauses the
guest for the final copy however long it takes (Nova pauses the guest; the
effect is the same and the guest's run state is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gureum.virt.driver import MigrationFailed
from gureum.virt.qemu.monitor import Monitor, MonitorError, Session
from gureum.virt.qemu.transfer import listener

log = logging.getLogger("gureum.virt.qemu.migration")

SCHEME = "qemu+tcp"
PROGRESS_INTERVAL = 1.0
# query-migrate states of a migration still under way on the source.
IN_PROGRESS = ("setup", "active", "pre-switchover", "device", "wait-unplug",
               "postcopy-active", "cancelling")
UNLIMITED = 1 << 40  # bytes/s: "no bound" for max-bandwidth and mirror speed
NBD_FD = "gureum-nbd"


@dataclass(frozen=True)
class MigrationOptions:
    """How this host migrates (``[compute]`` migration_* settings)."""

    address: str = "127.0.0.1"  # where other hosts reach this one's migration ports
    ports: tuple[int, int] | None = None  # None: ephemeral ports
    bandwidth_mib: float = 0.0  # MiB/s for memory and disks; 0: unbounded
    downtime_ms: int = 300  # QEMU's default downtime limit
    # Seconds per GiB of memory and disk before a migration that does not finish is
    # aborted (Nova's live_migration_completion_timeout).
    completion_timeout: float = 800.0
    poll: float = 0.05


@dataclass(frozen=True)
class Target:
    """Where a source sends a guest: the destination's memory port and NBD exports."""

    host: str
    port: int
    guest_id: str = ""
    nbd_port: int | None = None
    drives: tuple[str, ...] = ()
    sync: str = "top"

    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        query: dict[str, Any] = {}
        if self.nbd_port is not None:
            query = {"nbd": self.nbd_port, "drive": list(self.drives), "sync": self.sync}
        tail = f"?{urllib.parse.urlencode(query, doseq=True)}" if query else ""
        return f"{SCHEME}://{host}:{self.port}/{self.guest_id}{tail}"

    @property
    def memory_uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"

    def nbd_uri(self, drive: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nbd:{host}:{self.nbd_port}:exportname={drive}"

    @classmethod
    def parse(cls, uri: str) -> Target:
        parts = urllib.parse.urlsplit(uri)
        try:
            if parts.scheme != SCHEME or not parts.hostname or parts.port is None:
                raise ValueError
            query = urllib.parse.parse_qs(parts.query)
            nbd = int(query["nbd"][0]) if "nbd" in query else None
            sync = query.get("sync", ["top"])[0]
            if sync not in ("top", "full"):
                raise ValueError
            return cls(parts.hostname, parts.port, parts.path.strip("/"), nbd,
                       tuple(query.get("drive", [])), sync)
        except (ValueError, KeyError, IndexError):
            raise MigrationFailed(f"Not a QEMU live-migration URI: {uri!r} (expected "
                                  f"{SCHEME}://HOST:PORT/GUEST[?nbd=PORT&drive=…])") from None


# -- the destination ------------------------------------------------------------------

async def listen(mon: Monitor, options: MigrationOptions, guest_id: str,
                 drives: list[str], sync: str = "top") -> Target:
    """Make the waiting QEMU (started with ``-incoming defer``) listen; for a block
    migration export ``drives`` writable over NBD first."""
    nbd_port: int | None = None
    async with mon.session() as s:
        if drives:
            sock = listener(options.address, options.ports)
            try:
                nbd_port = int(sock.getsockname()[1])
                s.send_fd(sock.fileno())
                await s.execute("getfd", {"fdname": NBD_FD})
            finally:
                sock.close()  # QEMU holds its own copy now
            await s.execute("nbd-server-start",
                            {"addr": {"type": "fd", "data": {"str": NBD_FD}}})
            for drive in drives:
                await s.execute("nbd-server-add", {"device": drive, "writable": True})
        port = await _incoming(s, options)
    return Target(options.address, port, guest_id, nbd_port, tuple(drives), sync)


async def _incoming(s: Session, options: MigrationOptions) -> int:
    host = f"[{options.address}]" if ":" in options.address else options.address
    if options.ports is None:
        await s.execute("migrate-incoming", {"uri": f"tcp:{host}:0"})
        info = await s.execute("query-migrate")
        for addr in (info or {}).get("socket-address", []):
            if addr.get("port"):
                return int(addr["port"])
        raise MigrationFailed("QEMU listens for the migration but did not say on which port.")
    first, last = options.ports
    for port in range(first, last + 1):
        try:
            await s.execute("migrate-incoming", {"uri": f"tcp:{host}:{port}"})
            return port
        except MonitorError as exc:
            if "in use" not in str(exc):
                raise
    raise MigrationFailed(f"Every port of the migration range {first}-{last} on "
                          f"{options.address} is taken.")


async def arrived(mon: Monitor) -> bool:
    """Whether the waiting QEMU has received the whole guest (it runs, or stays paused
    when it was paused on the source). MonitorGone when its QEMU is gone."""
    async with mon.session() as s:
        status = (await s.execute("query-status") or {}).get("status")
        if status in ("inmigrate", "prelaunch", None):
            return False
        return (await s.execute("query-migrate") or {}).get("status") == "completed"


async def settle(mon: Monitor) -> None:
    """After arrival: stop exporting the disks (the source has let go of them)."""
    with contextlib.suppress(MonitorError):
        await mon.execute("nbd-server-stop")


# -- the source ---------------------------------------------------------------------------

@dataclass
class Outgoing:
    """One live migration leaving this host; ``abort`` and ``force_complete`` may be
    called while ``run`` waits for it."""

    mon: Monitor
    guest_id: str
    target: Target
    options: MigrationOptions
    block: bool
    size_bytes: int = 0  # memory + disks, for the completion timeout
    aborted: bool = False
    forced: bool = False
    jobs: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    # Called with the figures so far, at most every PROGRESS_INTERVAL seconds.
    progress: Callable[[dict[str, Any]], None] | None = None
    _reported: float = 0.0

    @property
    def drives(self) -> tuple[str, ...]:
        return self.target.drives if self.block else ()

    async def run(self) -> dict[str, Any]:
        """Move the guest; its figures when done. MigrationFailed (guest running here,
        untouched) otherwise."""
        if self.block and (self.target.nbd_port is None or not self.target.drives):
            raise MigrationFailed(f"The destination of {self.guest_id} was not prepared "
                                  "for a block migration (no disk exports in its URI).")
        status = (await self.mon.execute("query-status") or {}).get("status")
        was_running = status == "running"
        started = time.monotonic()
        try:
            await self._configure()
            for drive in self.drives:
                await self._mirror(drive)
            await self._wait_mirrors_ready(started)
            self._check_aborted()
            await self.mon.execute("migrate", {"uri": self.target.memory_uri})
            info = await self._wait_completed(started)
        except BaseException as exc:
            await self._clean_up_failure(was_running)
            if isinstance(exc, MigrationFailed):
                raise
            if isinstance(exc, MonitorError):
                raise MigrationFailed(f"Live migration of {self.guest_id} failed: {exc}; "
                                      "the guest keeps running here.") from exc
            raise
        ram = info.get("ram") or {}
        self.stats.update({
            "downtime_ms": info.get("downtime"), "total_time_ms": info.get("total-time"),
            "setup_time_ms": info.get("setup-time"),
            "memory_total_bytes": ram.get("total"),
            "memory_processed_bytes": ram.get("transferred"),
            "memory_remaining_bytes": ram.get("remaining"),
            "block_migration": self.block,
        })
        return self.stats

    def _check_aborted(self) -> None:
        if self.aborted:
            raise MigrationFailed(f"Live migration of {self.guest_id} was aborted; the "
                                  "guest keeps running here.")

    async def _configure(self) -> None:
        caps = [{"capability": "return-path", "state": True},
                {"capability": "pause-before-switchover", "state": bool(self.drives)}]
        await self.mon.execute("migrate-set-capabilities", {"capabilities": caps})
        await self._set_limits()

    async def _set_limits(self) -> None:
        if self.forced:
            bandwidth, downtime = UNLIMITED, 600_000
        else:
            mib = self.options.bandwidth_mib
            bandwidth = int(mib * (1 << 20)) if mib > 0 else UNLIMITED
            downtime = self.options.downtime_ms
        await self.mon.execute("migrate-set-parameters", {
            "max-bandwidth": max(1, bandwidth), "downtime-limit": max(1, downtime)})
        for job in self.jobs:
            with contextlib.suppress(MonitorError):
                await self.mon.execute("block-job-set-speed",
                                       {"device": job, "speed": 0 if self.forced
                                        or bandwidth >= UNLIMITED else bandwidth})

    async def _mirror(self, drive: str) -> None:
        self._check_aborted()
        job = f"mirror-{drive}-{secrets.token_hex(4)}"  # unlike any a failed try left
        args: dict[str, Any] = {
            "device": drive, "job-id": job, "target": self.target.nbd_uri(drive),
            "format": "raw", "sync": self.target.sync, "mode": "existing",
            "auto-dismiss": False}
        mib = self.options.bandwidth_mib
        if mib > 0 and not self.forced:
            args["speed"] = int(mib * (1 << 20))
        await self.mon.execute("drive-mirror", args)
        self.jobs.append(job)

    async def _jobs(self) -> dict[str, dict[str, Any]]:
        found = await self.mon.execute("query-jobs") or []
        return {j["id"]: j for j in found if j.get("id") in self.jobs}

    def _deadline(self, started: float) -> float:
        gib = max(1.0, self.size_bytes / (1 << 30))
        return started + self.options.completion_timeout * gib

    async def _wait_mirrors_ready(self, started: float) -> None:
        while self.jobs:
            self._check_aborted()
            jobs = await self._jobs()
            self._disk_stats(jobs)
            for job in self.jobs:
                found = jobs.get(job)
                if found is None or found.get("status") in ("concluded", "null",
                                                            "aborting"):
                    error = (found or {}).get("error", "the job ended")
                    raise MigrationFailed(f"Copying the disk of {self.guest_id} to the "
                                          f"destination failed: {error}; the guest keeps "
                                          "running here.")
            if all(j.get("status") == "ready" for j in jobs.values()):
                return
            self._report()
            await self._wait_or_time_out(started)

    async def _wait_or_time_out(self, started: float) -> None:
        if time.monotonic() > self._deadline(started):
            raise MigrationFailed(f"Live migration of {self.guest_id} did not finish within "
                                  "its completion timeout; aborted, the guest keeps running "
                                  "here.")
        await asyncio.sleep(self.options.poll)

    def _memory_stats(self, info: dict[str, Any]) -> None:
        ram = info.get("ram")
        if isinstance(ram, dict) and "total" in ram:
            self.stats.update({"memory_total_bytes": ram.get("total"),
                               "memory_processed_bytes": ram.get("transferred"),
                               "memory_remaining_bytes": ram.get("remaining")})

    def _report(self) -> None:
        """Hand the figures so far to ``progress`` (now and then; never fails the move)."""
        now = time.monotonic()
        if self.progress is None or not self.stats or now - self._reported < PROGRESS_INTERVAL:
            return
        self._reported = now
        try:
            self.progress(dict(self.stats))
        except Exception:
            log.exception("reporting the progress of %s failed", self.guest_id)

    def _disk_stats(self, jobs: dict[str, dict[str, Any]]) -> None:
        if not jobs:
            return
        total = sum(int(j.get("total-progress", 0)) for j in jobs.values())
        done = sum(int(j.get("current-progress", 0)) for j in jobs.values())
        self.stats.update({"disk_total_bytes": total, "disk_processed_bytes": done,
                           "disk_remaining_bytes": max(0, total - done)})

    async def _wait_completed(self, started: float) -> dict[str, Any]:
        while True:
            info: dict[str, Any] = await self.mon.execute("query-migrate") or {}
            status = info.get("status")
            if status == "completed":
                return info
            if status in ("failed", "cancelled", "cancelling"):
                self._check_aborted()
                raise MigrationFailed(f"Live migration of {self.guest_id} failed: "
                                      f"{info.get('error-desc', status)}; the guest keeps "
                                      "running here.")
            if status == "pre-switchover":
                await self._finish_mirrors()
                await self.mon.execute("migrate-continue", {"state": "pre-switchover"})
            self._memory_stats(info)
            if self.jobs:
                self._disk_stats(await self._jobs())
            self._report()
            self._check_aborted()
            await self._wait_or_time_out(started)

    async def _finish_mirrors(self) -> None:
        """The guest is stopped: let each ready mirror copy its last writes and close the
        target (a cancel of a ready mirror), then check none failed."""
        for job in self.jobs:
            await self.mon.execute("block-job-cancel", {"device": job})
        while True:
            jobs = await self._jobs()
            if all(j.get("status") == "concluded" for j in jobs.values()):
                break
            self._check_aborted()
            await asyncio.sleep(self.options.poll)
        self._disk_stats(jobs)
        for job, found in jobs.items():
            await self.mon.execute("job-dismiss", {"id": job})
            if found.get("error"):
                raise MigrationFailed(f"The last disk writes of {self.guest_id} did not "
                                      f"reach the destination: {found['error']}; the guest "
                                      "keeps running here.")
        self.jobs = []

    async def _clean_up_failure(self, was_running: bool) -> None:
        """Undo what this migration did on the source: the guest runs as before."""
        with contextlib.suppress(MonitorError):
            info = await self.mon.execute("query-migrate") or {}
            if info.get("status") in IN_PROGRESS:
                await self.mon.execute("migrate_cancel")
                for _ in range(200):
                    info = await self.mon.execute("query-migrate") or {}
                    if info.get("status") not in ("cancelling",):
                        break
                    await asyncio.sleep(0.05)
        for job in self.jobs:
            with contextlib.suppress(MonitorError):
                await self.mon.execute("block-job-cancel", {"device": job, "force": True})
        for _ in range(200):
            try:
                jobs = await self._jobs()
            except MonitorError:
                break
            if all(j.get("status") in ("concluded", "null") for j in jobs.values()):
                for job in jobs:
                    with contextlib.suppress(MonitorError):
                        await self.mon.execute("job-dismiss", {"id": job})
                break
            await asyncio.sleep(0.05)
        self.jobs = []
        if was_running:
            with contextlib.suppress(MonitorError):
                status = (await self.mon.execute("query-status") or {}).get("status")
                if status != "running":
                    await self.mon.execute("cont")

    async def abort(self) -> None:
        """Stop the migration; ``run`` then raises MigrationFailed."""
        self.aborted = True
        with contextlib.suppress(MonitorError):
            await self.mon.execute("migrate_cancel")
        for job in list(self.jobs):
            with contextlib.suppress(MonitorError):
                await self.mon.execute("block-job-cancel", {"device": job, "force": True})

    async def force_complete(self) -> None:
        """Finish now: no downtime limit, no bandwidth bound (QEMU pauses the guest for
        the final copy)."""
        self.forced = True
        with contextlib.suppress(MonitorError):
            await self._set_limits()
