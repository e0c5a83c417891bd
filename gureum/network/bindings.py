"""Port bindings: what a host's hypervisor plugs for a port (S5).

A binding is computed for its (port, host) whenever the port is bound —
``vif_type`` and ``vif_details`` come from ``vif_for_host`` and are never
carried over from an older binding — so a port bound after an upgrade, a
migration or an evacuation always has the details its host needs.

Until network agents report their mechanism (roadmap step 5), every host plugs
ports into its integration bridge the same way; ``vif_for_host`` is the one
place that will ask the host's agent instead.
"""

from __future__ import annotations

from typing import Any

from gureum.network import models as m

UNBOUND = "unbound"


def vif_for_host(host: str, network: m.Network, port: m.Port) -> tuple[str, dict[str, Any]]:
    """(vif_type, vif_details) for plugging ``port`` on ``host``."""
    details: dict[str, Any] = {
        "connectivity": "l2",
        "port_filter": True,
        "ovs_hybrid_plug": False,
        "datapath_type": "system",
        "bridge_name": "br-int",
        "bound_drivers": {"0": "openvswitch"},
    }
    return "ovs", details


def refresh_status(port: m.Port) -> None:
    binding = port.active_binding()
    bound = binding is not None and binding.host != "" and binding.vif_type != UNBOUND
    port.status = m.ACTIVE if bound and port.admin_state_up else m.DOWN


def set_host(port: m.Port, host: str, profile: dict[str, Any] | None = None,
             vnic_type: str | None = None) -> m.PortBinding:
    """Make ``host`` the port's active binding ("" unbinds), computed afresh."""
    old = port.active_binding()
    vnic = vnic_type or (old.vnic_type if old else "normal")
    keep_profile = dict(old.profile) if old and profile is None else dict(profile or {})
    for b in list(port.bindings):
        if b.status == m.BINDING_ACTIVE or b.host == host:
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
