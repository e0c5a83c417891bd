"""The transport interface and the RPC dispatch shared by every transport."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gureum.errors import ConfigError, GureumError

log = logging.getLogger("gureum.bus")


class BusError(GureumError):
    status = 503
    title = "Service Unavailable"


class BusTimeout(BusError):
    """No reply within the timeout: the server may be down or slow."""


class RemoteError(BusError):
    """The remote handler raised; carries its error type and message."""

    def __init__(self, kind: str, message: str, status: int = 500) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.remote_message = message
        self.status = status


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode()


def decode(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(data)
    return result


@dataclass
class Admission:
    """How many messages of each lane one server runs at once: back-pressure.

    A message over its lane's bound waits in line as data, not as a task, and
    starts when a message of the same lane finishes (first come, first served).
    Lanes never wait for each other, so hour-long live migrations cannot hold up
    a console read. ``lane_of`` names a message's lane; a lane without a bound
    in ``limits`` is unbounded.
    """

    limits: dict[str, int]
    lane_of: Callable[[dict[str, Any]], str]
    running: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)  # most ever running at once

    def admit(self, message: dict[str, Any]) -> str | None:
        """The message's lane if it may start now (counted as running); else None
        (it waits and ``release`` hands it out later)."""
        lane = self.lane_of(message)
        limit = self.limits.get(lane)
        if limit is not None and self.running.get(lane, 0) >= limit:
            self.waiting.setdefault(lane, deque()).append(message)
            return None
        self._count(lane)
        return lane

    def release(self, lane: str) -> dict[str, Any] | None:
        """One message of ``lane`` finished: the next waiting one starts, if any."""
        line = self.waiting.get(lane)
        if line:
            return line.popleft()  # it takes over the finished one's place
        self.running[lane] = self.running.get(lane, 1) - 1
        return None

    def _count(self, lane: str) -> None:
        self.running[lane] = self.running.get(lane, 0) + 1
        self.peak[lane] = max(self.peak.get(lane, 0), self.running[lane])


def expired(message: dict[str, Any]) -> bool:
    """A call whose caller has stopped waiting (its timeout passed) is not run."""
    deadline = message.get("deadline")
    return isinstance(deadline, int | float) and time.time() > deadline


class Transport(ABC):
    """Topics are service kinds ("conductor", "compute"); servers are hosts ("c01")."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def call(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None, timeout: float = 60.0) -> Any:
        """Send to one server of the topic and wait for its reply."""

    @abstractmethod
    async def cast(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None) -> None:
        """Send to one server of the topic; do not wait."""

    @abstractmethod
    async def fanout(self, topic: str, method: str, args: dict[str, Any]) -> None:
        """Send to every server listening on the topic."""

    @abstractmethod
    async def serve(self, topic: str, server: str, endpoint: object,
                    admission: Admission | None = None) -> None:
        """Dispatch messages for (topic) and (topic, server) to endpoint's methods;
        ``admission`` bounds how many run at once (unbounded without it)."""

    @abstractmethod
    async def unserve(self, topic: str, server: str) -> None: ...


async def dispatch(endpoint: object, message: dict[str, Any]) -> Any:
    """Run endpoint.<method>(**args); private methods are never reachable."""
    method = message.get("method", "")
    if not isinstance(method, str) or method.startswith("_"):
        raise RemoteError("NoSuchMethod", f"{method!r}", 400)
    fn = getattr(endpoint, method, None)
    if fn is None or not callable(fn):
        raise RemoteError("NoSuchMethod", f"{type(endpoint).__name__} has no {method!r}", 400)
    result = fn(**(message.get("args") or {}))
    if inspect.isawaitable(result):
        result = await result
    return result


def error_reply(exc: BaseException) -> dict[str, Any]:
    status = getattr(exc, "status", 500)
    return {"error": {"kind": type(exc).__name__, "message": str(exc), "status": status}}


def open_transport(url: str, *, prefix: str = "gureum", prefetch: int = 256) -> Transport:
    """The transport for a bus URL: ``memory://`` (one process) or ``amqp://…`` (RabbitMQ;
    queue and exchange names start with ``prefix``; ``prefetch`` bounds the messages
    waiting in a server for their turn). Not connected until ``start``."""
    if url.startswith("memory://"):
        from gureum.bus.memory import MemoryTransport

        return MemoryTransport()
    if url.startswith(("amqp://", "amqps://")):
        from gureum.bus.amqp import AmqpTransport

        return AmqpTransport(url, prefix=prefix, prefetch=prefetch)
    raise ConfigError(f"Unknown bus URL {url!r}; expected memory:// or amqp://…")


def log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("bus task failed", exc_info=task.exception())
