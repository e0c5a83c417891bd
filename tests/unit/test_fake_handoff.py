"""The fake's live migration between agents in separate processes (distributed mode).

`gureum compute --host c01` and `--host c02` are two processes: the fake hosts
cannot meet in memory. They hand the guest over through a directory they share
(``handoff_dir``); these tests run the source in a real second process.
"""

from __future__ import annotations

import asyncio
import subprocess
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


def host(tmp: Path, name: str) -> FakeDriver:
    driver = FakeDriver(state_dir=tmp / name, handoff_dir=tmp / ".fake-handoff")
    asyncio.run(driver.init_host(name))
    return driver


SOURCE = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from gureum.virt.driver import GuestSpec, MigrationFailed
    from gureum.virt.fake import FakeDriver

    async def main(tmp, uri):
        src = FakeDriver(state_dir=tmp / "h1", handoff_dir=tmp / ".fake-handoff")
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

    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
""")


def migrate_in_another_process(tmp: Path, uri: str) -> str:
    proc = subprocess.run([sys.executable, "-c", SOURCE, str(tmp), uri], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_guest_moves_to_an_agent_in_another_process(tmp_path: Path) -> None:
    dest = host(tmp_path, "h2")
    uri = asyncio.run(dest.prepare_incoming(spec(), block_migration=True))
    assert migrate_in_another_process(tmp_path, uri) == "moved []"
    assert dest not in fake._LIVE_TARGETS.values()  # nothing met in memory

    async def check() -> None:
        assert await dest.list_guests() == ["g1"]
        info = await dest.guest_info("g1")
        assert info.power_state == states.POWER_PAUSED  # the source's state came along
        assert "vm1 login:" in await dest.console_output("g1")
        await dest.abort_incoming("g1")  # it runs here now: a rollback never touches it
        assert await dest.list_guests() == ["g1"]
    asyncio.run(check())
    assert asyncio.run(host(tmp_path, "h2").list_guests()) == ["g1"]  # defined, kept
    assert asyncio.run(host(tmp_path, "h1").list_guests()) == []


def test_an_agent_that_restarts_after_the_state_arrived_takes_the_guest(
        tmp_path: Path) -> None:
    dest = host(tmp_path, "h2")
    uri = asyncio.run(dest.prepare_incoming(spec(), block_migration=True))
    del dest  # the destination's agent dies; its hypervisor receives the guest anyway
    assert migrate_in_another_process(tmp_path, uri) == "moved []"
    again = host(tmp_path, "h2")
    assert asyncio.run(again.list_guests()) == ["g1"]
    assert asyncio.run(again.guest_info("g1")).power_state == states.POWER_PAUSED


def test_a_guest_waiting_on_an_agent_that_restarted_is_gone(tmp_path: Path) -> None:
    dest = host(tmp_path, "h2")
    uri = asyncio.run(dest.prepare_incoming(spec(), block_migration=True))
    host(tmp_path, "h2")  # restarted before the migration: the empty guest died with it
    out = migrate_in_another_process(tmp_path, uri)
    assert out.startswith("failed: Nothing is waiting for g1")
    source = host(tmp_path, "h1")
    assert asyncio.run(source.list_guests()) == ["g1"]  # untouched on the source


def test_an_aborted_wait_refuses_the_migration(tmp_path: Path) -> None:
    dest = host(tmp_path, "h2")
    uri = asyncio.run(dest.prepare_incoming(spec(), block_migration=True))
    asyncio.run(dest.abort_incoming("g1"))
    assert migrate_in_another_process(tmp_path, uri).startswith("failed:")
    assert asyncio.run(dest.list_guests()) == []
    with pytest.raises(MigrationFailed):
        source = host(tmp_path, "h1")
        asyncio.run(source.live_migrate("g1", uri, block_migration=True))
