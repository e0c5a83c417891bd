"""The fake's live migration between agents in separate processes (distributed mode).

`gureum compute --host c01` and `--host c02` are two processes: the fake hosts
cannot meet in memory. They hand the guest over through a directory they share
(``handoff_dir``); these tests run the source in a real second process.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from gureum.compute import states
from gureum.virt import fake
from gureum.virt.driver import GuestSpec, MigrationFailed
from gureum.virt.fake import FakeDriver


def spec(guest_id: str = "g1") -> GuestSpec:
    return GuestSpec(id=guest_id, name="instance-00000001", vcpus=1, memory_mb=64, root_gb=1,
                     hostname="vm1")


async def host(tmp: Path, name: str) -> FakeDriver:
    """A host's agent (re)starting: a new driver on the host's state directory."""
    driver = FakeDriver(state_dir=tmp / name, handoff_dir=tmp / ".fake-handoff")
    await driver.init_host(name)
    return driver


SOURCE = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from gureum.virt.driver import GuestSpec, MigrationFailed
    from gureum.virt.fake import FakeDriver

    async def main(tmp, uri, timeout):
        src = FakeDriver(state_dir=tmp / "h1", handoff_dir=tmp / ".fake-handoff",
                         handoff_timeout=timeout)
        await src.init_host("h1")
        if "g1" not in await src.list_guests():
            await src.spawn(GuestSpec(id="g1", name="instance-00000001", vcpus=1,
                                      memory_mb=64, root_gb=1, hostname="vm1"))
            await src.pause("g1")
        try:
            await src.live_migrate("g1", uri, block_migration=True)
        except MigrationFailed as exc:
            print("failed:", exc)
            return
        print("moved", sorted(await src.list_guests()))

    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
""")


async def source_process(tmp: Path, uri: str, timeout: float = 30
                         ) -> asyncio.subprocess.Process:
    """The source host's agent, in a process of its own, live-migrating g1 to ``uri``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", SOURCE, str(tmp), uri, str(timeout),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def outcome(proc: asyncio.subprocess.Process) -> str:
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


def test_a_guest_moves_to_an_agent_in_another_process(tmp_path: Path) -> None:
    async def go() -> None:
        dest = await host(tmp_path, "h2")
        uri = await dest.prepare_incoming(spec(), block_migration=True)
        assert await outcome(await source_process(tmp_path, uri)) == "moved []"
        assert dest not in fake._LIVE_TARGETS.values()  # nothing met in memory
        # Defined on the destination by the time the source let go.
        assert (tmp_path / "h2" / "guests" / "g1.json").is_file()
        assert list((tmp_path / ".fake-handoff" / "h2").iterdir()) == []
        assert await dest.list_guests() == ["g1"]
        info = await dest.guest_info("g1")
        assert info.power_state == states.POWER_PAUSED  # the source's state came along
        assert "vm1 login:" in await dest.console_output("g1")
        await dest.abort_incoming("g1")  # it runs here now: a rollback never touches it
        assert await dest.list_guests() == ["g1"]
        assert await (await host(tmp_path, "h2")).list_guests() == ["g1"]
        assert await (await host(tmp_path, "h1")).list_guests() == []
    asyncio.run(go())


def test_an_agent_that_restarts_while_the_state_arrives_takes_the_guest(
        tmp_path: Path) -> None:
    async def go() -> None:
        dest = await host(tmp_path, "h2")
        uri = await dest.prepare_incoming(spec(), block_migration=True)
        await dest.cleanup_host()  # the destination's agent dies before the state comes
        source = await source_process(tmp_path, uri)
        arrived = tmp_path / ".fake-handoff" / "h2" / "g1.arrived"
        for _ in range(500):
            if arrived.exists():
                break
            await asyncio.sleep(0.02)
        again = await host(tmp_path, "h2")  # back: it takes what arrived
        assert await outcome(source) == "moved []"
        assert await again.list_guests() == ["g1"]
        assert (await again.guest_info("g1")).power_state == states.POWER_PAUSED
    asyncio.run(go())


def test_a_destination_that_never_takes_the_guest_leaves_it_on_the_source(
        tmp_path: Path) -> None:
    async def go() -> None:
        dest = await host(tmp_path, "h2")
        uri = await dest.prepare_incoming(spec(), block_migration=True)
        await dest.cleanup_host()  # dies and stays away
        out = await outcome(await source_process(tmp_path, uri, timeout=0.5))
        assert out.startswith("failed: h2 did not take g1 within 0.5s"), out
        assert await (await host(tmp_path, "h1")).list_guests() == ["g1"]  # untouched
        assert await (await host(tmp_path, "h2")).list_guests() == []  # withdrawn
    asyncio.run(go())


def test_a_guest_waiting_on_an_agent_that_restarted_is_gone(tmp_path: Path) -> None:
    async def go() -> None:
        dest = await host(tmp_path, "h2")
        uri = await dest.prepare_incoming(spec(), block_migration=True)
        await dest.cleanup_host()
        await host(tmp_path, "h2")  # restarted: the empty guest died with the agent
        out = await outcome(await source_process(tmp_path, uri))
        assert out.startswith("failed: Nothing is waiting for g1"), out
        assert await (await host(tmp_path, "h1")).list_guests() == ["g1"]
    asyncio.run(go())


def test_an_aborted_wait_refuses_the_migration(tmp_path: Path) -> None:
    async def go() -> None:
        dest = await host(tmp_path, "h2")
        uri = await dest.prepare_incoming(spec(), block_migration=True)
        await dest.abort_incoming("g1")
        assert (await outcome(await source_process(tmp_path, uri))).startswith("failed:")
        assert await dest.list_guests() == []
        source = await host(tmp_path, "h1")
        with pytest.raises(MigrationFailed):
            await source.live_migrate("g1", uri, block_migration=True)
    asyncio.run(go())
