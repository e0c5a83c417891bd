"""Default security group rules (/v2.0/default-security-group-rules): the templates new
groups' rules are made from (Neutron's security-groups-default-rules).

Each template says whether it goes into each project's ``default`` group
(``used_in_default_sg``, default false), into the groups projects make
(``used_in_non_default_sg``, default true), or both; ``remote_group_id:
PARENT`` becomes the new group itself. The cloud starts with Neutron's four
(egress anywhere over IPv4 and IPv6 for every group; ingress from the group's
own members for default groups). Anyone may read them, only admins change
them, and a change applies to groups made afterwards, never to existing ones.
Templates are validated like rules (``secgroup_rules``); one equal to an
existing template is a 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import listing, policy
from gureum.network import models as m
from gureum.network import secgroup_rules as rules

PARENT = "PARENT"

_str = {"type": "string", "maxLength": 255, "pattern": "^[^\x00]*$"}
_props = {k: v for k, v in rules.rule_create["properties"].items()
          if k not in ("security_group_id", "project_id", "tenant_id")}
create_schema: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["direction"],
    "properties": {**_props, "used_in_default_sg": {"type": "boolean"},
                   "used_in_non_default_sg": {"type": "boolean"}},
}
READ_ONLY = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
             "remote_ip_prefix", "remote_group_id", "description", "used_in_default_sg",
             "used_in_non_default_sg", "id")
update_schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                                 "properties": {k: {} for k in READ_ONLY}}

T = m.DefaultSecurityGroupRule


def view(t: m.DefaultSecurityGroupRule, ctx: RequestContext) -> dict[str, Any]:
    return {"id": t.id, "direction": t.direction, "ethertype": t.ethertype,
            "protocol": t.protocol, "port_range_min": t.port_range_min,
            "port_range_max": t.port_range_max, "remote_ip_prefix": t.remote_ip_prefix,
            "remote_group_id": t.remote_group_id, "remote_address_group_id": None,
            "description": t.description, "used_in_default_sg": t.used_in_default_sg,
            "used_in_non_default_sg": t.used_in_non_default_sg}


def visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    return None  # every project reads the templates


def get(s: Session, ctx: RequestContext | None, template_id: str
        ) -> m.DefaultSecurityGroupRule:
    found = s.get(T, template_id) if isinstance(template_id, str) else None
    if found is None:
        raise e.typed_not_found("DefaultSecurityGroupRuleNotFound",
                                f"Default security group rule {template_id} does not exist")
    return found


def create(s: Session, ctx: RequestContext, body: dict[str, Any]
           ) -> m.DefaultSecurityGroupRule:
    policy.admin(ctx, "create_default_security_group_rule")
    attrs = rules.validated(body)
    key = rules.same_key(attrs)
    for existing in s.scalars(select(T)):
        if rules.same_key(existing) == key:
            raise e.conflict("DefaultSecurityGroupRuleExists", "Default security group rule "
                             f"already exists. Rule id is {existing.id}.")
    template = T(**attrs, used_in_default_sg=body.get("used_in_default_sg", False),
                 used_in_non_default_sg=body.get("used_in_non_default_sg", True))
    s.add(template)
    s.flush()
    return template


def update(s: Session, ctx: RequestContext, template_id: str, body: dict[str, Any]
           ) -> m.DefaultSecurityGroupRule:
    policy.admin(ctx, "update_default_security_group_rule")
    return get(s, ctx, template_id)  # nothing of a template changes (all read-only)


def delete(s: Session, ctx: RequestContext, template_id: str) -> None:
    policy.admin(ctx, "delete_default_security_group_rule")
    s.delete(get(s, ctx, template_id))
    s.flush()


COLLECTION = listing.Collection("default-security-group-rules", T, {
    "id": listing.Attr(T.id), "description": listing.Attr(T.description),
    "direction": listing.Attr(T.direction), "ethertype": listing.Attr(T.ethertype),
    "protocol": listing.Attr(T.protocol),
    "port_range_min": listing.Attr(T.port_range_min, "int"),
    "port_range_max": listing.Attr(T.port_range_max, "int"),
    "remote_ip_prefix": listing.Attr(T.remote_ip_prefix),
    "remote_group_id": listing.Attr(T.remote_group_id),
    "remote_address_group_id": listing.Attr(custom=lambda values: T.id.is_(None),
                                            sortable=False),
    "used_in_default_sg": listing.Attr(T.used_in_default_sg, "bool"),
    "used_in_non_default_sg": listing.Attr(T.used_in_non_default_sg, "bool"),
    "created_at": listing.Attr(T.created_at, filterable=False),
})


def rules_for_new_group(s: Session, group_id: str, default: bool) -> list[dict[str, Any]]:
    """The rule attributes a new group gets from the templates."""
    wanted = T.used_in_default_sg if default else T.used_in_non_default_sg
    out = []
    for t in s.scalars(select(T).where(wanted.is_(True)).order_by(T.created_at, T.id)):
        if t.remote_group_id not in (None, PARENT) and \
                s.get(m.SecurityGroup, t.remote_group_id) is None:
            continue  # a template naming a group that is gone (never validated)
        out.append({"direction": t.direction, "ethertype": t.ethertype,
                    "protocol": t.protocol, "port_range_min": t.port_range_min,
                    "port_range_max": t.port_range_max, "remote_ip_prefix": t.remote_ip_prefix,
                    "remote_group_id": group_id if t.remote_group_id == PARENT
                    else t.remote_group_id, "description": t.description})
    return out
