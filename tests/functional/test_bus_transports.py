"""One contract for every bus transport: memory (gureum up) and AMQP (RabbitMQ).

Each test runs on both, so the distributed cloud's bus behaves exactly as the
one-process cloud's: the same replies, errors, timeouts, round-robin, fanout
and admission bounds. The AMQP runs need RabbitMQ on 127.0.0.1:5672 (guest/guest;
`scripts/services` starts it) and are skipped, with that reason, without it.
Every run uses its own name prefix, so parallel runs on one broker never meet.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gureum.bus import Admission, BusError, BusTimeout, RemoteError, Transport, open_transport
from gureum.errors import ConfigError

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def rabbitmq_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


class Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[Any] = []
        self.running = 0
        self.peak = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def hello(self, who: str) -> str:
        return f"{self.name} greets {who}"

    async def remember(self, value: Any) -> None:
        self.seen.append(value)

    def whoami(self) -> str:  # a plain function is dispatched too
        return self.name

    async def fail(self) -> None:
        raise ConfigError("bad setting x")

    async def slow(self, seconds: float, tag: str = "") -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gate.wait()
            await asyncio.sleep(seconds)
            self.seen.append(tag)
            return tag
        finally:
            self.running -= 1

    async def _secret(self) -> str:
        return "never"


Case = Callable[[Callable[[], Transport]], Awaitable[None]]


@pytest.fixture(params=["memory", "amqp"])
def transport(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    """A factory of transports on one bus (one prefix per test: nothing shared)."""
    if request.param == "memory":
        shared: list[Transport] = []

        def memory() -> Transport:
            # One memory bus per process: every "process" of the test shares it.
            if not shared:
                shared.append(open_transport("memory://"))
            return shared[0]
        return memory
    if not rabbitmq_up():
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (scripts/services starts it)")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    return lambda: open_transport(AMQP_URL, prefix=prefix, prefetch=32)


def run(case: Case, factory: Callable[[], Transport]) -> None:
    asyncio.run(asyncio.wait_for(case(factory), 60))


async def started(factory: Callable[[], Transport], count: int = 2) -> list[Transport]:
    buses: list[Transport] = []
    for _ in range(count):
        bus = factory()
        if bus not in buses:
            await bus.start()
        buses.append(bus)
    return buses


async def stop_all(buses: list[Transport]) -> None:
    for bus in dict.fromkeys(buses):  # each once
        await bus.stop()


def test_call_gets_the_reply_of_the_named_server(transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        try:
            await server.serve("svc", "a", Endpoint("a"))
            await server.serve("svc", "b", Endpoint("b"))
            assert await client.call("svc", "hello", {"who": "x"}, server="a") == "a greets x"
            assert await client.call("svc", "whoami", {}, server="b") == "b"
            assert await client.call("svc", "hello", {"who": "y"}) in (
                "a greets y", "b greets y")
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_a_call_to_nobody_is_a_bus_timeout_at_once(transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        try:
            await server.serve("svc", "a", Endpoint("a"))
            started_at = time.monotonic()
            with pytest.raises(BusTimeout, match="No server 'zzz' is listening"):
                await client.call("svc", "hello", {"who": "x"}, server="zzz", timeout=10)
            with pytest.raises(BusTimeout, match="Nothing is listening on topic 'other'"):
                await client.call("other", "hello", {"who": "x"}, timeout=10)
            with pytest.raises(BusTimeout, match="No server 'zzz'"):
                await client.cast("svc", "remember", {"value": 1}, server="zzz")
            assert time.monotonic() - started_at < 5  # refused, not waited out
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_a_slow_server_is_a_bus_timeout_and_its_late_work_is_not_run(
        transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        a = Endpoint("a")
        admission = Admission({"all": 1}, lambda _m: "all")
        try:
            await server.serve("svc", "a", a, admission)
            first = asyncio.create_task(client.call("svc", "slow", {"seconds": 0.6, "tag": "1"},
                                                    server="a", timeout=5))
            await asyncio.sleep(0.2)
            with pytest.raises(BusTimeout, match=r"No reply from svc\.a to slow within 0\.2s"):
                await client.call("svc", "slow", {"seconds": 0, "tag": "late"}, server="a",
                                  timeout=0.2)
            assert await first == "1"
            await asyncio.sleep(0.3)
            assert a.seen == ["1"]  # the caller of "late" gave up: never run
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_cast_runs_once_without_a_reply(transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        a, b = Endpoint("a"), Endpoint("b")
        try:
            await server.serve("svc", "a", a)
            await server.serve("svc", "b", b)
            assert await client.cast("svc", "remember", {"value": "to-b"}, server="b") is None
            await client.cast("svc", "remember", {"value": "to-any"})
            await asyncio.sleep(0.3)
            assert b.seen.count("to-b") == 1 and "to-b" not in a.seen
            assert (a.seen + b.seen).count("to-any") == 1
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_fanout_reaches_every_server_of_the_topic(transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, one, two = await started(factory, 3)
        a, b, c, other = Endpoint("a"), Endpoint("b"), Endpoint("c"), Endpoint("o")
        try:
            await client.fanout("svc", "remember", {"value": "before"})  # nobody: fine
            await one.serve("svc", "a", a)
            await one.serve("svc", "b", b)
            await two.serve("svc", "c", c)
            await two.serve("elsewhere", "o", other)
            await client.fanout("svc", "remember", {"value": "all"})
            for _ in range(50):
                if all(e.seen for e in (a, b, c)):
                    break
                await asyncio.sleep(0.05)
            assert a.seen == b.seen == c.seen == ["all"]
            assert other.seen == []
        finally:
            await stop_all([client, one, two])
    run(case, transport)


def test_calls_without_a_server_go_round_robin(transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, one, two = await started(factory, 3)
        try:
            await one.serve("svc", "a", Endpoint("a"))
            await two.serve("svc", "b", Endpoint("b"))
            answers = [await client.call("svc", "whoami", {}) for _ in range(6)]
            assert sorted(answers) == ["a", "a", "a", "b", "b", "b"]
            assert all(x != y for x, y in itertools.pairwise(answers))
        finally:
            await stop_all([client, one, two])
    run(case, transport)


def test_a_remote_error_comes_back_with_its_kind_message_and_status(
        transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        try:
            await server.serve("svc", "a", Endpoint("a"))
            with pytest.raises(RemoteError) as info:
                await client.call("svc", "fail", {}, server="a")
            assert (info.value.kind, info.value.remote_message, info.value.status) == (
                "ConfigError", "bad setting x", 500)
            with pytest.raises(RemoteError) as info:
                await client.call("svc", "_secret", {}, server="a")
            assert info.value.status == 400 and "NoSuchMethod" in info.value.remote_message
            with pytest.raises(RemoteError, match="TypeError"):
                await client.call("svc", "hello", {"nobody": 1}, server="a")
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_unserve_stops_delivery_and_frees_the_name(transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        a = Endpoint("a")
        try:
            await server.serve("svc", "a", a)
            with pytest.raises(BusError, match="already being served"):
                await server.serve("svc", "a", Endpoint("again"))
            assert await client.call("svc", "whoami", {}, server="a") == "a"
            await server.unserve("svc", "a")
            with pytest.raises(BusTimeout):
                await client.call("svc", "whoami", {}, server="a", timeout=5)
            with pytest.raises(BusTimeout):
                await client.call("svc", "whoami", {}, timeout=5)
            await server.serve("svc", "a", Endpoint("a2"))
            assert await client.call("svc", "whoami", {}, server="a") == "a2"
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_admission_bounds_each_lane_and_every_call_finishes(
        transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, server = await started(factory)
        a = Endpoint("a")
        admission = Admission({"slow": 2, "quick": 4},
                              lambda m: "slow" if m.get("method") == "slow" else "quick")
        try:
            await server.serve("svc", "a", a, admission)
            a.gate.clear()
            calls = [asyncio.create_task(client.call(
                "svc", "slow", {"seconds": 0.05, "tag": str(i)}, server="a", timeout=20))
                for i in range(12)]
            await asyncio.sleep(0.3)
            # The slow lane is full and more wait; the other lane is not held up.
            assert a.running == 2
            assert await client.call("svc", "whoami", {}, server="a", timeout=5) == "a"
            a.gate.set()
            assert sorted(await asyncio.gather(*calls), key=int) == [str(i) for i in range(12)]
            assert a.peak == 2 and admission.peak["slow"] == 2
            # A reply can reach the caller before the server's task has finished and
            # released its slot (over AMQP the publish returns first): the slots come
            # back right after, not necessarily before gather returns.
            for _ in range(100):
                if admission.running["slow"] == 0:
                    break
                await asyncio.sleep(0.02)
            assert admission.running["slow"] == 0
        finally:
            await stop_all([client, server])
    run(case, transport)


def test_a_topic_with_two_servers_each_bounded_shares_the_waiting_work(
        transport: Callable[[], Transport]) -> None:
    async def case(factory: Callable[[], Transport]) -> None:
        client, one, two = await started(factory, 3)
        a, b = Endpoint("a"), Endpoint("b")
        try:
            await one.serve("svc", "a", a, Admission({"all": 1}, lambda _m: "all"))
            await two.serve("svc", "b", b, Admission({"all": 1}, lambda _m: "all"))
            results = await asyncio.gather(*(client.call(
                "svc", "slow", {"seconds": 0.05, "tag": str(i)}, timeout=20)
                for i in range(8)))
            assert sorted(results, key=int) == [str(i) for i in range(8)]
            assert a.peak == b.peak == 1 and a.seen and b.seen
        finally:
            await stop_all([client, one, two])
    run(case, transport)


def test_amqp_waiting_work_beyond_prefetch_stays_in_the_broker() -> None:
    """Back-pressure: a bounded server holds at most ``prefetch`` waiting messages; the
    rest wait in RabbitMQ, and every one still runs, in order."""
    if not rabbitmq_up():
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (scripts/services starts it)")
    from gureum.bus.amqp import AmqpTransport

    async def case() -> None:
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        client = AmqpTransport(AMQP_URL, prefix=prefix, prefetch=2)
        server = AmqpTransport(AMQP_URL, prefix=prefix, prefetch=2)
        await client.start()
        await server.start()
        a = Endpoint("a")
        try:
            await server.serve("svc", "a", a, Admission({"all": 1}, lambda _m: "all"))
            a.gate.clear()
            for i in range(10):
                await client.cast("svc", "slow", {"seconds": 0, "tag": str(i)}, server="a")
            await asyncio.sleep(0.5)
            held = server._servers[("svc", "a")].held
            assert a.running == 1 and len(held) == 2  # 7 more wait in the broker
            a.gate.set()
            for _ in range(100):
                if len(a.seen) == 10:
                    break
                await asyncio.sleep(0.05)
            assert a.seen == [str(i) for i in range(10)] and a.peak == 1
        finally:
            await client.stop()
            await server.stop()
    asyncio.run(asyncio.wait_for(case(), 60))


def test_amqp_settings_are_checked_and_an_unreachable_broker_is_named() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        open_transport(AMQP_URL, prefix="bad prefix!")
    with pytest.raises(ConfigError, match="prefetch"):
        open_transport(AMQP_URL, prefetch=0)
    with pytest.raises(ConfigError, match="Unknown bus URL"):
        open_transport("kafka://x")

    async def case() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # nothing listens here once closed
        bus = open_transport(f"amqp://guest:s3cret@127.0.0.1:{port}/")
        with pytest.raises(BusError, match="Cannot reach the message bus") as info:
            await bus.start()
        assert "s3cret" not in info.value.message
    asyncio.run(asyncio.wait_for(case(), 30))
