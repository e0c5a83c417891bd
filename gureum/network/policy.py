"""Who may see and change which networking resources (Neutron's default policy).

* admin may do everything, in every project;
* a member acts in its own project; a reader only reads;
* a network is visible to its project, to everyone when shared or external,
  and to the projects an RBAC policy grants it to (``gureum.network.rbac``);
  a subnet is visible when its network is; a port to its project and to the
  owner of its network. Anything else answers 404, never 403, so a project
  cannot learn what another one has;
* shared, router:external, is_default and provider:* are admin-only, and so
  are the port's binding:* attributes except binding:vnic_type.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select

from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import models as m
from gureum.roles import owns, role_checks

NETWORK_ADMIN_ATTRS = ("shared", "router:external", "is_default", "provider:network_type",
                       "provider:physical_network", "provider:segmentation_id")
PORT_ADMIN_ATTRS = ("binding:host_id", "binding:profile", "binding:vif_type",
                    "binding:vif_details")


reader, writer, admin = role_checks(e.policy)


WILDCARD = "*"
RBAC_SHARED = "access_as_shared"
RBAC_EXTERNAL = "access_as_external"


def rbac_targets(ctx: RequestContext) -> list[str]:
    """The RBAC target_tenant values that name ctx's project."""
    return [WILDCARD, ctx.project_id] if ctx.project_id else [WILDCARD]


def granted(ctx: RequestContext, net: m.Network, action: str | None = None) -> bool:
    """An RBAC policy on ``net`` grants it to ctx's project (or to every project)."""
    wanted = rbac_targets(ctx)
    return any(r.target_project in wanted and (action is None or r.action == action)
               for r in net.rbac_entries)


def _external_for_all(net: m.Network) -> bool:
    """External with no access_as_external policy at all: a row from before policies
    (or flagged by code alone) is external for everyone, as it always was."""
    return net.external and not any(r.action == RBAC_EXTERNAL for r in net.rbac_entries)


def network_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """The WHERE clause of the networks ctx may see (None: all of them)."""
    if ctx.is_admin:
        return None
    mine = m.Network.project_id == ctx.project_id if ctx.project_id else false()
    granted_to_me = m.Network.id.in_(select(m.RBACPolicy.object_id).where(
        m.RBACPolicy.target_project.in_(rbac_targets(ctx))))
    external_for_all = m.Network.external.is_(True) & m.Network.id.not_in(
        select(m.RBACPolicy.object_id).where(m.RBACPolicy.action == RBAC_EXTERNAL))
    return or_(mine, m.Network.shared.is_(True), granted_to_me, external_for_all)


def subnet_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    clause = network_visible(ctx)
    if clause is None:
        return None
    return m.Subnet.network_id.in_(select(m.Network.id).where(clause))


def port_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    if not ctx.project_id:
        return false()
    owned_networks = select(m.Network.id).where(m.Network.project_id == ctx.project_id)
    return or_(m.Port.project_id == ctx.project_id, m.Port.network_id.in_(owned_networks))


def can_see_network(ctx: RequestContext, net: m.Network) -> bool:
    return owns(ctx, net.project_id) or net.shared or granted(ctx, net) or \
        _external_for_all(net)


def shared_with(ctx: RequestContext, net: m.Network) -> bool:
    """ctx's project may put ports and subnets on ``net``."""
    return owns(ctx, net.project_id) or net.shared or granted(ctx, net, RBAC_SHARED)


def check_owner(ctx: RequestContext, project_id: str, rule: str) -> None:
    """A visible resource the caller may not change: 403 (invisible ones are 404)."""
    if not owns(ctx, project_id):
        raise e.policy(rule)


# Admin-only attributes a create may still name with their default value: Neutron
# enforces an attribute's rule on create only when the value differs from its
# default (openstacksdk's tests create subnet pools with shared=False as members).
ADMIN_ATTR_DEFAULTS: dict[str, Any] = {"shared": False, "is_default": False}


def check_admin_attrs(ctx: RequestContext, body: dict[str, Any], attrs: tuple[str, ...],
                      action: str) -> None:
    if ctx.is_admin:
        return
    for attr in attrs:
        if attr not in body:
            continue
        if action.startswith("create_") and attr in ADMIN_ATTR_DEFAULTS and \
                body[attr] == ADMIN_ATTR_DEFAULTS[attr]:
            continue
        raise e.policy(f"{action}:{attr}")


def target_project(ctx: RequestContext, body: dict[str, Any]) -> str:
    """The project a new resource belongs to; only admin may name another one."""
    project = body.get("project_id") or body.get("tenant_id") or ctx.project_id
    if body.get("project_id") and body.get("tenant_id") and \
            body["project_id"] != body["tenant_id"]:
        raise e.bad_request("Both project_id and tenant_id given, with different values.")
    if not project:
        raise e.bad_request("A project-scoped token (or project_id, as admin) is required.")
    if project != ctx.project_id and not ctx.is_admin:
        raise e.bad_request("Specifying 'project_id' or 'tenant_id' other than the "
                            "authenticated project in request requires admin privileges")
    return str(project)
