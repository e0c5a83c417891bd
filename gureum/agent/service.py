"""The compute agent: one per hypervisor host. Reports over the bus, never the database.

In this first step it only heartbeats; the virt driver and instance handling
arrive with the compute service.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gureum.bus import BusError, Transport
from gureum.config import Settings

log = logging.getLogger("gureum.agent")

BINARY = "gureum-compute"


class AgentEndpoint:
    """Methods the conductor and API call on this host (topic "compute", server = host)."""

    def __init__(self, agent: ComputeAgent) -> None:
        self.agent = agent

    async def ping(self) -> dict[str, Any]:
        return {"host": self.agent.host, "driver": self.agent.driver_name}


class ComputeAgent:
    def __init__(self, settings: Settings, bus: Transport, host: str,
                 driver_name: str | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.host = host
        self.driver_name = driver_name or settings.compute.driver
        self._heartbeat: asyncio.Task[None] | None = None
        self.reports = 0

    async def start(self) -> None:
        await self.bus.serve("compute", self.host, AgentEndpoint(self))
        await self.report()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"hb-{self.host}")

    async def report(self) -> None:
        try:
            await self.bus.call("conductor", "report_state",
                                {"host": self.host, "binary": BINARY, "topic": "compute"},
                                timeout=self.settings.compute.report_interval)
            self.reports += 1
        except BusError as exc:
            log.warning("%s: heartbeat not delivered (%s); will retry", self.host, exc)

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.compute.report_interval
        while True:
            await asyncio.sleep(interval)
            await self.report()

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            try:
                await self._heartbeat
            except asyncio.CancelledError:
                pass
        await self.bus.unserve("compute", self.host)
