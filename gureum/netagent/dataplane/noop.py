"""The data plane that changes nothing on the host (the fake driver, no root).

It keeps the last state it was given, so tests can see what a host would carry."""

from __future__ import annotations

from gureum.config import Settings
from gureum.netagent.dataplane.base import DataPlane, register
from gureum.netagent.state import HostNetState


@register
class NoopDataPlane(DataPlane):
    name = "noop"

    def __init__(self, settings: Settings, host: str) -> None:
        super().__init__(settings, host)
        self.state: HostNetState | None = None
        self.syncs = 0

    @classmethod
    def usable(cls, settings: Settings) -> bool:
        return True

    async def sync(self, state: HostNetState) -> None:
        self.state = state
        self.syncs += 1

    async def cleanup(self) -> None:
        self.state = None
