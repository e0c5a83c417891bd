"""Address scopes (/v2.0/address-scopes, Neutron's address-scope extension).

A scope groups subnet pools of one IP version whose prefixes must not overlap
(409 ``AddressScopePrefixConflict``): addresses in one scope are unique, so
they could be routed between its networks without NAT. A pool joins a scope
through its ``address_scope_id``; a network shows the scope of its subnets'
pools as ``ipv4_address_scope`` / ``ipv6_address_scope`` when all its subnets
of that version come from pools in that one scope.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session, object_session

from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import listing, policy
from gureum.network import models as m
from gureum.network.schemas import _bool, _obj, _project, _str

ADMIN_ATTRS = ("shared",)
create_schema = _obj({"name": _str(), "ip_version": {"enum": [4, 6]}, "shared": _bool,
                      "project_id": _project, "tenant_id": _project}, ("ip_version",))
update_schema = _obj({"name": _str(), "shared": _bool,
                      **{k: {} for k in ("ip_version", "project_id", "tenant_id", "id")}})
READ_ONLY = ("ip_version", "project_id", "tenant_id", "id")

COLLECTION = listing.Collection("address-scopes", m.AddressScope, {
    "id": listing.Attr(m.AddressScope.id), "name": listing.Attr(m.AddressScope.name),
    "project_id": listing.Attr(m.AddressScope.project_id),
    "tenant_id": listing.Attr(m.AddressScope.project_id),
    "ip_version": listing.Attr(m.AddressScope.ip_version, "int"),
    "shared": listing.Attr(m.AddressScope.shared, "bool"),
})


def visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    if not ctx.project_id:
        return false()
    return or_(m.AddressScope.project_id == ctx.project_id, m.AddressScope.shared.is_(True))


def view(a: m.AddressScope, ctx: RequestContext) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "project_id": a.project_id,
            "tenant_id": a.project_id, "ip_version": a.ip_version, "shared": a.shared}


def get(s: Session, ctx: RequestContext | None, scope_id: str) -> m.AddressScope:
    scope = s.get(m.AddressScope, scope_id)
    if scope is None or (ctx is not None and not (policy.owns(ctx, scope.project_id)
                                                  or scope.shared)):
        raise e.typed_not_found("AddressScopeNotFound",
                                f"Address scope {scope_id} could not be found.")
    return scope


def create(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.AddressScope:
    policy.writer(ctx, "create_address_scope")
    policy.check_admin_attrs(ctx, body, ADMIN_ATTRS, "create_address_scope")
    scope = m.AddressScope(project_id=policy.target_project(ctx, body),
                           name=body.get("name") or "", ip_version=body["ip_version"],
                           shared=body.get("shared", False))
    s.add(scope)
    s.flush()
    return scope


def update(s: Session, ctx: RequestContext, scope_id: str, body: dict[str, Any]
           ) -> m.AddressScope:
    scope = get(s, ctx, scope_id)
    policy.writer(ctx, "update_address_scope")
    policy.check_owner(ctx, scope.project_id, "update_address_scope")
    policy.check_admin_attrs(ctx, body, ADMIN_ATTRS, "update_address_scope")
    if "name" in body:
        scope.name = body["name"] or ""
    if "shared" in body:
        if scope.shared and not body["shared"]:
            raise e.bad_request("Unsharing of an address scope is not allowed", "shared")
        scope.shared = body["shared"]
    s.flush()
    return scope


def delete(s: Session, ctx: RequestContext, scope_id: str) -> None:
    scope = get(s, ctx, scope_id)
    policy.writer(ctx, "delete_address_scope")
    policy.check_owner(ctx, scope.project_id, "delete_address_scope")
    if s.scalar(select(m.SubnetPool.id).where(m.SubnetPool.address_scope_id == scope.id)
                .limit(1)):
        raise e.conflict("AddressScopeInUse", f"Unable to complete operation on address "
                         f"scope {scope.id}. There are one or more subnet pools in use on "
                         "the address scope")
    s.delete(scope)
    s.flush()


def check_pool(s: Session, ctx: RequestContext, scope_id: str, pool_id: str | None,
               ip_version: int, prefixes: list[str]) -> None:
    """A pool may join the scope: same IP version, no prefix overlapping its pools'."""
    scope = get(s, ctx, scope_id)
    if scope.ip_version != ip_version:
        raise e.bad_request(f"Illegal subnetpool association: subnetpool cannot be "
                            f"associated with address scope {scope.id} because subnetpool "
                            f"ip_version is not {scope.ip_version}.", "address_scope_id")
    mine = [ipaddress.ip_network(p) for p in prefixes]
    for other in s.scalars(select(m.SubnetPool).where(
            m.SubnetPool.address_scope_id == scope.id, m.SubnetPool.id != (pool_id or ""))):
        for p in other.prefixes:
            theirs = ipaddress.ip_network(p)
            if any(n.overlaps(theirs) for n in mine):
                raise e.conflict("AddressScopePrefixConflict", "Failed to associate "
                                 f"address scope {scope.id}: prefix {theirs} of subnet pool "
                                 f"{other.id} overlaps the subnet pool's prefixes.")


def network_scopes(n: m.Network) -> dict[int, str | None]:
    """The address scope of a network's IPv4 and IPv6 subnets (None: none, or mixed)."""
    out: dict[int, str | None] = {4: None, 6: None}
    pooled = {sn.subnetpool_id for sn in n.subnets if sn.subnetpool_id}
    s = object_session(n)
    if not pooled or s is None:
        return out
    scope_of: dict[str, str | None] = {
        pool_id: scope_id for pool_id, scope_id in s.execute(
            select(m.SubnetPool.id, m.SubnetPool.address_scope_id)
            .where(m.SubnetPool.id.in_(pooled)))}
    for version in (4, 6):
        found = {scope_of.get(sn.subnetpool_id or "") for sn in n.subnets
                 if sn.ip_version == version}
        if len(found) == 1:
            out[version] = found.pop()
    return out

