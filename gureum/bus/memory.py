"""The in-process transport: asyncio queues, JSON-encoded like the wire."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from gureum.bus.transport import (
    Admission,
    BusError,
    BusTimeout,
    RemoteError,
    Transport,
    decode,
    dispatch,
    encode,
    error_reply,
    expired,
    log_task_error,
)


class _Server:
    def __init__(self, topic: str, server: str, endpoint: object,
                 admission: Admission | None) -> None:
        self.topic = topic
        self.server = server
        self.endpoint = endpoint
        self.admission = admission
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.serving = True


class MemoryTransport(Transport):
    def __init__(self) -> None:
        self._servers: dict[tuple[str, str], _Server] = {}
        self._round_robin: dict[str, itertools.cycle[str]] = {}
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._running = False

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False
        for key in list(self._servers):
            await self.unserve(*key)
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(BusError("The bus stopped."))
        self._replies.clear()

    def _pick(self, topic: str, server: str | None) -> _Server:
        if server is not None:
            target = self._servers.get((topic, server))
            if target is None:
                raise BusTimeout(f"No server {server!r} is listening on topic {topic!r}.")
            return target
        names = sorted(s for (t, s) in self._servers if t == topic)
        if not names:
            raise BusTimeout(f"Nothing is listening on topic {topic!r}.")
        cycle = self._round_robin.get(topic)
        choice = next(cycle) if cycle else None
        if choice not in names:
            self._round_robin[topic] = itertools.cycle(names)
            choice = next(self._round_robin[topic])
        return self._servers[(topic, choice)]

    async def call(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None, timeout: float = 60.0) -> Any:
        target = self._pick(topic, server)
        msg_id = str(next(self._ids))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = fut
        target.queue.put_nowait(encode({"method": method, "args": args, "reply_to": msg_id,
                                        "deadline": time.time() + timeout}))
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise BusTimeout(f"No reply from {topic}.{target.server} to {method} within "
                             f"{timeout:g}s.") from None
        finally:
            self._replies.pop(msg_id, None)
        if "error" in reply:
            err = reply["error"]
            raise RemoteError(err["kind"], err["message"], err.get("status", 500))
        return reply.get("result")

    async def cast(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None) -> None:
        self._pick(topic, server).queue.put_nowait(encode({"method": method, "args": args}))

    async def fanout(self, topic: str, method: str, args: dict[str, Any]) -> None:
        data = encode({"method": method, "args": args})
        for (t, _s), srv in list(self._servers.items()):
            if t == topic:
                srv.queue.put_nowait(data)

    async def serve(self, topic: str, server: str, endpoint: object,
                    admission: Admission | None = None) -> None:
        if (topic, server) in self._servers:
            raise BusError(f"{topic}.{server} is already being served.")
        srv = _Server(topic, server, endpoint, admission)
        self._servers[(topic, server)] = srv
        srv.task = asyncio.create_task(self._run(srv), name=f"bus-{topic}.{server}")
        srv.task.add_done_callback(log_task_error)

    async def unserve(self, topic: str, server: str) -> None:
        srv = self._servers.pop((topic, server), None)
        if srv is not None:
            srv.serving = False  # messages waiting for admission are dropped
        if srv is not None and srv.task is not None:
            srv.task.cancel()
            try:
                await srv.task
            except asyncio.CancelledError:
                pass

    async def _run(self, srv: _Server) -> None:
        while True:
            data = await srv.queue.get()
            message = decode(data)
            if srv.admission is None:
                # Each message runs on its own, so one slow handler never blocks the queue.
                self._start(srv, message, None)
                continue
            lane = srv.admission.admit(message)
            if lane is not None:
                self._start(srv, message, lane)

    def _start(self, srv: _Server, message: dict[str, Any], lane: str | None) -> None:
        task = asyncio.create_task(self._handle(srv, message))
        task.add_done_callback(log_task_error)
        if lane is not None:
            task.add_done_callback(lambda _t: self._release(srv, lane))

    def _release(self, srv: _Server, lane: str) -> None:
        assert srv.admission is not None
        while (message := srv.admission.release(lane)) is not None:
            if srv.serving and not expired(message):
                self._start(srv, message, lane)
                return

    async def _handle(self, srv: _Server, message: dict[str, Any]) -> None:
        reply_to = message.get("reply_to")
        if reply_to is not None and expired(message):
            return  # the caller gave up (BusTimeout): doing it now would surprise everyone
        try:
            result = await dispatch(srv.endpoint, message)
            reply = {"result": result}
        except Exception as exc:
            if reply_to is None:
                raise
            reply = error_reply(exc)
        if reply_to is not None:
            fut = self._replies.get(reply_to)
            if fut is not None and not fut.done():
                fut.set_result(decode(encode(reply)))
