"""A live-migrated guest's arrival on the destination (gureum/virt/qemu/moving.py):
a look at one guest waits for whoever holds it (the watcher taking it in) instead of
answering "not here" while the watcher is half-way (the contract suite's
test_live_migrate[qemu] saw that on a busy machine)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gureum.virt.qemu import domain
from gureum.virt.qemu.driver import QemuDriver

GUEST = "0f9e8d7c-6b5a-4c3d-8e1f-0a1b2c3d4e5f"


def test_a_look_at_one_guest_waits_for_the_watcher_taking_it_in(tmp_path: Path) -> None:
    driver = QemuDriver(tmp_path / "h2", image_cache_interval=0)
    files = driver.files(GUEST)
    domain.save(files, {"id": GUEST, "incoming": True, "vcpus": 1, "memory_mb": 128})

    async def go() -> None:
        taken = asyncio.Event()

        async def watcher_takes_it_in() -> None:
            async with driver._lock(GUEST):
                taken.set()
                await asyncio.sleep(0.2)  # QMP: has the state arrived? settle…
                dom = domain.load(files)
                assert dom is not None
                dom.pop("incoming")
                domain.save(files, dom)

        task = asyncio.create_task(watcher_takes_it_in())
        await taken.wait()
        await driver.mover.receive(GUEST)
        after = domain.load(files)
        assert after is not None and "incoming" not in after  # ours when receive returns
        # A look at every guest does not wait on a held guest (the watcher's own look).
        domain.save(files, {**after, "incoming": True})
        async with driver._lock(GUEST):
            await asyncio.wait_for(driver.mover.receive(), 1.0)
        await task

    asyncio.run(go())
