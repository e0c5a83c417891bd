"""Typed, versioned conductor ↔ agent calls, test-only injection, bounded concurrency.

Every message type survives the trip over the bus unchanged; a call of another
major version, of an unknown type, with unknown, missing or mistyped fields is
refused with a BadMessage naming what is wrong; fake_inject needs the fake
driver's test mode; and an agent runs at most ``max_concurrent_calls`` calls of
a lane at once, however many arrive, without quick look-ups waiting behind them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import types
import typing
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from gureum.agent import messages, rpc
from gureum.agent.service import AgentEndpoint, ComputeAgent, admission
from gureum.bus import BusTimeout, RemoteError
from gureum.bus.memory import MemoryTransport
from gureum.compute import states
from gureum.config import load_settings
from gureum.errors import ConfigError
from gureum.virt.driver import GuestInfo, GuestSpec, PowerOffResult, PreflightFacts
from gureum.virt.fake import FakeDriver

SPEC = GuestSpec(id="g1", name="instance-00000001", vcpus=1, memory_mb=64, root_gb=1,
                 hostname="vm1", metadata={"k": "v"}, network_info=[{"id": "p1"}])


def example(hint: Any) -> Any:
    """A value of a message field's type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return example(next(a for a in typing.get_args(hint) if a is not type(None)))
    if typing.get_origin(hint) is list:
        return [{"path": "/x/disk", "size": 1, "format": "qcow2"}]
    if typing.get_origin(hint) is dict:
        return {"driver_volume_type": "file", "data": {"path": "/x/v", "volume_id": "v1"}}
    samples: dict[Any, Any] = {GuestSpec: SPEC, str: "g1", float: 1.5, int: 3, bool: True}
    return samples[hint]


def sample(cls: type[messages.Message[Any]]) -> messages.Message[Any]:
    hints = get_type_hints(cls)
    return cls(**{f.name: example(hints[f.name]) for f in dataclasses.fields(cls)})


def wire(message: messages.Message[Any]) -> dict[str, Any]:
    """The envelope as the other side reads it (JSON, as both transports carry)."""
    data: dict[str, Any] = json.loads(json.dumps(message.envelope()))
    return data


@pytest.mark.parametrize("name", sorted(messages.MESSAGES))
def test_every_message_type_survives_the_wire(name: str) -> None:
    message = sample(messages.MESSAGES[name])
    env = wire(message)
    assert env["version"] == "1.0" and env["message"] == name
    assert messages.decode(env["version"], env["message"], env["args"]) == message


def test_every_driver_message_matches_its_driver_method() -> None:
    import inspect

    from gureum.virt.driver import VirtDriver

    own = {"build", "power_state", "ping", "fake_inject"}
    for name, cls in messages.MESSAGES.items():
        if name in own:
            continue
        params = list(inspect.signature(getattr(VirtDriver, name)).parameters)[1:]
        assert params == [f.name for f in dataclasses.fields(cls)], name


def test_another_major_version_is_refused_a_newer_minor_taken() -> None:
    env = wire(messages.PowerOff("g1", 5.0, 1.0))
    with pytest.raises(messages.BadMessage, match=r"speaks protocol 1\.0.*'2\.0'"):
        messages.decode("2.0", env["message"], env["args"])
    with pytest.raises(messages.BadMessage, match="version None"):
        messages.decode(None, env["message"], env["args"])
    assert messages.decode("1.7", env["message"], env["args"]) == \
        messages.PowerOff("g1", 5.0, 1.0)


def test_unknown_missing_and_mistyped_fields_are_named() -> None:
    with pytest.raises(messages.BadMessage, match="Unknown fields force, hard in power_off"):
        messages.decode("1.0", "power_off", {"guest_id": "g1", "timeout": 1,
                                             "retry_interval": 1, "hard": True,
                                             "force": True})
    with pytest.raises(messages.BadMessage, match="Missing field retry_interval in power_off"):
        messages.decode("1.0", "power_off", {"guest_id": "g1", "timeout": 1})
    with pytest.raises(messages.BadMessage, match=r"power_off\.timeout must be float, not str"):
        messages.decode("1.0", "power_off", {"guest_id": "g1", "timeout": "soon",
                                             "retry_interval": 1})
    with pytest.raises(messages.BadMessage, match=r"reboot\.hard must be bool, not int"):
        messages.decode("1.0", "reboot", {"spec": SPEC.to_dict(), "hard": 1})
    with pytest.raises(messages.BadMessage, match="Unknown message type 'driver'"):
        messages.decode("1.0", "driver", {"op": "power_off"})


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def test_typed_calls_over_the_bus_return_typed_results(tmp_path: Path) -> None:
    async def go() -> None:
        bus = MemoryTransport()
        await bus.start()
        settings = load_settings(None, {}, environ={}, data_dir=tmp_path)
        agent = ComputeAgent(settings, bus, "h1", driver=FakeDriver())
        await agent.driver.init_host("h1")
        await bus.serve("compute", "h1", AgentEndpoint(agent), agent.admission)
        await rpc.call(bus, "h1", messages.Spawn(SPEC), 5)
        info = await rpc.call(bus, "h1", messages.GetGuestInfo("g1"), 5)
        assert info == GuestInfo("g1", states.RUNNING, 1, 64)
        result = await rpc.call(bus, "h1", messages.PowerOff("g1", 0, 1), 5)
        assert isinstance(result, PowerOffResult) and not result.clean
        facts = await rpc.call(bus, "h1", messages.Preflight(SPEC), 5)
        assert facts == PreflightFacts("h1", shared_storage=False)
        assert await rpc.call(bus, "h1", messages.ListGuests(), 5) == ["g1"]
        assert await rpc.call(bus, "h1", messages.GetPowerState("nope"), 5) is None
        with pytest.raises(RemoteError) as err:
            await bus.call("compute", "run", {"version": "2.0", "message": "ping",
                                              "args": {}}, server="h1", timeout=5)
        assert (err.value.kind, err.value.status) == ("BadMessage", 400)
        assert "major versions differ" in err.value.remote_message
        with pytest.raises(RemoteError) as err:
            await bus.call("compute", "driver", {"op": "power_off", "guest_id": "g1"},
                           server="h1", timeout=5)
        assert "has no 'driver'" in err.value.remote_message  # the untyped call is gone
        await bus.stop()
    run(go())


@pytest.mark.parametrize("test_mode", [False, True])
def test_fake_inject_needs_the_fake_drivers_test_mode(tmp_path: Path, test_mode: bool
                                                       ) -> None:
    async def go() -> None:
        bus = MemoryTransport()
        await bus.start()
        settings = load_settings(None, {"compute": {"fake_test_mode": test_mode}},
                                 environ={}, data_dir=tmp_path)
        driver = FakeDriver()
        agent = ComputeAgent(settings, bus, "h1", driver=driver)
        await driver.init_host("h1")
        await bus.serve("compute", "h1", AgentEndpoint(agent), agent.admission)
        inject = messages.FakeInject("spawn", "disk full", times=1)
        if test_mode:
            await rpc.call(bus, "h1", inject, 5)
            with pytest.raises(RemoteError, match="disk full"):
                await rpc.call(bus, "h1", messages.Spawn(SPEC), 5)
        else:
            with pytest.raises(RemoteError, match="fake_test_mode = true") as err:
                await rpc.call(bus, "h1", inject, 5)
            assert err.value.status == 400
            await rpc.call(bus, "h1", messages.Spawn(SPEC), 5)  # nothing was injected
            assert await driver.list_guests() == ["g1"]
        await bus.stop()
    run(go())


class CountingDriver(FakeDriver):
    """A fake whose pause takes a while and counts how many run at once."""

    def __init__(self) -> None:
        super().__init__(delays={"pause": 0.05})
        self.now = 0
        self.most = 0
        self.done = 0

    async def pause(self, guest_id: str) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await super().pause(guest_id)
        finally:
            self.now -= 1
            self.done += 1


def test_an_agent_runs_at_most_its_bound_and_every_call_finishes(tmp_path: Path) -> None:
    async def go() -> None:
        bus = MemoryTransport()
        await bus.start()
        settings = load_settings(None, {"compute": {"max_concurrent_calls": 3}},
                                 environ={}, data_dir=tmp_path)
        driver = CountingDriver()
        agent = ComputeAgent(settings, bus, "h1", driver=driver)
        await driver.init_host("h1")
        await bus.serve("compute", "h1", AgentEndpoint(agent), agent.admission)
        for i in range(20):
            await driver.spawn(GuestSpec(id=f"g{i}", name=f"i-{i}", vcpus=1, memory_mb=64,
                                         root_gb=1))
        flood = [asyncio.ensure_future(rpc.call(bus, "h1", messages.Pause(f"g{i}"), 30))
                 for i in range(20)]
        await asyncio.sleep(0.02)
        # Look-ups run in their own lane: they do not wait behind the flood.
        started = asyncio.get_running_loop().time()
        assert await rpc.call(bus, "h1", messages.GetPowerState("g0"), 5) is not None
        assert asyncio.get_running_loop().time() - started < 0.05
        assert driver.done < 20
        await asyncio.gather(*flood)
        assert driver.done == 20 and driver.most == 3
        assert agent.admission.peak[messages.OPERATION] == 3
        assert agent.admission.running[messages.OPERATION] == 0
        await bus.stop()
    run(go())


def test_a_call_whose_caller_gave_up_is_not_run_later(tmp_path: Path) -> None:
    async def go() -> None:
        bus = MemoryTransport()
        await bus.start()
        settings = load_settings(None, {"compute": {"max_concurrent_calls": 1}},
                                 environ={}, data_dir=tmp_path)
        driver = CountingDriver()
        driver.delays["pause"] = 0.3
        agent = ComputeAgent(settings, bus, "h1", driver=driver)
        await driver.init_host("h1")
        await bus.serve("compute", "h1", AgentEndpoint(agent), agent.admission)
        for gid in ("a", "b"):
            await driver.spawn(GuestSpec(id=gid, name=gid, vcpus=1, memory_mb=64, root_gb=1))
        first = asyncio.ensure_future(rpc.call(bus, "h1", messages.Pause("a"), 5))
        await asyncio.sleep(0.01)
        with pytest.raises(BusTimeout):
            await rpc.call(bus, "h1", messages.Pause("b"), 0.1)  # waits behind "a"
        await first
        await asyncio.sleep(0.1)
        assert ("pause", "b") not in driver.calls
        assert (await driver.guest_info("b")).power_state == states.RUNNING
        await bus.stop()
    run(go())


def test_a_bound_below_one_is_refused(tmp_path: Path) -> None:
    settings = load_settings(None, {"compute": {"max_concurrent_live_migrations": 0}},
                             environ={}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="max_concurrent_live_migrations must be at least 1"):
        admission(settings)


def test_a_live_migration_waiting_for_its_turn_can_be_aborted(tmp_path: Path) -> None:
    async def go() -> None:
        bus = MemoryTransport()
        await bus.start()
        settings = load_settings(None, {"compute": {"max_concurrent_live_migrations": 1}},
                                 environ={}, data_dir=tmp_path)
        src, dst = FakeDriver(delays={"live_migrate": 0.3}), FakeDriver()
        agents = [ComputeAgent(settings, bus, h, driver=d) for h, d in
                  (("a", src), ("b", dst))]
        for agent in agents:
            await agent.driver.init_host(agent.host)
            await bus.serve("compute", agent.host, AgentEndpoint(agent), agent.admission)
        uris = {}
        for gid in ("g1", "g2"):
            await src.spawn(GuestSpec(id=gid, name=gid, vcpus=1, memory_mb=64, root_gb=1))
            uris[gid] = await dst.prepare_incoming(
                GuestSpec(id=gid, name=gid, vcpus=1, memory_mb=64, root_gb=1), True)
        moves = {gid: asyncio.ensure_future(rpc.call(
            bus, "a", messages.LiveMigrate(gid, uris[gid], True), 10)) for gid in uris}
        await asyncio.sleep(0.05)
        assert agents[0].live_migration_waiting("g2")  # the bound is 1: g2 waits
        await rpc.call(bus, "a", messages.AbortMigration("g2"), 5)
        await moves["g1"]
        with pytest.raises(RemoteError, match="aborted before it started"):
            await moves["g2"]
        assert await src.list_guests() == ["g2"] and await dst.list_guests() == ["g1"]
        assert not agents[0].aborted_before_start
        # Aborting when nothing waits leaves no mark behind for a later migration.
        await rpc.call(bus, "a", messages.AbortMigration("g2"), 5)
        assert not agents[0].aborted_before_start
        await bus.stop()
    run(go())
