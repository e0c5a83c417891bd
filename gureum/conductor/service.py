"""The conductor: owns multi-host workflows and records what agents report.

Agents never touch the database; they report over the bus and the conductor
writes. In this first step it records heartbeats (services up/down).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from sqlalchemy import select

from gureum.bus import Transport
from gureum.compute.models import ComputeService
from gureum.config import Settings
from gureum.db import Database, utcnow

log = logging.getLogger("gureum.conductor")


class ConductorEndpoint:
    """Methods agents call over the bus (topic "conductor")."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def report_state(self, host: str, binary: str, topic: str = "compute") -> dict[str, Any]:
        return await asyncio.to_thread(self._report_state, host, binary, topic)

    def _report_state(self, host: str, binary: str, topic: str) -> dict[str, Any]:
        with self.db.session() as s:
            svc = s.scalar(select(ComputeService).where(ComputeService.host == host,
                                                        ComputeService.binary == binary))
            if svc is None:
                svc = ComputeService(host=host, binary=binary, topic=topic)
                s.add(svc)
                log.info("new %s service on host %s", binary, host)
            svc.last_seen_up = utcnow()
            svc.report_count = (svc.report_count or 0) + 1
            s.flush()
            return {"uuid": svc.uuid, "disabled": svc.disabled, "forced_down": svc.forced_down}


class Conductor:
    def __init__(self, settings: Settings, db: Database, bus: Transport,
                 name: str | None = None) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.name = name or socket.gethostname()
        self.endpoint = ConductorEndpoint(db)

    async def start(self) -> None:
        await self.bus.serve("conductor", self.name, self.endpoint)
        await self.endpoint.report_state(self.name, "gureum-conductor", "conductor")

    async def stop(self) -> None:
        await self.bus.unserve("conductor", self.name)
