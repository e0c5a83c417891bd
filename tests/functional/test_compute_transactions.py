"""Every compute route gets its transaction from one helper, and none waits on an agent
inside one (issue 7: compute layers).

An action that asks an agent (console output) reads in a short transaction and
asks after it, so a slow agent never keeps other requests from writing (on SQLite
a write transaction is BEGIN IMMEDIATE and would stop every other writer).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gureum.api.web import Router
from gureum.compute import api as compute_api
from gureum.virt.fake import FakeDriver
from tests.compute_helpers import MV, boot, wait_status
from tests.functional.compute_api_helpers import module_cloud
from tests.harness import Api, InProcessCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=1)


def _compute_router() -> Router:
    router = compute_api.family().router
    assert isinstance(router, Router)
    return router


def test_every_compute_route_that_may_block_declares_its_transaction() -> None:
    routes = _compute_router().routes()
    assert len(routes) > 80
    missing = [f"{r.method} {r.pattern}" for r in routes if not r.is_async and not r.tx]
    assert not missing, missing


def test_console_output_waits_for_the_agent_outside_any_transaction(
        cloud: InProcessCloud, api: Api, admin_token: str) -> None:
    server = boot(api, admin_token, "slow-console")
    wait_status(api, admin_token, server["id"], {"ACTIVE"})
    assert cloud.cloud is not None
    driver = cloud.cloud.agents[0].driver
    assert isinstance(driver, FakeDriver)
    asked = threading.Event()
    release = threading.Event()
    original = driver.console_output

    async def slow_console(guest_id: str, tail: int | None = None) -> str:
        asked.set()
        while not release.is_set():
            await asyncio.sleep(0.02)
        return await original(guest_id, tail)

    answer: dict[str, Any] = {}

    def ask() -> None:
        with httpx.Client(base_url=cloud.url, timeout=30) as client:
            answer["r"] = client.post(
                f"/compute/v2.1/servers/{server['id']}/action",
                json={"os-getConsoleOutput": {"length": 5}},
                headers={"X-Auth-Token": admin_token, **MV})

    driver.console_output = slow_console  # type: ignore[method-assign]
    try:
        asker = threading.Thread(target=ask)
        asker.start()
        assert asked.wait(10), "the agent was never asked"
        # The agent is still answering: a write goes through all the same.
        started = time.monotonic()
        r = api.request("PUT", f"/compute/v2.1/servers/{server['id']}", admin_token,
                        json={"server": {"name": "renamed-while-waiting"}}, headers=MV)
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 5
        assert asker.is_alive()
        release.set()
        asker.join(10)
    finally:
        release.set()
        driver.console_output = original  # type: ignore[method-assign]
    assert answer["r"].status_code == 200, answer["r"].text
    assert "output" in answer["r"].json()
