"""The conductor's side of the network agents (bus topic "netconductor").

* ``report_agents``: a network agent's heartbeat; its host's L3, DHCP and Linux
  bridge agent rows are written (``bindings.report_agent``);
* ``network_state(host)``: what the host should carry (``network.hoststate``);
* ``network_changed``: the API changed something hosts carry (cast, best effort).
  The next scheduling pass runs at once, then every agent is told to resync.
  Changes made elsewhere (Compute binding a port to a host) are seen by a watch
  on the networking tables (row counts and newest update, every
  ``[network] watch_interval`` seconds) that does the same.

A scheduling pass (``network.agents.reschedule``) runs every
``[network] reschedule_interval`` seconds (default: half ``agent_down_time``):
routers and DHCP networks on an agent silent for longer than ``agent_down_time``
move to a live agent, and those without one get one. Both hosts are told.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select

from gureum.bus import BusError, Transport
from gureum.config import Settings
from gureum.db import Database
from gureum.db.base import utcnow
from gureum.netagent import AGENTS, TOPIC
from gureum.netagent.state import HostNetState
from gureum.network import agents as agent_ops
from gureum.network import bindings, hoststate
from gureum.network import l3_models as l3
from gureum.network import models as m

# The tables whose changes alter what a host carries.
WATCHED: tuple[Any, ...] = (
    m.Network, m.Subnet, m.Port, m.PortBinding, m.SecurityGroup, m.SecurityGroupRule,
    m.PortSecurityGroup, l3.Router, l3.FloatingIP, l3.PortForwarding,
    l3.RouterL3AgentBinding, l3.NetworkDhcpAgentBinding)

log = logging.getLogger("gureum.conductor.network")

SERVICE_TOPIC = "netconductor"
_ZONED = ("L3 agent", "DHCP agent")


class NetworkEndpoint:
    """What network agents (and the API's notices) reach over the bus."""

    def __init__(self, owner: NetworkConductor) -> None:
        self.owner = owner

    async def report_agents(self, host: str, configurations: dict[str, Any] | None = None,
                            start_flag: bool = False) -> dict[str, Any]:
        return await asyncio.to_thread(self.owner.record_heartbeat, host,
                                       configurations or {}, start_flag)

    async def network_state(self, host: str) -> HostNetState:
        return await asyncio.to_thread(self.owner.state_of, host)

    async def network_changed(self) -> None:
        self.owner.changed.set()


class NetworkConductor:
    def __init__(self, settings: Settings, db: Database, bus: Transport, name: str) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.name = name
        self.endpoint = NetworkEndpoint(self)
        self.changed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._seen: tuple[Any, ...] | None = None
        self.passes = 0

    @property
    def interval(self) -> float:
        conf = self.settings.network
        return conf.reschedule_interval or conf.agent_down_time / 2

    async def start(self) -> None:
        await self.bus.serve(SERVICE_TOPIC, self.name, self.endpoint)
        self._loop = asyncio.create_task(self._schedule_loop(), name="netconductor")
        self._watch = asyncio.create_task(self._watch_loop(), name="netconductor-watch")

    async def stop(self) -> None:
        for task in (self._loop, self._watch):
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.bus.unserve(SERVICE_TOPIC, self.name)

    # -- heartbeats and state --------------------------------------------------------
    def record_heartbeat(self, host: str, configurations: dict[str, Any],
                         start_flag: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self.db.session() as s:
            for binary, agent_type, topic in AGENTS:
                conf = configurations.get(binary)
                agent = bindings.report_agent(s, host, binary, agent_type,
                                              dict(conf) if isinstance(conf, dict) else {})
                agent.topic = topic
                if agent.availability_zone is None and agent_type in _ZONED:
                    agent.availability_zone = "nova"
                if start_flag:
                    agent.started_at = utcnow()
                s.flush()
                out[binary] = {"id": agent.id, "admin_state_up": agent.admin_state_up}
        return out

    def state_of(self, host: str) -> HostNetState:
        with self.db.session(write=False) as s:
            return hoststate.network_state(s, host)

    # -- scheduling --------------------------------------------------------------------
    def schedule_pass(self, notice: bool = False) -> set[str]:
        """One pass; the hosts whose agents must resync."""
        with self.db.session() as s:
            moves = agent_ops.reschedule(s, self.settings.network.agent_down_time,
                                         refresh_ports=notice)
        self.passes += 1
        for kind, ident, old, new in moves.moved:
            log.warning("%s %s rescheduled from %s (agent dead) to %s", kind, ident, old, new)
        for kind, ident, new in moves.scheduled:
            log.info("%s %s scheduled on %s", kind, ident, new)
        return moves.hosts

    def fingerprint(self) -> tuple[Any, ...]:
        """Row counts and newest updates of what hosts carry: changes when anything does."""
        with self.db.session(write=False) as s:
            out: list[Any] = []
            for model in WATCHED:
                stamp = getattr(model, "updated_at", None)
                cols = [func.count()] + ([func.max(stamp)] if stamp is not None else [])
                out.extend(s.execute(select(*cols).select_from(model)).one())
            return tuple(out)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.network.watch_interval)
            try:
                seen = await asyncio.to_thread(self.fingerprint)
            except Exception:  # the database may be briefly unavailable; next time
                log.exception("network watch failed")
                continue
            if self._seen is not None and seen != self._seen:
                self.changed.set()
            self._seen = seen

    async def _schedule_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=self.interval)
                notice = True
            except TimeoutError:
                notice = False
            self.changed.clear()
            try:
                hosts = await asyncio.to_thread(self.schedule_pass, notice)
                if notice or hosts:
                    await self.bus.fanout(TOPIC, "network_changed", {})
            except BusError as exc:
                log.warning("could not tell the network agents: %s", exc)
            except Exception:  # the database may be briefly unavailable; next time
                log.exception("network scheduling pass failed")
