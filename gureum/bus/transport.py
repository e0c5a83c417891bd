"""The transport interface and the RPC dispatch shared by every transport."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from abc import ABC, abstractmethod
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
    async def serve(self, topic: str, server: str, endpoint: object) -> None:
        """Dispatch messages for (topic) and (topic, server) to endpoint's methods."""

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


def open_transport(url: str) -> Transport:
    if url.startswith("memory://"):
        from gureum.bus.memory import MemoryTransport

        return MemoryTransport()
    if url.startswith(("amqp://", "amqps://")):
        raise ConfigError("The AMQP transport arrives with distributed mode; use memory:// "
                          "for now.")
    raise ConfigError(f"Unknown bus URL {url!r}; expected memory:// or amqp://…")


def log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("bus task failed", exc_info=task.exception())
