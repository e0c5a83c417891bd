"""RBAC policies (/v2.0/rbac-policies): a network granted to other projects.

As in Neutron, a policy names a network it applies to (``object_id``), what it
grants (``access_as_shared``: the target project sees the network and may put
ports and subnets on it; ``access_as_external``: the target sees it as an
external network, for router gateways and floating IPs) and to whom
(``target_tenant``: a project id, or ``*`` for every project). A network's
``shared: true`` *is* a ``*`` access_as_shared policy and ``router:external:
true`` a ``*`` access_as_external one: setting the attribute makes the policy
and removing the policy clears the attribute.

A policy cannot be removed (or retargeted) while a project it grants has
ports or subnets on the network that no other policy covers: 409
``RbacPolicyInUse``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db.base import utcnow
from gureum.network import errors as e
from gureum.network import listing, policy, resources
from gureum.network import models as m
from gureum.network.schemas import _obj, _project, _str, _uuid_ish

SHARED = policy.RBAC_SHARED
EXTERNAL = policy.RBAC_EXTERNAL
WILDCARD = policy.WILDCARD
ACTIONS = (SHARED, EXTERNAL)
OBJECT_TYPES = ("network",)

create_schema = _obj({
    "object_type": {"enum": list(OBJECT_TYPES)}, "object_id": _uuid_ish,
    "action": {"enum": list(ACTIONS)}, "target_tenant": _str(255, 1),
    "target_project": _str(255, 1), "project_id": _project, "tenant_id": _project,
}, ("object_type", "object_id", "action"))
update_schema = _obj({"target_tenant": _str(255, 1), "target_project": _str(255, 1),
                      **{k: {} for k in ("object_type", "object_id", "action", "project_id",
                                         "tenant_id", "id")}})
READ_ONLY = ("object_type", "object_id", "action", "project_id", "tenant_id", "id")

COLLECTION = listing.Collection("rbac-policies", m.RBACPolicy, {
    "id": listing.Attr(m.RBACPolicy.id),
    "project_id": listing.Attr(m.RBACPolicy.project_id),
    "tenant_id": listing.Attr(m.RBACPolicy.project_id),
    "object_type": listing.Attr(m.RBACPolicy.object_type),
    "object_id": listing.Attr(m.RBACPolicy.object_id),
    "action": listing.Attr(m.RBACPolicy.action),
    "target_tenant": listing.Attr(m.RBACPolicy.target_project),
    "target_project": listing.Attr(m.RBACPolicy.target_project),
})


# -- in use -----------------------------------------------------------------------------

def _users(s: Session, net: m.Network) -> set[str]:
    """Projects other than the owner with ports or subnets on the network."""
    ports = s.scalars(select(m.Port.project_id).where(
        m.Port.network_id == net.id, m.Port.project_id != net.project_id))
    subnets = s.scalars(select(m.Subnet.project_id).where(
        m.Subnet.network_id == net.id, m.Subnet.project_id != net.project_id))
    return set(ports) | set(subnets)


def stranded(s: Session, net: m.Network, action: str, removing: m.RBACPolicy | None,
             removing_target: str | None = None) -> set[str]:
    """Projects that use the network through ``action`` and would lose it if the
    policy ``removing`` (or the one for ``removing_target``) were gone."""
    target = removing.target_project if removing is not None else removing_target
    remaining = {r.target_project for r in net.rbac_entries
                 if r.action == action and r is not removing
                 and r.target_project != target}
    if WILDCARD in remaining:
        return set()
    users = _users(s, net)
    lost = users if target == WILDCARD else users & {target}
    return lost - remaining


def _check_not_in_use(s: Session, net: m.Network, row: m.RBACPolicy) -> None:
    if stranded(s, net, row.action, row):
        raise e.conflict("RbacPolicyInUse", f"RBAC policy on object {net.id} cannot be "
                         "removed because other objects depend on it. Details: "
                         "Projects using the network through this policy: "
                         f"{', '.join(sorted(stranded(s, net, row.action, row)))}")


# -- the wildcard entries behind shared and router:external -----------------------------

def set_wildcard(s: Session, net: m.Network, action: str, on: bool) -> None:
    """Make or drop the ``*`` policy that ``shared`` / ``router:external`` stand for."""
    found = next((r for r in net.rbac_entries
                  if r.action == action and r.target_project == WILDCARD), None)
    if on and found is None:
        net.rbac_entries.append(m.RBACPolicy(
            project_id=net.project_id, object_id=net.id, action=action,
            target_project=WILDCARD))
    elif not on and found is not None:
        net.rbac_entries.remove(found)


def _sync_flags(net: m.Network, action: str) -> None:
    """``shared`` is the ``*`` access_as_shared policy; a network is external while
    any access_as_external policy is on it."""
    if action == SHARED:
        net.shared = any(r.action == SHARED and r.target_project == WILDCARD
                         for r in net.rbac_entries)
    else:
        net.external = any(r.action == EXTERNAL for r in net.rbac_entries)


# -- the API ----------------------------------------------------------------------------

def visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    if not ctx.project_id:
        return false()
    return m.RBACPolicy.project_id == ctx.project_id


def view(r: m.RBACPolicy, ctx: RequestContext) -> dict[str, Any]:
    return {"id": r.id, "project_id": r.project_id, "tenant_id": r.project_id,
            "object_type": r.object_type, "object_id": r.object_id, "action": r.action,
            "target_tenant": r.target_project, "target_project": r.target_project}


def get(s: Session, ctx: RequestContext | None, policy_id: str) -> m.RBACPolicy:
    row = s.get(m.RBACPolicy, policy_id)
    if row is None or (ctx is not None and not policy.owns(ctx, row.project_id)):
        raise e.typed_not_found("RbacPolicyNotFound", f"RBAC policy of type network with "
                                f"ID {policy_id} not found")
    return row


def _target(body: dict[str, Any]) -> str:
    target = body.get("target_tenant") or body.get("target_project")
    if body.get("target_tenant") and body.get("target_project") and \
            body["target_tenant"] != body["target_project"]:
        raise e.bad_request("Both target_tenant and target_project given, with different "
                            "values.", "target_tenant")
    if not target:
        raise e.bad_request("Failed to parse request. Required attribute 'target_tenant' "
                            "not specified", "target_tenant")
    return str(target)


def _duplicate() -> Exception:
    return e.conflict("DuplicateRbacPolicy", "An RBAC policy already exists with those "
                      "values.")


def create(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.RBACPolicy:
    policy.writer(ctx, "create_rbac_policy")
    target = _target(body)
    net = resources.get_network(s, ctx, body["object_id"])
    if not policy.owns(ctx, net.project_id):
        # Neutron answers a policy on someone else's network as if it did not exist.
        raise e.not_found("network", body["object_id"])
    if target == WILDCARD and not ctx.is_admin:
        raise e.policy("create_rbac_policy:target_tenant")
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "rbac_policy")
    if any(r.action == body["action"] and r.target_project == target
           for r in net.rbac_entries):
        raise _duplicate()
    row = m.RBACPolicy(project_id=project_id, object_type="network", object_id=net.id,
                       action=body["action"], target_project=target)
    net.rbac_entries.append(row)
    _sync_flags(net, row.action)
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:
        raise _duplicate() from None
    resources.touch(net)
    return row


def update(s: Session, ctx: RequestContext, policy_id: str, body: dict[str, Any]
           ) -> m.RBACPolicy:
    row = get(s, ctx, policy_id)
    policy.writer(ctx, "update_rbac_policy")
    if "target_tenant" not in body and "target_project" not in body:
        return row
    target = _target(body)
    if target == row.target_project:
        return row
    if target == WILDCARD and not ctx.is_admin:
        raise e.policy("update_rbac_policy:target_tenant")
    net = resources.get_network(s, None, row.object_id)
    if any(r.action == row.action and r.target_project == target for r in net.rbac_entries):
        raise _duplicate()
    _check_not_in_use(s, net, row)
    row.target_project = target
    row.updated_at = utcnow()
    _sync_flags(net, row.action)
    s.flush()
    return row


def delete(s: Session, ctx: RequestContext, policy_id: str) -> None:
    row = get(s, ctx, policy_id)
    policy.writer(ctx, "delete_rbac_policy")
    net = resources.get_network(s, None, row.object_id)
    _check_not_in_use(s, net, row)
    net.rbac_entries.remove(row)
    _sync_flags(net, row.action)
    resources.touch(net)
    s.flush()
