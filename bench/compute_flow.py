"""Many servers at once through a sequence of API calls and awaited states.

A flow takes each server through stages: a request (create, an action, delete), then a
state the ``Watcher`` must report (ACTIVE, VERIFY_RESIZE, SHUTOFF, DELETED…), then
perhaps the next request (confirmResize as soon as that server reached VERIFY_RESIZE).
Every server moves on its own; the first requests of all servers go out at once (or
``concurrency`` at a time). A server that reaches ERROR is done, with its fault.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.compute_cloud import ApiError, ComputeClient, Watcher

Request = Callable[[str], Awaitable[httpx.Response]]
Done = Callable[[dict[str, Any], "Track"], bool]


@dataclass(frozen=True)
class Stage:
    """Send ``request`` for the server, then wait until ``done`` holds for it."""

    name: str
    request: Request | None
    done: Done


@dataclass
class Track:
    """One server's way through the stages."""

    server_id: str = ""
    origin: dict[str, Any] = field(default_factory=dict)  # its state before the flow
    sent: float = 0.0  # the first request went out (time.monotonic())
    api_ms: list[float] = field(default_factory=list)  # each request's response time
    reached: list[float] = field(default_factory=list)  # when each stage's state was seen
    stage: int = 0
    error: str = ""
    finished: bool = False

    @property
    def total(self) -> float:
        return self.reached[-1] - self.sent


@dataclass
class FlowResult:
    stages: list[str]
    tracks: list[Track]
    started: float  # the first request went out
    ended: float  # the last server finished (or the time limit)
    timed_out: int = 0

    @property
    def ok(self) -> list[Track]:
        return [t for t in self.tracks if not t.error and t.finished]

    @property
    def failed(self) -> list[Track]:
        return [t for t in self.tracks if t.error]

    @property
    def wall(self) -> float:
        return self.ended - self.started

    def stage_seconds(self, index: int) -> list[float]:
        """Seconds from the request of stage ``index`` (the first: from the first
        request) to its state, for the servers that finished."""
        out = []
        for t in self.ok:
            begin = t.sent if index == 0 else t.reached[index - 1]
            out.append(t.reached[index] - begin)
        return out

    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.failed:
            counts[t.error] = counts.get(t.error, 0) + 1
        return counts


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Flow:
    def __init__(self, client: ComputeClient, watcher: Watcher, stages: list[Stage],
                 concurrency: int | None = None, timeout: float = 600.0) -> None:
        self.client = client
        self.watcher = watcher
        self.stages = stages
        self.sem = asyncio.Semaphore(concurrency) if concurrency else None
        self.timeout = timeout
        self.tracks: dict[str, Track] = {}
        self.latest: dict[str, tuple[dict[str, Any], float]] = {}
        self.pending = 0
        self.all_done = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    # -- the watcher's side ------------------------------------------------------------
    def observe(self, server: dict[str, Any], now: float) -> None:
        sid = str(server["id"])
        self.latest[sid] = (server, now)
        track = self.tracks.get(sid)
        if track is not None and track.sent:
            self._check(track, server, now)

    def _check(self, track: Track, server: dict[str, Any], now: float) -> None:
        if track.finished or track.error or len(track.reached) > track.stage:
            return  # done, or this stage's state was seen and its successor not yet sent
        if server["status"] == "ERROR":
            fault = server.get("fault") or {}
            self._finish(track, error=str(fault.get("message") or "ERROR (no fault)"))
            return
        stage = self.stages[track.stage]
        if not stage.done(server, track):
            return
        track.reached.append(now)
        if track.stage + 1 == len(self.stages):
            self._finish(track)
            return
        track.stage += 1
        self._spawn(self._send(track, self.stages[track.stage]))

    def _finish(self, track: Track, error: str = "") -> None:
        track.error = error
        track.finished = not error
        self.pending -= 1
        if self.pending <= 0:
            self.all_done.set()

    # -- requests ------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, track: Track, stage: Stage) -> None:
        assert stage.request is not None
        t0 = time.monotonic()
        try:
            if self.sem is not None:
                async with self.sem:
                    t0 = time.monotonic()
                    r = await stage.request(track.server_id)
            else:
                r = await stage.request(track.server_id)
        except httpx.HTTPError as exc:
            self._finish(track, error=f"{stage.name}: {type(exc).__name__}")
            return
        track.api_ms.append((time.monotonic() - t0) * 1000)
        if not track.sent:
            track.sent = t0
        if r.status_code >= 400:
            self._finish(track, error=f"{stage.name}: HTTP {r.status_code}")
            return
        # The state may have been seen before the answer came: look again.
        seen = self.latest.get(track.server_id)
        if seen is not None and seen[1] >= t0:
            self._check(track, *seen)

    async def _create(self, track: Track, body: dict[str, Any]) -> None:
        async with self.sem or _nullcontext():
            t0 = time.monotonic()
            try:
                server_id = await self.client.create(body)
            except (ApiError, httpx.HTTPError) as exc:
                track.sent = t0
                self._finish(track, error=f"create: {exc}"[:200])
                return
        track.api_ms.append((time.monotonic() - t0) * 1000)
        track.server_id, track.sent = server_id, t0
        self.tracks[server_id] = track
        seen = self.latest.get(server_id)
        if seen is not None:
            self._check(track, *seen)

    # -- running ----------------------------------------------------------------------------
    async def run(self, servers: list[dict[str, Any]] | None = None,
                  create: list[dict[str, Any]] | None = None) -> FlowResult:
        """Either existing ``servers`` (their current detail) through all stages, or
        ``create`` bodies: the creation is the first stage's request."""
        self.watcher.subscribers.append(self.observe)
        tracks: list[Track] = []
        try:
            started = time.monotonic()
            if create is not None:
                self.pending = len(create)
                for body in create:
                    track = Track()
                    tracks.append(track)
                    self._spawn(self._create(track, body))
            else:
                assert servers is not None
                self.pending = len(servers)
                for server in servers:
                    track = Track(server_id=str(server["id"]), origin=server)
                    self.tracks[track.server_id] = track
                    tracks.append(track)
                for track in tracks:
                    self._spawn(self._send(track, self.stages[0]))
            if self.pending <= 0:
                self.all_done.set()
            timed_out = 0
            try:
                await asyncio.wait_for(self.all_done.wait(), self.timeout)
            except TimeoutError:
                timed_out = self.pending
                for track in tracks:
                    if not track.finished and not track.error:
                        track.error = f"not done in {self.timeout:g} s (stage " \
                                      f"{self.stages[track.stage].name})"
            ended = max((t.reached[-1] for t in tracks if t.finished and t.reached),
                        default=time.monotonic())
            sent = [t.sent for t in tracks if t.sent]
            return FlowResult([s.name for s in self.stages], tracks,
                              min(sent, default=started), ended, timed_out)
        finally:
            self.watcher.subscribers.remove(self.observe)
            for task in list(self.tasks):
                task.cancel()


class _nullcontext:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: Any) -> None:
        return None
