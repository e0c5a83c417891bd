"""The data plane contract and the registry ``[network] data_plane`` names.

A data plane converges its host on a ``HostNetState``: ``sync`` is idempotent
(called again with the same state it changes nothing) and removes whatever it
made that the state no longer wants (a router gone, a port unbound). ``cleanup``
removes everything it made (the agent stops for good). A failure raises
``DataPlaneError``; the agent logs it and tries again at its next sync.

Drivers register by name (``register``); ``make_data_plane`` picks one:
``noop`` (nothing on the host: the fake driver, a laptop without root),
``linuxbridge`` (bridges, taps, dnsmasq, router namespaces, nftables: root), or
``auto`` — the first registered driver whose ``usable(settings)`` says it can
run here, else ``noop``.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from typing import ClassVar

from gureum.config import Settings
from gureum.errors import ConfigError, GureumError
from gureum.netagent.state import HostNetState

log = logging.getLogger("gureum.netagent")


class DataPlaneError(GureumError):
    """The host could not be made to carry its state (retried at the next sync)."""


class DataPlane(ABC):
    name: ClassVar[str] = ""
    # Tried by "auto" in this order (lower first); noop is the fallback, never tried.
    auto_priority: ClassVar[int] = 100

    def __init__(self, settings: Settings, host: str) -> None:
        self.settings = settings
        self.host = host

    @classmethod
    def usable(cls, settings: Settings) -> bool:
        """Whether this driver can run here (root, tools installed, …) for ``auto``."""
        return False

    @abstractmethod
    async def sync(self, state: HostNetState) -> None:
        """Make the host carry ``state`` and nothing else this driver made."""

    @abstractmethod
    async def cleanup(self) -> None:
        """Remove everything this driver made on the host."""

    def report(self) -> dict[str, object]:
        """Extra configuration shown in the agents' ``configurations`` (JSON)."""
        return {}

    def port_filter(self) -> bool:
        """Whether this data plane enforces the security groups of the host's ports.
        The host's L2 agent reports it, and a port bound to the host says so in its
        ``binding:vif_details`` (``port_filter``, as Neutron's mechanism drivers)."""
        return False


_REGISTRY: dict[str, type[DataPlane]] = {}
# Drivers that live in their own module, imported on first use (a missing module —
# a lane not landed yet — just means the driver is not there).
_MODULES = {"noop": "gureum.netagent.dataplane.noop",
            "linuxbridge": "gureum.netagent.dataplane.linuxbridge"}


def register(cls: type[DataPlane]) -> type[DataPlane]:
    """Class decorator: make a driver known by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _load(name: str) -> type[DataPlane] | None:
    if name not in _REGISTRY and name in _MODULES:
        try:
            importlib.import_module(_MODULES[name])
        except ImportError as exc:
            log.debug("data plane %s not available: %s", name, exc)
    return _REGISTRY.get(name)


def available() -> dict[str, type[DataPlane]]:
    """Every data plane this gureum has, by name."""
    for name in _MODULES:
        _load(name)
    return dict(_REGISTRY)


def resolve(settings: Settings) -> type[DataPlane]:
    wanted = settings.network.data_plane
    drivers = available()
    if wanted == "auto":
        for cls in sorted(drivers.values(), key=lambda c: (c.auto_priority, c.name)):
            if cls.name != "noop" and cls.usable(settings):
                return cls
        return drivers["noop"]
    found = drivers.get(wanted)
    if found is None:
        raise ConfigError(f"[network] data_plane = {wanted!r}: no such data plane here "
                          f"(known: {', '.join(sorted(drivers))}).")
    return found


def make_data_plane(settings: Settings, host: str) -> DataPlane:
    """The data plane ``[network] data_plane`` names, for ``host``."""
    return resolve(settings)(settings, host)
