"""Network agents: liveness, and which agent carries each router and network (S6).

An agent is alive while its last heartbeat is younger than ``[network]
agent_down_time``. A router is scheduled onto the live, enabled L3 agent that
carries the fewest routers when it first needs a host (an interface or a
gateway); a network with a DHCP-enabled subnet onto the least loaded DHCP agent,
which gets the network's ``network:dhcp`` port. ``reschedule`` moves what dead
agents carry onto live ones: the conductor runs it periodically, so a router
outlives the loss of its agent by at most ``agent_down_time`` plus one pass.
Functions take an open session; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gureum.db.base import utcnow
from gureum.errors import GureumError
from gureum.netagent import DHCP_AGENT, L3_AGENT
from gureum.network import errors as e
from gureum.network import l3_models as l3
from gureum.network import models as m

log = logging.getLogger("gureum.network.agents")

# An HA router is carried by this many L3 agents at most (Neutron's
# max_l3_agents_per_router is 3).
MAX_L3_AGENTS_PER_ROUTER = 3
DHCP_AGENTS_PER_NETWORK = 1


def is_alive(agent: m.Agent, down_time: float, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return (now - agent.heartbeat_timestamp).total_seconds() <= down_time


def get_agent(s: Session, agent_id: str) -> m.Agent:
    agent = s.get(m.Agent, agent_id)
    if agent is None:
        raise e.typed_not_found("AgentNotFound", f"Agent {agent_id} could not be found.")
    return agent


def _live(s: Session, agent_type: str, down_time: float) -> list[m.Agent]:
    since = utcnow() - dt.timedelta(seconds=down_time)
    return list(s.scalars(select(m.Agent).where(
        m.Agent.agent_type == agent_type, m.Agent.admin_state_up.is_(True),
        m.Agent.heartbeat_timestamp >= since).order_by(m.Agent.host)))


def _load(s: Session, column: Any, agent_column: Any) -> dict[str, int]:
    return {agent_id: count for agent_id, count in s.execute(
        select(agent_column, func.count(column)).group_by(agent_column))}


# -- routers ----------------------------------------------------------------------------

def router_agents(s: Session, router_id: str) -> list[m.Agent]:
    return list(s.scalars(select(m.Agent).join(
        l3.RouterL3AgentBinding, l3.RouterL3AgentBinding.l3_agent_id == m.Agent.id)
        .where(l3.RouterL3AgentBinding.router_id == router_id)
        .order_by(l3.RouterL3AgentBinding.created_at, m.Agent.host)))


def agent_routers(s: Session, agent_id: str) -> list[l3.Router]:
    return list(s.scalars(select(l3.Router).join(
        l3.RouterL3AgentBinding, l3.RouterL3AgentBinding.router_id == l3.Router.id)
        .where(l3.RouterL3AgentBinding.l3_agent_id == agent_id)
        .order_by(l3.Router.created_at, l3.Router.id)))


def router_needs_host(s: Session, router: l3.Router) -> bool:
    """A router is carried somewhere once it has a gateway or an interface."""
    if router.gw_port_id:
        return True
    return s.scalar(select(m.Port.id).where(
        m.Port.device_id == router.id,
        m.Port.device_owner == l3.ROUTER_INTERFACE).limit(1)) is not None


def schedule_router(s: Session, router: l3.Router, down_time: float) -> list[m.Agent]:
    """Bind the router to the least loaded live L3 agent(s) it still needs; the agents
    it was given (none when it is carried already or no agent is alive)."""
    wanted = MAX_L3_AGENTS_PER_ROUTER if router.ha else 1
    current = router_agents(s, router.id)
    live = [a for a in _live(s, L3_AGENT, down_time) if a not in current]
    missing = wanted - len([a for a in current if is_alive(a, down_time)])
    if missing <= 0 or not live or not router_needs_host(s, router):
        return []
    load = _load(s, l3.RouterL3AgentBinding.router_id, l3.RouterL3AgentBinding.l3_agent_id)
    live.sort(key=lambda a: (load.get(a.id, 0), a.host))
    chosen = live[:missing]
    for agent in chosen:
        s.add(l3.RouterL3AgentBinding(router_id=router.id, l3_agent_id=agent.id))
    s.flush()
    return chosen


def add_router_to_agent(s: Session, agent: m.Agent, router: l3.Router) -> None:
    """``openstack network agent add router --l3 AGENT ROUTER``."""
    if agent.agent_type != L3_AGENT or not agent.admin_state_up:
        raise e.typed_not_found("InvalidL3Agent", f"Agent {agent.id} is not a L3 Agent or "
                                "has been disabled")
    current = router_agents(s, router.id)
    if agent in current:
        return  # already there: nothing to do (as Neutron)
    if current and not router.ha:
        raise e.conflict("RouterHostedByL3Agent", f"The router {router.id} has been already "
                         f"hosted by the L3 Agent {current[0].id}.")
    s.add(l3.RouterL3AgentBinding(router_id=router.id, l3_agent_id=agent.id))
    s.flush()


def remove_router_from_agent(s: Session, agent: m.Agent, router_id: str) -> None:
    """``openstack network agent remove router --l3 AGENT ROUTER``."""
    binding = s.get(l3.RouterL3AgentBinding, (router_id, agent.id))
    if binding is None:
        raise e.typed_not_found("RouterNotHostedByL3Agent", f"The router {router_id} is not "
                                f"hosted by L3 agent {agent.id}.")
    s.delete(binding)
    router = s.get(l3.Router, router_id)
    if router is not None:  # the pass leaves it unscheduled a while (see reschedule)
        router.updated_at = utcnow()
    s.flush()


# -- DHCP -------------------------------------------------------------------------------

def network_agents(s: Session, network_id: str) -> list[m.Agent]:
    return list(s.scalars(select(m.Agent).join(
        l3.NetworkDhcpAgentBinding, l3.NetworkDhcpAgentBinding.dhcp_agent_id == m.Agent.id)
        .where(l3.NetworkDhcpAgentBinding.network_id == network_id).order_by(m.Agent.host)))


def agent_networks(s: Session, agent_id: str) -> list[m.Network]:
    return list(s.scalars(select(m.Network).join(
        l3.NetworkDhcpAgentBinding, l3.NetworkDhcpAgentBinding.network_id == m.Network.id)
        .where(l3.NetworkDhcpAgentBinding.dhcp_agent_id == agent_id)
        .order_by(m.Network.created_at, m.Network.id)))


def network_needs_dhcp(net: m.Network) -> bool:
    return any(sn.enable_dhcp for sn in net.subnets)


def ensure_dhcp_port(s: Session, net: m.Network) -> m.Port | None:
    """The network's ``network:dhcp`` port, with an address on each DHCP subnet."""
    from gureum.network import ports

    port = s.scalar(select(m.Port).where(m.Port.network_id == net.id,
                                         m.Port.device_owner == l3.DHCP))
    dhcp_subnets = [sn for sn in net.subnets if sn.enable_dhcp]
    if port is None:
        if not dhcp_subnets:
            return None
        try:
            with s.begin_nested():
                port = ports.new_port(s, net, net.project_id, {
                    "device_owner": l3.DHCP, "device_id": f"dhcp-{net.id}",
                    "fixed_ips": [{"subnet_id": sn.id} for sn in dhcp_subnets]})
        except GureumError as exc:
            log.warning("no DHCP port for network %s: %s", net.id, exc)
            return None
        return port
    have = {a.subnet_id for a in port.fixed_ips}
    missing = [sn for sn in dhcp_subnets if sn.id not in have]
    if missing:
        from gureum.network import ipam

        try:
            with s.begin_nested():
                ipam.allocate(s, port, [(sn, None) for sn in missing],
                              start_position=len(port.fixed_ips))
        except GureumError as exc:
            log.warning("DHCP port of network %s: no address on %s: %s", net.id,
                        [sn.id for sn in missing], exc)
    return port


def schedule_network(s: Session, net: m.Network, down_time: float) -> list[m.Agent]:
    """Give a network with DHCP subnets a live DHCP agent (and its DHCP port)."""
    if not network_needs_dhcp(net):
        return []
    current = network_agents(s, net.id)
    missing = DHCP_AGENTS_PER_NETWORK - len([a for a in current if is_alive(a, down_time)])
    live = [a for a in _live(s, DHCP_AGENT, down_time) if a not in current]
    chosen: list[m.Agent] = []
    if missing > 0 and live:
        load = _load(s, l3.NetworkDhcpAgentBinding.network_id,
                     l3.NetworkDhcpAgentBinding.dhcp_agent_id)
        live.sort(key=lambda a: (load.get(a.id, 0), a.host))
        chosen = live[:missing]
        for agent in chosen:
            s.add(l3.NetworkDhcpAgentBinding(network_id=net.id, dhcp_agent_id=agent.id))
        s.flush()
    if current or chosen:
        ensure_dhcp_port(s, net)
    return chosen


def add_network_to_agent(s: Session, agent: m.Agent, net: m.Network) -> None:
    if agent.agent_type != DHCP_AGENT or not agent.admin_state_up:
        raise e.typed_not_found("InvalidDHCPAgent", f"Agent {agent.id} is not a valid DHCP "
                                "Agent or has been disabled")
    if s.get(l3.NetworkDhcpAgentBinding, (net.id, agent.id)) is not None:
        raise e.conflict("NetworkHostedByDHCPAgent", f"The network {net.id} has been already "
                         f"hosted by the DHCP Agent {agent.id}.")
    s.add(l3.NetworkDhcpAgentBinding(network_id=net.id, dhcp_agent_id=agent.id))
    s.flush()
    ensure_dhcp_port(s, net)


def remove_network_from_agent(s: Session, agent: m.Agent, network_id: str) -> None:
    binding = s.get(l3.NetworkDhcpAgentBinding, (network_id, agent.id))
    if binding is None:
        raise e.typed_not_found("NetworkNotHostedByDhcpAgent", f"The network {network_id} "
                                f"is not hosted by the DHCP agent {agent.id}.")
    s.delete(binding)
    s.flush()


# -- the periodic pass ------------------------------------------------------------------

@dataclass
class Moves:
    """What one scheduling pass did: (what, id, from host, to host) and who to tell."""

    moved: list[tuple[str, str, str, str]] = field(default_factory=list)
    scheduled: list[tuple[str, str, str]] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.moved or self.scheduled)


def reschedule(s: Session, down_time: float, refresh_ports: bool = False) -> Moves:
    """Move routers and networks off dead agents onto live ones, and schedule those that
    have had no agent for ``down_time`` (a router normally gets its agent when it gets an
    interface or a gateway). An object whose agent is dead stays bound to it while no live
    agent exists (nothing better to do), and moves at the first pass that finds one."""
    out = Moves()
    now = utcnow()
    agents = {a.id: a for a in s.scalars(select(m.Agent))}
    dead = {a.id for a in agents.values() if not is_alive(a, down_time, now)}
    live_l3 = _live(s, L3_AGENT, down_time)
    live_dhcp = _live(s, DHCP_AGENT, down_time)
    for binding in list(s.scalars(select(l3.RouterL3AgentBinding).where(
            l3.RouterL3AgentBinding.l3_agent_id.in_(dead)))):
        router = s.get(l3.Router, binding.router_id)
        old = agents[binding.l3_agent_id]
        if router is None or not [a for a in live_l3 if a.id != old.id]:
            continue
        s.delete(binding)
        s.flush()
        for agent in schedule_router(s, router, down_time):
            out.moved.append(("router", router.id, old.host, agent.host))
            out.hosts.update((old.host, agent.host))
            log.warning("router %s moved from the dead L3 agent on %s to %s", router.id,
                        old.host, agent.host)
    for dbinding in list(s.scalars(select(l3.NetworkDhcpAgentBinding).where(
            l3.NetworkDhcpAgentBinding.dhcp_agent_id.in_(dead)))):
        net = s.get(m.Network, dbinding.network_id)
        old = agents[dbinding.dhcp_agent_id]
        if net is None or not [a for a in live_dhcp if a.id != old.id]:
            continue
        s.delete(dbinding)
        s.flush()
        for agent in schedule_network(s, net, down_time):
            out.moved.append(("network", net.id, old.host, agent.host))
            out.hosts.update((old.host, agent.host))
            log.warning("DHCP of network %s moved from the dead DHCP agent on %s to %s",
                        net.id, old.host, agent.host)
    if live_l3:
        # A router without an agent is picked up once it has been so for agent_down_time:
        # one an operator just took off an agent (to add it to another) is left alone.
        bound = select(l3.RouterL3AgentBinding.router_id)
        settled = now - dt.timedelta(seconds=down_time)
        for router in s.scalars(select(l3.Router).where(l3.Router.id.not_in(bound),
                                                        l3.Router.updated_at <= settled)):
            for agent in schedule_router(s, router, down_time):
                out.scheduled.append(("router", router.id, agent.host))
                out.hosts.add(agent.host)
    if refresh_ports:  # a subnet added to a served network gets an address on its port
        for net in s.scalars(select(m.Network).where(m.Network.id.in_(
                select(l3.NetworkDhcpAgentBinding.network_id)))):
            ensure_dhcp_port(s, net)
    if live_dhcp:
        served = select(l3.NetworkDhcpAgentBinding.network_id)
        with_dhcp = select(m.Subnet.network_id).where(m.Subnet.enable_dhcp.is_(True))
        for net in s.scalars(select(m.Network).where(m.Network.id.not_in(served),
                                                     m.Network.id.in_(with_dhcp))):
            for agent in schedule_network(s, net, down_time):
                out.scheduled.append(("network", net.id, agent.host))
                out.hosts.add(agent.host)
    return out


def delete_agent(s: Session, agent: m.Agent) -> None:
    """An agent row goes with its bindings (a heartbeat brings the agent back, empty)."""
    s.execute(delete(l3.RouterL3AgentBinding).where(
        l3.RouterL3AgentBinding.l3_agent_id == agent.id))
    s.execute(delete(l3.NetworkDhcpAgentBinding).where(
        l3.NetworkDhcpAgentBinding.dhcp_agent_id == agent.id))
    s.delete(agent)
    s.flush()
