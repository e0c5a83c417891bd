"""The list filters of routers, floating IPs and agents (see listing.py)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_

from gureum.network import l3_models as l3
from gureum.network import models as m
from gureum.network.listing import Attr, Collection, _common


def _router_external(values: list[str]) -> ColumnElement[bool]:
    """external_gateway_info's network: routers whose gateway port is on it."""
    return exists().where(m.Port.id == l3.Router.gw_port_id, m.Port.network_id.in_(values))


ROUTERS = Collection("routers", l3.Router, {
    **_common(l3.Router), "status": Attr(l3.Router.status),
    "admin_state_up": Attr(l3.Router.admin_state_up, "bool"),
    "ha": Attr(l3.Router.ha, "bool", admin_only=True),
    "distributed": Attr(l3.Router.distributed, "bool", admin_only=True),
    "enable_snat": Attr(l3.Router.enable_snat, "bool", sortable=False),
    "external_gateway_info:network_id": Attr(custom=_router_external, sortable=False),
})


def _fip_port(values: list[str]) -> ColumnElement[bool]:
    wanted = [v for v in values if v not in ("", "None", "null")]
    if len(wanted) != len(values):
        return or_(l3.FloatingIP.fixed_port_id.in_(wanted),
                   l3.FloatingIP.fixed_port_id.is_(None))
    return l3.FloatingIP.fixed_port_id.in_(wanted)


FLOATINGIPS = Collection("floatingips", l3.FloatingIP, {
    "id": Attr(l3.FloatingIP.id), "description": Attr(l3.FloatingIP.description),
    "project_id": Attr(l3.FloatingIP.project_id), "tenant_id": Attr(l3.FloatingIP.project_id),
    "revision_number": Attr(l3.FloatingIP.revision_number, "int"),
    "created_at": Attr(l3.FloatingIP.created_at, filterable=False),
    "updated_at": Attr(l3.FloatingIP.updated_at, filterable=False),
    "status": Attr(l3.FloatingIP.status),
    "floating_ip_address": Attr(l3.FloatingIP.floating_ip_address),
    "floating_network_id": Attr(l3.FloatingIP.floating_network_id),
    "fixed_ip_address": Attr(l3.FloatingIP.fixed_ip_address),
    "router_id": Attr(l3.FloatingIP.router_id),
    "port_id": Attr(custom=_fip_port, sortable=False),
    "dns_name": Attr(l3.FloatingIP.dns_name), "dns_domain": Attr(l3.FloatingIP.dns_domain),
})


AGENTS = Collection("agents", m.Agent, {
    "id": Attr(m.Agent.id), "agent_type": Attr(m.Agent.agent_type),
    "binary": Attr(m.Agent.binary), "host": Attr(m.Agent.host),
    "topic": Attr(m.Agent.topic), "admin_state_up": Attr(m.Agent.admin_state_up, "bool"),
    "description": Attr(m.Agent.description),
    "availability_zone": Attr(m.Agent.availability_zone),
    "created_at": Attr(m.Agent.created_at, filterable=False),
    "heartbeat_timestamp": Attr(m.Agent.heartbeat_timestamp, filterable=False),
})
