"""Port bindings: what a host's hypervisor plugs for a port (S5).

A port has one ACTIVE binding (host "" while unbound) and, while it moves, an
INACTIVE one per destination host (Neutron's ``binding-extended``): a live
migration makes the destination's before the move (the destination plugs from
it), activates it at cut-over and deletes the source's, or deletes the
destination's when the move is rolled back.

A binding is computed for its (port, host) whenever the port is bound —
``vif_type`` and ``vif_details`` come from ``vif_for_host`` and are never
carried over from an older binding — so a port bound after an upgrade, a
migration or an evacuation always has the details its host needs.

What a host plugs is what its agent reported (``report_agent``, Neutron's
agents table): a compute agent whose driver plugs ports itself reports its VIF
mechanism with its resources — the QEMU driver ``bridge`` (a tap on a
per-network Linux bridge) when it runs as root, ``user`` (QEMU's user
networking) otherwise. A host that reported nothing (the fake driver) gets the
integration-bridge binding an Open vSwitch host would. ``vif_for_host`` is the
one place that decides; a network agent with a real data plane reports its own
mechanism the same way and nothing else changes. ``port_filter`` comes from the
host's network agent, which says whether its data plane enforces security groups
(linuxbridge with bridge netfilter: true; noop: false).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from gureum.db.base import utcnow
from gureum.network import errors as e
from gureum.network import models as m

UNBOUND = "unbound"
BRIDGE = "bridge"
# Linux interface names hold 15 characters (IFNAMSIZ 16 with the NUL).
IFNAMSIZ = 15


def bridge_name(network_id: str) -> str:
    """The Linux bridge of a network on every host: Neutron's linuxbridge agent's name."""
    return ("brq" + network_id)[:IFNAMSIZ - 1]


def report_agent(s: Session, host: str, binary: str, agent_type: str,
                 configurations: dict[str, Any]) -> m.Agent:
    """Record what a host's agent says it plugs (its heartbeat too); one row per
    (binary, host), updated in place."""
    agent = s.scalar(select(m.Agent).where(m.Agent.binary == binary, m.Agent.host == host))
    if agent is None:
        agent = m.Agent(binary=binary, host=host, agent_type=agent_type)
        s.add(agent)
    agent.agent_type = agent_type
    if agent.configurations != configurations:
        agent.configurations = dict(configurations)
    agent.heartbeat_timestamp = utcnow()
    return agent


def _reported(s: Session | None, host: str) -> dict[str, Any] | None:
    if s is None:
        return None
    with s.no_autoflush:
        rows = s.scalars(select(m.Agent).where(m.Agent.host == host, m.Agent.admin_state_up)
                         .order_by(m.Agent.heartbeat_timestamp.desc()))
        for agent in rows:
            if isinstance(agent.configurations.get("vif_type"), str):
                return agent.configurations
    return None


def _port_filter(s: Session | None, host: str) -> bool | None:
    """What the host's L2 agent says of its security groups: True when its data plane
    enforces them, False when it does not (the noop data plane), None when no agent
    of the host has said (the plugging mechanism's own value stands)."""
    if s is None:
        return None
    with s.no_autoflush:
        rows = s.scalars(select(m.Agent).where(m.Agent.host == host, m.Agent.admin_state_up)
                         .order_by(m.Agent.heartbeat_timestamp.desc()))
        for agent in rows:
            said = agent.configurations.get("port_filter")
            if isinstance(said, bool):
                return said
    return None


def vif_for_host(host: str, network: m.Network, port: m.Port) -> tuple[str, dict[str, Any]]:
    """(vif_type, vif_details) for plugging ``port`` on ``host``: what its compute agent
    plugs, and ``port_filter`` as its network agent enforces security groups
    (Neutron's linuxbridge mechanism driver: ``{"connectivity": "l2", "port_filter":
    <firewall on>}``)."""
    s = object_session(network)
    reported = _reported(s, host)
    if reported is not None:
        vif_type = str(reported["vif_type"])
        found = dict(reported.get("vif_details") or {})
        if vif_type == BRIDGE:
            found.setdefault("bridge_name", bridge_name(network.id))
    else:
        vif_type = "ovs"
        found = {
            "connectivity": "l2",
            "port_filter": True,
            "ovs_hybrid_plug": False,
            "datapath_type": "system",
            "bridge_name": "br-int",
            "bound_drivers": {"0": "openvswitch"},
        }
    enforced = _port_filter(s, host)
    if enforced is not None:
        found["port_filter"] = enforced
    return vif_type, found


def refresh_status(port: m.Port) -> None:
    binding = port.active_binding()
    bound = binding is not None and binding.host != "" and binding.vif_type != UNBOUND
    port.status = m.ACTIVE if bound and port.admin_state_up else m.DOWN


def set_host(port: m.Port, host: str, profile: dict[str, Any] | None = None,
             vnic_type: str | None = None) -> m.PortBinding:
    """Make ``host`` the port's only binding, active ("" unbinds), computed afresh."""
    old = port.active_binding()
    vnic = vnic_type or (old.vnic_type if old else "normal")
    keep_profile = dict(old.profile) if old and profile is None else dict(profile or {})
    # Bound anew (or unbound), a port has no move in progress: the bindings an earlier
    # move prepared (and never activated or deleted) go too.
    for b in list(port.bindings):
        port.bindings.remove(b)
    if host:
        vif_type, details = vif_for_host(host, port.network, port)
    else:
        vif_type, details = UNBOUND, {}
    binding = m.PortBinding(host=host, status=m.BINDING_ACTIVE, vif_type=vif_type,
                            vnic_type=vnic, profile=keep_profile, vif_details=details)
    port.bindings.append(binding)
    refresh_status(port)
    return binding


def update_active(port: m.Port, *, profile: dict[str, Any] | None = None,
                  vnic_type: str | None = None) -> None:
    """Change the profile or vnic type of the active binding, keeping its host."""
    binding = port.active_binding()
    if binding is None:
        set_host(port, "", profile, vnic_type)
        return
    if profile is not None:
        binding.profile = dict(profile)
    if vnic_type is not None:
        binding.vnic_type = vnic_type


# -- several bindings per port (binding-extended) ------------------------------------------

def binding_for(port: m.Port, host: str) -> m.PortBinding | None:
    for b in port.bindings:
        if b.host == host:
            return b
    return None


def _not_found(port: m.Port, host: str) -> Exception:
    return e.typed_not_found("PortBindingNotFound", f"Binding for port {port.id} for host "
                             f"{host} could not be found.")


def _computed(port: m.Port, host: str, status: str, vnic_type: str,
              profile: dict[str, Any]) -> m.PortBinding:
    vif_type, details = vif_for_host(host, port.network, port)
    return m.PortBinding(host=host, status=status, vif_type=vif_type, vnic_type=vnic_type,
                         profile=dict(profile), vif_details=details)


def create_binding(port: m.Port, host: str, profile: dict[str, Any] | None = None,
                   vnic_type: str | None = None) -> m.PortBinding:
    """A binding for ``host``: INACTIVE beside the port's active one when the port is
    bound elsewhere; the active one itself when the port is not bound anywhere.
    409 (PortBindingAlreadyExists) when the port has a binding for ``host``."""
    if not host:
        raise e.invalid_attribute("host", "a binding needs a host")
    if binding_for(port, host) is not None:
        raise e.conflict("PortBindingAlreadyExists", f"Binding for port {port.id} on host "
                         f"{host} already exists.")
    active = port.active_binding()
    if active is None or not active.host:
        return set_host(port, host, profile if profile is not None else {}, vnic_type)
    binding = _computed(port, host, m.BINDING_INACTIVE, vnic_type or active.vnic_type,
                        profile if profile is not None else dict(active.profile))
    port.bindings.append(binding)
    return binding


def update_binding(port: m.Port, host: str, profile: dict[str, Any] | None = None,
                   vnic_type: str | None = None) -> m.PortBinding:
    """Change an INACTIVE binding's profile or vnic type (the active one changes through
    the port); its VIF is computed again for its host. 404 when there is none."""
    binding = binding_for(port, host)
    if binding is None or binding.status != m.BINDING_INACTIVE:
        raise _not_found(port, host)
    vif_type, details = vif_for_host(host, port.network, port)
    binding.vif_type, binding.vif_details = vif_type, details
    if profile is not None:
        binding.profile = dict(profile)
    if vnic_type is not None:
        binding.vnic_type = vnic_type
    return binding


def activate(port: m.Port, host: str) -> m.PortBinding:
    """Make the INACTIVE binding for ``host`` the active one, its VIF computed for the
    host now (never what was stored when it was made); the binding active before
    becomes INACTIVE (deleted by whoever moved the port, as Nova does after a live
    migration). 409 when it is active already, 404 when there is none."""
    active = port.active_binding()
    if active is not None and active.host == host:
        raise e.conflict("PortBindingAlreadyActive", f"Binding for port {port.id} on host "
                         f"{host} is already active.")
    binding = binding_for(port, host)
    if binding is None:
        raise _not_found(port, host)
    if active is not None:
        if active.host:
            active.status = m.BINDING_INACTIVE
        else:
            port.bindings.remove(active)  # the "unbound" placeholder
    binding.vif_type, binding.vif_details = vif_for_host(host, port.network, port)
    binding.status = m.BINDING_ACTIVE
    refresh_status(port)
    return binding


def delete_binding(port: m.Port, host: str) -> None:
    """Drop the INACTIVE binding for ``host`` (404 when there is none; 409 for the
    active one: a port is unbound through its binding:host_id)."""
    binding = binding_for(port, host)
    if binding is None or not host:
        raise _not_found(port, host)
    if binding.status == m.BINDING_ACTIVE:
        raise e.conflict("PortBindingError", f"Binding for port {port.id} on host {host} "
                         "is active; only an inactive binding can be deleted.")
    port.bindings.remove(binding)


def drop_inactive(port: m.Port, host: str | None = None) -> bool:
    """Remove the port's INACTIVE bindings (only the one for ``host`` when given)."""
    gone = [b for b in port.bindings
            if b.status == m.BINDING_INACTIVE and (host is None or b.host == host)]
    for b in gone:
        port.bindings.remove(b)
    return bool(gone)
