"""The address throttle and the in-memory bus."""

from __future__ import annotations

import asyncio

import pytest

from gureum.bus import BusTimeout, RemoteError
from gureum.bus.memory import MemoryTransport
from gureum.identity.throttle import AddressThrottle


def test_throttle_delays_grow_and_cap() -> None:
    t = AddressThrottle(threshold=2, window=60, max_delay=1.0)
    assert t.delay("a") == 0
    for _ in range(2):
        t.failed("a")
    assert t.delay("a") == 0.25
    t.failed("a")
    assert t.delay("a") == 0.5
    for _ in range(10):
        t.failed("a")
    assert t.delay("a") == 1.0
    assert t.delay("b") == 0


class Echo:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def hello(self, name: str) -> str:
        return f"hello {name}"

    def remember(self, value: str) -> None:
        self.seen.append(value)

    def fail(self) -> None:
        raise ValueError("nope")


def test_memory_bus_call_cast_fanout() -> None:
    async def scenario() -> None:
        bus = MemoryTransport()
        await bus.start()
        a, b = Echo(), Echo()
        await bus.serve("svc", "a", a)
        await bus.serve("svc", "b", b)
        assert await bus.call("svc", "hello", {"name": "x"}, server="a") == "hello x"
        await bus.cast("svc", "remember", {"value": "one"}, server="b")
        await bus.fanout("svc", "remember", {"value": "all"})
        await asyncio.sleep(0.05)
        assert a.seen == ["all"] and b.seen == ["one", "all"]
        with pytest.raises(RemoteError, match="ValueError: nope"):
            await bus.call("svc", "fail", {}, server="a")
        with pytest.raises(RemoteError, match="NoSuchMethod"):
            await bus.call("svc", "_private", {}, server="a")
        with pytest.raises(BusTimeout):
            await bus.call("svc", "hello", {"name": "x"}, server="zzz")
        await bus.stop()

    asyncio.run(scenario())
