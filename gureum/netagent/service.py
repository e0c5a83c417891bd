"""The network agent process: heartbeats, state from the conductor, its data plane.

Bus only, never the database. Every ``[network] agent_report_interval`` seconds
it heartbeats (``report_agents``: the host's L3, DHCP and Linux bridge agents,
with what each carries); it asks the conductor for its ``HostNetState`` at start,
every ``resync_interval`` seconds, and whenever the conductor casts
``network_changed`` to it, and hands the state to its data plane. A sync that
fails (conductor away, data plane error) is tried again at the next one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gureum.bus import BusError, Transport
from gureum.config import Settings
from gureum.errors import GureumError
from gureum.netagent import DHCP_BINARY, L2_BINARY, L3_BINARY, TOPIC
from gureum.netagent.dataplane import DataPlane, make_data_plane
from gureum.netagent.state import HostNetState, empty

log = logging.getLogger("gureum.netagent")

CONDUCTOR_TOPIC = "netconductor"


class NetworkAgentEndpoint:
    """What the conductor reaches on this host (topic "network-agent", server = host)."""

    def __init__(self, agent: NetworkAgent) -> None:
        self.agent = agent

    async def network_changed(self) -> None:
        self.agent.wake.set()

    async def ping(self) -> dict[str, Any]:
        return {"host": self.agent.host, "data_plane": self.agent.plane.name,
                "syncs": self.agent.syncs}


class NetworkAgent:
    def __init__(self, settings: Settings, bus: Transport, host: str,
                 plane: DataPlane | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.host = host
        self.plane = plane or make_data_plane(settings, host)
        self.wake = asyncio.Event()
        self.state: HostNetState | None = None
        self.syncs = 0
        self.reports = 0
        # Tests stop the heartbeat to play a dead agent (S6) without stopping the rest.
        self.heartbeat_paused = False
        self._started = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.bus.serve(TOPIC, self.host, NetworkAgentEndpoint(self))
        await self.report()
        await self.sync()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name=f"netagent-hb-{self.host}"),
            asyncio.create_task(self._sync_loop(), name=f"netagent-sync-{self.host}")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        await self.bus.unserve(TOPIC, self.host)

    def configurations(self) -> dict[str, dict[str, Any]]:
        state = self.state or empty(self.host)
        routers, networks, ports = state["routers"], state["networks"], state["ports"]
        extra = self.plane.report()
        return {
            L3_BINARY: {"agent_mode": "legacy", "routers": len(routers),
                        "ex_gw_ports": sum(1 for r in routers if r["external"]),
                        "interfaces": sum(len(r["interfaces"]) for r in routers),
                        "floating_ips": sum(len(r["floating_ips"]) for r in routers),
                        "data_plane": self.plane.name, **extra},
            DHCP_BINARY: {"dhcp_driver": "dnsmasq",
                          "networks": sum(1 for n in networks if n["dhcp"]),
                          "subnets": sum(len(n["subnets"]) for n in networks if n["dhcp"]),
                          "ports": sum(len(n["ports"]) for n in networks if n["dhcp"]),
                          "data_plane": self.plane.name},
            L2_BINARY: {"devices": len(ports), "tunnel_types": ["vxlan"],
                        "interface_mappings": {}, "bridge_mappings": {},
                        "data_plane": self.plane.name,
                        # Bindings to this host say port_filter as this does
                        # (network.bindings.vif_for_host).
                        "port_filter": self.plane.port_filter()},
        }

    async def report(self) -> None:
        """One heartbeat; a missed one is retried at the next interval."""
        if self.heartbeat_paused:
            return
        try:
            await self.bus.call(CONDUCTOR_TOPIC, "report_agents", {
                "host": self.host, "configurations": self.configurations(),
                "start_flag": not self._started},
                timeout=self.settings.network.agent_report_interval)
            self._started = True
            self.reports += 1
        except BusError as exc:
            log.warning("%s: network agent heartbeat not delivered (%s)", self.host, exc)

    async def sync(self) -> bool:
        """Fetch this host's state and converge on it; False when it could not."""
        try:
            state: HostNetState = await self.bus.call(
                CONDUCTOR_TOPIC, "network_state", {"host": self.host},
                timeout=self.settings.compute.rpc_timeout)
        except BusError as exc:
            log.warning("%s: could not fetch the network state (%s)", self.host, exc)
            return False
        try:
            await self.plane.sync(state)
        except GureumError as exc:
            log.error("%s: the %s data plane could not converge: %s", self.host,
                      self.plane.name, exc)
            return False
        except Exception:  # a data plane bug must not stop the agent
            log.exception("%s: the %s data plane failed", self.host, self.plane.name)
            return False
        self.state = state
        self.syncs += 1
        return True

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.network.agent_report_interval)
            await self.report()

    async def _sync_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(),
                                       timeout=self.settings.network.resync_interval)
            except TimeoutError:
                pass
            self.wake.clear()
            await self.sync()
