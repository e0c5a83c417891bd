"""The AMQP transport: the bus of a distributed cloud, over RabbitMQ.

Every role runs in its own process (or on its own machine) and they meet on
one broker. The messages are the JSON the in-memory transport carries
(``encode``/``decode``/``dispatch``/``error_reply`` in transport.py), so a
``RemoteError``, a ``BusTimeout`` or an expired call behave the same on both.

Names (all under the ``[bus] prefix``, so clouds or test runs sharing a broker
never see each other's messages):

- ``<prefix>.<topic>.<server>``: one server's own queue (a call or cast that
  names the server). Exclusive to the serving connection: it disappears with
  the process, so a call to a host that is gone is refused at once (the broker
  returns the unroutable message: ``BusTimeout``, "No server 'c02' is
  listening"), as with the memory transport; a second process cannot serve the
  same (topic, server).
- ``<prefix>.<topic>``: the topic's shared queue (no server named); the broker
  hands its messages to the topic's servers in turn (round-robin). It is
  deleted with its last consumer, so "Nothing is listening" is answered at
  once too.
- ``<prefix>.fanout``: a direct exchange; each server's own queue is bound to
  it with the topic as key, so a fanout reaches every server of the topic.
- ``<prefix>.reply.<uuid>``: each transport's reply queue (exclusive).

Nothing is durable: a message is for the processes running now, as in memory;
work that must survive a crash lives in the database (the outbox, workflows).

Back-pressure: a server given an ``Admission`` acknowledges a message when it
starts running it. Messages waiting for their lane stay unacknowledged, so at
most ``prefetch`` of them wait in the process; the rest wait in the broker (and
a shared-queue message still waiting when its server dies goes to another
server of the topic, never run twice). Without an ``Admission`` every message
is acknowledged and started at once, as in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.exceptions import AMQPError, ChannelLockedResource, ChannelNotFoundEntity

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
from gureum.errors import ConfigError

log = logging.getLogger("gureum.bus.amqp")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# What a broker that went away (or a channel it closed) raises.
_LOST = (AMQPError, ConnectionError, aio_pika.exceptions.ChannelInvalidStateError)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class _Server:
    topic: str
    server: str
    endpoint: object
    admission: Admission | None
    channel: AbstractChannel
    queues: list[tuple[AbstractQueue, str]] = field(default_factory=list)  # (queue, tag)
    # Messages waiting for their lane, unacknowledged, by id() of the decoded message.
    held: dict[int, AbstractIncomingMessage] = field(default_factory=dict)
    serving: bool = True


class AmqpTransport(Transport):
    def __init__(self, url: str, prefix: str = "gureum", prefetch: int = 256) -> None:
        if not _NAME.fullmatch(prefix):
            raise ConfigError(f"[bus] prefix {prefix!r}: expected letters, digits, '.', '_' "
                              "or '-' (at most 100, starting with a letter or digit).")
        if prefetch < 1:
            raise ConfigError(f"[bus] prefetch must be at least 1, not {prefetch}.")
        self.url = url
        self.prefix = prefix
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None  # publishing, with confirms
        self._reply_queue = f"{prefix}.reply.{uuid.uuid4().hex}"
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._servers: dict[tuple[str, str], _Server] = {}

    # -- names ---------------------------------------------------------------------------
    def _queue(self, topic: str, server: str | None = None) -> str:
        return f"{self.prefix}.{topic}" if server is None else f"{self.prefix}.{topic}.{server}"

    @property
    def _fanout_exchange(self) -> str:
        return f"{self.prefix}.fanout"

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self.url, client_properties={"connection_name": f"gureum {self.prefix}"})
            self._channel = await self._connection.channel(publisher_confirms=True,
                                                           on_return_raises=True)
            replies = await self._channel.declare_queue(self._reply_queue, exclusive=True)
            await replies.consume(self._on_reply, no_ack=True)
        except (*_LOST, OSError) as exc:
            await self._close_connection()
            raise BusError(f"Cannot reach the message bus at {redact(self.url)}: "
                           f"{exc or type(exc).__name__}") from None

    async def stop(self) -> None:
        for key in list(self._servers):
            await self.unserve(*key)
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(BusError("The bus stopped."))
        self._replies.clear()
        await self._close_connection()

    async def _close_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(*_LOST, OSError, asyncio.CancelledError):
                await connection.close()

    def _publisher(self) -> AbstractChannel:
        if self._channel is None:
            raise BusError("The bus is not started.")
        return self._channel

    # -- sending -------------------------------------------------------------------------
    async def _send(self, topic: str, server: str | None, message: aio_pika.Message) -> None:
        """Publish to a server's (or the topic's) queue; refused at once if nobody has it."""
        try:
            await self._publisher().default_exchange.publish(
                message, routing_key=self._queue(topic, server), mandatory=True)
        except aio_pika.exceptions.PublishError:  # unroutable: the queue does not exist
            if server is not None:
                raise BusTimeout(f"No server {server!r} is listening on topic "
                                 f"{topic!r}.") from None
            raise BusTimeout(f"Nothing is listening on topic {topic!r}.") from None
        except _LOST as exc:
            raise BusError(f"The message bus is unreachable: {exc or type(exc).__name__}"
                           ) from None

    async def call(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None, timeout: float = 60.0) -> Any:
        msg_id = uuid.uuid4().hex
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = fut
        body = encode({"method": method, "args": args, "reply_to": msg_id,
                       "deadline": time.time() + timeout})
        # The broker drops it once the caller has stopped waiting, too.
        message = aio_pika.Message(body, content_type="application/json",
                                   correlation_id=msg_id, reply_to=self._reply_queue,
                                   expiration=max(timeout, 0.001))
        try:
            async with asyncio.timeout(timeout):
                await self._send(topic, server, message)
                reply = await fut
        except TimeoutError:
            where = f"{topic}.{server}" if server is not None else topic
            raise BusTimeout(f"No reply from {where} to {method} within {timeout:g}s."
                             ) from None
        finally:
            self._replies.pop(msg_id, None)
        if "error" in reply:
            err = reply["error"]
            raise RemoteError(err["kind"], err["message"], err.get("status", 500))
        return reply.get("result")

    async def cast(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None) -> None:
        await self._send(topic, server, aio_pika.Message(
            encode({"method": method, "args": args}), content_type="application/json"))

    async def fanout(self, topic: str, method: str, args: dict[str, Any]) -> None:
        if self._connection is None:
            raise BusError("The bus is not started.")
        message = aio_pika.Message(encode({"method": method, "args": args}),
                                   content_type="application/json")
        try:
            # A channel of its own: a passive declare of an exchange nobody made (no
            # server yet) closes its channel, which must not be the shared one.
            async with self._connection.channel() as channel:
                exchange = await channel.declare_exchange(self._fanout_exchange,
                                                          passive=True)
                await exchange.publish(message, routing_key=topic, mandatory=False)
        except ChannelNotFoundEntity:
            return  # no server has ever listened: a fanout to nobody
        except _LOST as exc:
            raise BusError(f"The message bus is unreachable: {exc or type(exc).__name__}"
                           ) from None

    async def _on_reply(self, incoming: AbstractIncomingMessage) -> None:
        fut = self._replies.get(incoming.correlation_id or "")
        if fut is None or fut.done():
            return  # the caller gave up
        try:
            fut.set_result(decode(incoming.body))
        except ValueError as exc:
            fut.set_exception(BusError(f"Unreadable reply on the bus: {exc}"))

    # -- serving -------------------------------------------------------------------------
    async def serve(self, topic: str, server: str, endpoint: object,
                    admission: Admission | None = None) -> None:
        if (topic, server) in self._servers:
            raise BusError(f"{topic}.{server} is already being served.")
        if self._connection is None:
            raise BusError("The bus is not started.")
        channel = await self._connection.channel()
        srv = _Server(topic, server, endpoint, admission, channel)
        try:
            await channel.set_qos(prefetch_count=self.prefetch)
            own = await channel.declare_queue(self._queue(topic, server), exclusive=True,
                                              auto_delete=True)
            shared = await channel.declare_queue(self._queue(topic), auto_delete=True)
            fanout = await channel.declare_exchange(self._fanout_exchange,
                                                    aio_pika.ExchangeType.DIRECT,
                                                    auto_delete=True)
            await own.bind(fanout, routing_key=topic)
            self._servers[(topic, server)] = srv

            async def on_message(incoming: AbstractIncomingMessage) -> None:
                await self._on_message(srv, incoming)
            for queue in (own, shared):
                srv.queues.append((queue, await queue.consume(on_message)))
        except ChannelLockedResource:
            self._servers.pop((topic, server), None)
            with contextlib.suppress(*_LOST):
                await channel.close()
            raise BusError(f"{topic}.{server} is already being served (by another "
                           "process on this bus).") from None
        except _LOST as exc:
            self._servers.pop((topic, server), None)
            with contextlib.suppress(*_LOST):
                await channel.close()
            raise BusError(f"Cannot serve {topic}.{server} on the message bus: "
                           f"{exc or type(exc).__name__}") from None

    async def unserve(self, topic: str, server: str) -> None:
        srv = self._servers.pop((topic, server), None)
        if srv is None:
            return
        srv.serving = False  # messages waiting for admission go back to the broker
        for queue, tag in srv.queues:
            with contextlib.suppress(*_LOST):
                await queue.cancel(tag)
        srv.held.clear()
        with contextlib.suppress(*_LOST):
            await srv.channel.close()  # unacknowledged (waiting) messages are requeued

    async def _on_message(self, srv: _Server, incoming: AbstractIncomingMessage) -> None:
        if not srv.serving:
            return  # the channel closes: the broker requeues it
        try:
            message = decode(incoming.body)
        except ValueError:
            log.error("dropping an unreadable message on %s.%s", srv.topic, srv.server)
            await self._settle(incoming)
            return
        if srv.admission is None:
            self._start(srv, message, incoming, None)
            return
        lane = srv.admission.admit(message)
        if lane is None:
            srv.held[id(message)] = incoming  # waits its turn, unacknowledged
            return
        self._start(srv, message, incoming, lane)

    @staticmethod
    async def _settle(incoming: AbstractIncomingMessage) -> None:
        with contextlib.suppress(*_LOST):
            await incoming.ack()

    def _start(self, srv: _Server, message: dict[str, Any],
               incoming: AbstractIncomingMessage, lane: str | None) -> None:
        task = asyncio.create_task(self._handle(srv, message, incoming))
        task.add_done_callback(log_task_error)
        if lane is not None:
            task.add_done_callback(lambda _t: self._release(srv, lane))

    def _release(self, srv: _Server, lane: str) -> None:
        assert srv.admission is not None
        while (message := srv.admission.release(lane)) is not None:
            incoming = srv.held.pop(id(message), None)
            if not srv.serving or incoming is None:
                continue  # unserved: the broker has it back
            if not expired(message):
                self._start(srv, message, incoming, lane)
                return
            settle = asyncio.ensure_future(self._settle(incoming))  # too late: dropped
            settle.add_done_callback(log_task_error)

    async def _handle(self, srv: _Server, message: dict[str, Any],
                      incoming: AbstractIncomingMessage) -> None:
        await self._settle(incoming)  # taken: at most once, as in memory
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
        if reply_to is None or not incoming.reply_to:
            return
        try:
            await self._publisher().default_exchange.publish(
                aio_pika.Message(encode(reply), content_type="application/json",
                                 correlation_id=str(reply_to)),
                routing_key=incoming.reply_to, mandatory=False)
        except (*_LOST, BusError) as exc:
            log.warning("reply to %s on %s.%s not sent: %s", message.get("method"),
                        srv.topic, srv.server, exc)
