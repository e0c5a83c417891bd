"""Nova's security groups: a proxy to the networking service's groups, in Nova's shapes.

A group in Nova's shape has ``rules``: its ingress rules, each with
``ip_protocol``, ``from_port``/``to_port`` (-1 for "any" ICMP type or code;
1-65535 for TCP/UDP without ports) and either ``ip_range: {cidr}`` or
``group: {name, tenant_id}``. Errors are Nova's: a missing group 404 (400 when
creating a server), a group the networking service refuses to delete (the
default one, one in use) or a duplicate rule 400.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute import instances
from gureum.compute.guests import sync_security_groups
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, NotFound
from gureum.network import models as m
from gureum.network import secgroups

# -- shapes -----------------------------------------------------------------------------


def _ports(rule: m.SecurityGroupRule) -> tuple[int, int]:
    low, high = rule.port_range_min, rule.port_range_max
    if low is None and high is None and rule.protocol is not None:
        if rule.protocol.upper() in ("TCP", "UDP"):
            return 1, 65535
        return -1, -1
    return (low if low is not None else -1), (high if high is not None else -1)


def nova_rule(s: Session, rule: m.SecurityGroupRule) -> dict[str, Any]:
    low, high = _ports(rule)
    out: dict[str, Any] = {"id": rule.id, "parent_group_id": rule.security_group_id,
                           "ip_protocol": rule.protocol, "from_port": low, "to_port": high,
                           "group": {}, "ip_range": {}}
    if rule.remote_group_id:
        remote = s.get(m.SecurityGroup, rule.remote_group_id)
        if remote is not None:
            out["group"] = {"name": remote.name, "tenant_id": remote.project_id}
    elif rule.remote_ip_prefix:
        out["ip_range"] = {"cidr": rule.remote_ip_prefix}
    return out


def nova_group(s: Session, group: m.SecurityGroup) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "description": group.description,
            "tenant_id": group.project_id,
            "rules": [nova_rule(s, r) for r in group.rules if r.direction == "ingress"]}


# -- a server's groups ------------------------------------------------------------------

def add_to_server(s: Session, ctx: RequestContext, server_id: str, name: str) -> None:
    inst = instances.visible(s, ctx, server_id)
    secgroups.add_to_instance(s, inst.project_id, inst.id, name)
    sync_security_groups(s, inst)


def remove_from_server(s: Session, ctx: RequestContext, server_id: str, name: str) -> None:
    inst = instances.visible(s, ctx, server_id)
    secgroups.remove_from_instance(s, inst.project_id, inst.id, name)
    inst.security_groups = [g.name for g in secgroups.instance_groups(s, inst.id)]


def server_groups(s: Session, ctx: RequestContext, server_id: str) -> list[dict[str, Any]]:
    inst = instances.visible(s, ctx, server_id)
    return [nova_group(s, g) for g in secgroups.instance_groups(s, inst.id)]


# -- the deprecated proxy ---------------------------------------------------------------

def _group(s: Session, ctx: RequestContext, group_id: str) -> m.SecurityGroup:
    try:
        return secgroups.get_group(s, ctx, group_id)
    except NotFound:
        raise NotFound(f"Security group {group_id} not found.",
                       nova_type="SecurityGroupNotFound") from None


def list_groups(s: Session, ctx: RequestContext, all_projects: bool, offset: int,
                limit: int | None) -> list[dict[str, Any]]:
    secgroups.prepare_list(s, ctx)
    stmt = select(m.SecurityGroup).order_by(m.SecurityGroup.created_at, m.SecurityGroup.id)
    if not (all_projects and ctx.is_admin):
        stmt = stmt.where(m.SecurityGroup.project_id == ctx.project_id)
    groups = list(s.scalars(stmt))
    groups = groups[offset:offset + limit] if limit is not None else groups[offset:]
    return [nova_group(s, g) for g in groups]


def show_group(s: Session, ctx: RequestContext, group_id: str) -> dict[str, Any]:
    return nova_group(s, _group(s, ctx, group_id))


def create_group(s: Session, ctx: RequestContext, fields: dict[str, str]) -> dict[str, Any]:
    try:
        return nova_group(s, secgroups.create_group(s, ctx, fields))
    except Conflict as exc:
        raise InvalidInput(exc.message) from None


def update_group(s: Session, ctx: RequestContext, group_id: str, fields: dict[str, str]
                 ) -> dict[str, Any]:
    group = _group(s, ctx, group_id)
    try:
        return nova_group(s, secgroups.update_group(s, ctx, group.id, fields))
    except Conflict as exc:
        raise InvalidInput(exc.message) from None


def delete_group(s: Session, ctx: RequestContext, group_id: str) -> None:
    group = _group(s, ctx, group_id)
    try:
        secgroups.delete_group(s, ctx, group.id)
    except Conflict as exc:
        raise InvalidInput(exc.message) from None


def _port_arg(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be an integer.", field=name) from None


def neutron_rule(body: dict[str, Any], group_id: str) -> dict[str, Any]:
    """A Nova rule request as the networking service's (ingress) rule."""
    proto = (body.get("ip_protocol") or "").lower() or None
    low = _port_arg(body.get("from_port"), "from_port")
    high = _port_arg(body.get("to_port"), "to_port")
    if proto is None and (low is not None or high is not None):
        raise InvalidInput("Not enough parameters to build a valid rule.")
    if proto in ("icmp", "1"):
        low = None if low == -1 else low
        high = None if high == -1 else high
    elif proto is not None and low is not None and high is not None and low > high:
        raise InvalidInput(f"Invalid port range {low}:{high}. Valid TCP ports should be "
                           "between 1-65535", field="from_port")
    rule: dict[str, Any] = {"security_group_id": group_id, "direction": "ingress",
                            "protocol": proto, "port_range_min": low, "port_range_max": high,
                            "ethertype": "IPv4"}
    if body.get("group_id"):
        rule["remote_group_id"] = str(body["group_id"])
    else:
        cidr = body.get("cidr") or "0.0.0.0/0"
        try:
            rule["ethertype"] = f"IPv{ipaddress.ip_network(cidr, strict=False).version}"
        except ValueError:
            raise InvalidInput(f"Invalid CIDR {cidr}", field="cidr") from None
        rule["remote_ip_prefix"] = cidr
    return rule


def create_rule(s: Session, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    group = _group(s, ctx, str(body["parent_group_id"]))
    if body.get("group_id"):
        _group(s, ctx, str(body["group_id"]))
    try:
        rule = secgroups.create_rule(s, ctx, neutron_rule(body, group.id))
    except Conflict as exc:
        if "already exists" in exc.message:
            raise InvalidInput(f"This rule already exists in group {group.id}") from None
        raise InvalidInput(exc.message) from None
    return nova_rule(s, rule)


def delete_rule(s: Session, ctx: RequestContext, rule_id: str) -> None:
    try:
        secgroups.delete_rule(s, ctx, rule_id)
    except NotFound:
        raise NotFound(f"Rule ({rule_id}) not found",
                       nova_type="SecurityGroupRuleNotFound") from None
