"""Wire shapes of routers, floating IPs, port forwardings and agents (Neutron's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.network import agents as agent_ops
from gureum.network import l3_models as l3
from gureum.network import models as m
from gureum.network import routers as router_ops
from gureum.network.views import AVAILABILITY_ZONE, iso


def _standard(row: Any) -> dict[str, Any]:
    return {"tenant_id": row.project_id, "project_id": row.project_id,
            "description": row.description, "revision_number": row.revision_number,
            "tags": [t.tag for t in row.tags], "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at)}


def _fixed_ips(port: m.Port) -> list[dict[str, str]]:
    return [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]


def router(s: Session, r: l3.Router, ctx: RequestContext) -> dict[str, Any]:
    gw = router_ops.gateway_port(s, r)
    info = None if gw is None else {
        "network_id": gw.network_id, "enable_snat": r.enable_snat,
        "external_fixed_ips": _fixed_ips(gw)}
    out: dict[str, Any] = {
        "id": r.id, "name": r.name, "status": r.status, "admin_state_up": r.admin_state_up,
        "external_gateway_info": info, "routes": list(r.routes or []),
        "availability_zone_hints": list(r.availability_zone_hints or []),
        "availability_zones": [AVAILABILITY_ZONE] if agent_ops.router_agents(s, r.id) else [],
        "flavor_id": None, **_standard(r)}
    if ctx.is_admin:
        out["ha"] = r.ha
        out["distributed"] = r.distributed
    return out


def port_forwarding(pf: l3.PortForwarding) -> dict[str, Any]:
    return {"id": pf.id, "protocol": pf.protocol, "internal_ip_address": pf.internal_ip_address,
            "internal_port": pf.internal_port, "internal_port_id": pf.internal_port_id,
            "external_port": pf.external_port, "description": pf.description}


def floatingip(s: Session, f: l3.FloatingIP, ctx: RequestContext) -> dict[str, Any]:
    details = None
    if f.fixed_port_id:
        port = s.get(m.Port, f.fixed_port_id)
        if port is not None:
            details = {"name": port.name, "network_id": port.network_id,
                       "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
                       "status": port.status, "device_id": port.device_id,
                       "device_owner": port.device_owner}
    return {"id": f.id, "floating_ip_address": f.floating_ip_address,
            "floating_network_id": f.floating_network_id, "router_id": f.router_id,
            "port_id": f.fixed_port_id, "fixed_ip_address": f.fixed_ip_address,
            "status": f.status, "dns_name": f.dns_name, "dns_domain": f.dns_domain,
            "port_details": details, "qos_policy_id": None,
            "port_forwardings": [port_forwarding(pf) for pf in f.port_forwardings],
            **_standard(f)}


def _agent_time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def agent(a: m.Agent, down_time: float, ha_state: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id, "agent_type": a.agent_type, "binary": a.binary, "host": a.host,
        "topic": a.topic, "admin_state_up": a.admin_state_up,
        "alive": agent_ops.is_alive(a, down_time), "description": a.description,
        "availability_zone": a.availability_zone, "configurations": dict(a.configurations),
        "created_at": _agent_time(a.created_at), "started_at": _agent_time(a.started_at),
        "heartbeat_timestamp": _agent_time(a.heartbeat_timestamp),
        "resources_synced": None, "resource_versions": {}}
    if ha_state is not None:
        out["ha_state"] = ha_state
    return out


def router_count(s: Session, agent_id: str) -> int:
    return len(list(s.scalars(select(l3.RouterL3AgentBinding.router_id).where(
        l3.RouterL3AgentBinding.l3_agent_id == agent_id))))
