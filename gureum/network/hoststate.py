"""What one host's network agent should carry (``HostNetState``), from the database.

The conductor answers ``network_state(host)`` with this: the routers the host's
L3 agent carries, the networks it serves DHCP for, the networks of its bound
ports and routers, and its bound ports with their security group rules.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.netagent import DHCP_AGENT, L3_AGENT
from gureum.netagent.state import (
    BoundPort,
    FixedIP,
    HostNetState,
    NetworkState,
    RouterGateway,
    RouterInterface,
    RouterState,
    SecurityGroupRule,
    tap_name,
)
from gureum.network import l3_models as l3
from gureum.network import models as m
from gureum.network import routers as router_ops
from gureum.network.bindings import bridge_name

log = logging.getLogger("gureum.network.hoststate")


def _rules_for_port() -> Callable[[Session, m.Port], list[dict[str, Any]]] | None:
    try:
        from gureum.network import secgroups
    except ImportError:
        return None
    fn = getattr(secgroups, "rules_for_port", None)
    return fn if callable(fn) else None


def _fixed(port: m.Port) -> list[FixedIP]:
    return [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]


def _agent_id(s: Session, host: str, agent_type: str) -> str | None:
    return s.scalar(select(m.Agent.id).where(m.Agent.host == host,
                                             m.Agent.agent_type == agent_type))


def _first_subnet(s: Session, port: m.Port) -> m.Subnet | None:
    for a in port.fixed_ips:
        sn = s.get(m.Subnet, a.subnet_id)
        if sn is not None and ipaddress.ip_network(sn.cidr).version == 4:
            return sn
    return s.get(m.Subnet, port.fixed_ips[0].subnet_id) if port.fixed_ips else None


def _router(s: Session, r: l3.Router) -> RouterState:
    external: RouterGateway | None = None
    gw = router_ops.gateway_port(s, r)
    if gw is not None:
        sn = _first_subnet(s, gw)
        external = {"network_id": gw.network_id, "bridge": bridge_name(gw.network_id),
                    "port_id": gw.id, "mac_address": gw.mac_address, "fixed_ips": _fixed(gw),
                    "gateway_ip": sn.gateway_ip if sn else None,
                    "cidr": sn.cidr if sn else ""}
    interfaces: list[RouterInterface] = []
    for port in router_ops.interface_ports(s, r.id):
        sn = _first_subnet(s, port)
        v6 = [x for x in (s.get(m.Subnet, a.subnet_id) for a in port.fixed_ips)
              if x is not None and x.ip_version == 6]
        interfaces.append({"port_id": port.id, "network_id": port.network_id,
                           "bridge": bridge_name(port.network_id),
                           "mac_address": port.mac_address, "fixed_ips": _fixed(port),
                           "cidr": sn.cidr if sn else "",
                           "ipv6_subnets": [{"id": x.id, "cidr": x.cidr,
                                             "ipv6_ra_mode": x.ipv6_ra_mode,
                                             "ipv6_address_mode": x.ipv6_address_mode,
                                             "dns_nameservers": list(x.dns_nameservers or [])}
                                            for x in v6]})
    fips = list(s.scalars(select(l3.FloatingIP).where(l3.FloatingIP.router_id == r.id)
                          .order_by(l3.FloatingIP.floating_ip_address)))
    return {"id": r.id, "name": r.name, "external": external, "enable_snat": r.enable_snat,
            "interfaces": interfaces,
            "routes": [{"destination": x["destination"], "nexthop": x["nexthop"]}
                       for x in r.routes or []],
            "floating_ips": [{"floating_ip_address": f.floating_ip_address,
                              "fixed_ip_address": f.fixed_ip_address or "",
                              "port_id": f.fixed_port_id or ""}
                             for f in fips if f.fixed_port_id],
            "port_forwardings": [{"floating_ip_address": f.floating_ip_address,
                                  "protocol": pf.protocol, "external_port": pf.external_port,
                                  "internal_ip_address": pf.internal_ip_address,
                                  "internal_port": pf.internal_port}
                                 for f in fips for pf in f.port_forwardings]}


def _network(s: Session, net: m.Network, dhcp: bool) -> NetworkState:
    ports = list(s.scalars(select(m.Port).where(m.Port.network_id == net.id)
                           .order_by(m.Port.created_at, m.Port.id)))
    return {
        "id": net.id, "mtu": net.mtu, "network_type": net.network_type,
        "segmentation_id": net.segmentation_id,
        "physical_network": net.physical_network or None, "bridge": bridge_name(net.id),
        "subnets": [{"id": sn.id, "cidr": sn.cidr, "ip_version": sn.ip_version,
                     "gateway_ip": sn.gateway_ip, "enable_dhcp": sn.enable_dhcp,
                     "dns_nameservers": list(sn.dns_nameservers or []),
                     "host_routes": [{"destination": r["destination"], "nexthop": r["nexthop"]}
                                     for r in sn.host_routes or []],
                     "allocation_pools": [{"start": p["start"], "end": p["end"]}
                                          for p in sn.allocation_pools or []],
                     "ipv6_ra_mode": sn.ipv6_ra_mode,
                     "ipv6_address_mode": sn.ipv6_address_mode}
                    for sn in net.subnets],
        "dhcp": dhcp,
        "dhcp_ports": [{"id": p.id, "mac_address": p.mac_address, "fixed_ips": _fixed(p)}
                       for p in ports if p.device_owner == l3.DHCP],
        "ports": [{"id": p.id, "mac_address": p.mac_address, "fixed_ips": _fixed(p),
                   "device_owner": p.device_owner,
                   "extra_dhcp_opts": list(getattr(p, "extra_dhcp_opts", None) or [])}
                  for p in ports],
    }


def _rules(s: Session, port: m.Port,
           fn: Callable[[Session, m.Port], list[dict[str, Any]]] | None
           ) -> list[SecurityGroupRule]:
    if fn is None:
        return []
    try:
        return [{"direction": r["direction"], "ethertype": r.get("ethertype", "IPv4"),
                 "protocol": r.get("protocol"), "port_range_min": r.get("port_range_min"),
                 "port_range_max": r.get("port_range_max"),
                 "remote_ip_prefix": r.get("remote_ip_prefix")} for r in fn(s, port)]
    except Exception:  # a rule we cannot read must not stop the host's whole state
        log.exception("security group rules of port %s", port.id)
        return []


def network_state(s: Session, host: str) -> HostNetState:
    routers: list[RouterState] = []
    network_ids: dict[str, bool] = {}
    l3_agent = _agent_id(s, host, L3_AGENT)
    if l3_agent is not None:
        for r in s.scalars(select(l3.Router).join(
                l3.RouterL3AgentBinding, l3.RouterL3AgentBinding.router_id == l3.Router.id)
                .where(l3.RouterL3AgentBinding.l3_agent_id == l3_agent)
                .order_by(l3.Router.created_at, l3.Router.id)):
            state = _router(s, r)
            routers.append(state)
            if state["external"] is not None:
                network_ids.setdefault(state["external"]["network_id"], False)
            for itf in state["interfaces"]:
                network_ids.setdefault(itf["network_id"], False)
    dhcp_agent = _agent_id(s, host, DHCP_AGENT)
    if dhcp_agent is not None:
        for nid in s.scalars(select(l3.NetworkDhcpAgentBinding.network_id).where(
                l3.NetworkDhcpAgentBinding.dhcp_agent_id == dhcp_agent)):
            network_ids[nid] = True
    bound = list(s.scalars(select(m.Port).join(
        m.PortBinding, m.PortBinding.port_id == m.Port.id).where(
        m.PortBinding.host == host, m.PortBinding.status == m.BINDING_ACTIVE)
        .order_by(m.Port.created_at, m.Port.id)))
    rules_fn = _rules_for_port()
    ports: list[BoundPort] = []
    for port in bound:
        network_ids.setdefault(port.network_id, False)
        ports.append({"id": port.id, "network_id": port.network_id,
                      "tap": tap_name(port.id, host), "mac_address": port.mac_address,
                      "fixed_ips": _fixed(port),
                      "port_security_enabled": port.port_security_enabled,
                      "allowed_address_pairs": [dict(p) for p in
                                                port.allowed_address_pairs or []],
                      "security_group_rules": _rules(s, port, rules_fn),
                      # Stateless only when its groups are (a port that got both
                      # before the API refused mixing stays as it was enforced).
                      "stateful": not port.security_groups or
                      any(g.stateful for g in port.security_groups)})
    networks: list[NetworkState] = []
    for nid, dhcp in sorted(network_ids.items()):
        net = s.get(m.Network, nid)
        if net is not None:
            networks.append(_network(s, net, dhcp))
    return {"host": host, "networks": networks, "routers": routers, "ports": ports}
