"""Unified limits: registered (default) limits and project or domain overrides.

The enforcement model is Keystone's ``flat``: a project's limit is checked on
its own, whatever its parents' limits are. Services read the limits through
/v3/limits (as oslo.limit does); nothing here enforces them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound
from gureum.identity import models as m
from gureum.identity.core import Identity
from gureum.identity.service import changed

MODEL = {"name": "flat",
         "description": "Limit enforcement and validation does not take project hierarchy "
                        "into consideration."}


def _invalid(attribute: str, target: str) -> InvalidInput:
    """Keystone's ValidationError for a reference to something that does not exist."""
    return InvalidInput(f"Expecting to find {attribute} in {target}. The server could not "
                        "comply with the request since it is either malformed or otherwise "
                        "incorrect. The client is assumed to be in error.",
                        field=f"{target}.{attribute}")


def _check_references(s: Session, body: dict[str, Any], target: str) -> None:
    if body.get("service_id") is not None and s.get(m.Service, body["service_id"]) is None:
        raise _invalid("service_id", target)
    if body.get("region_id") is not None and s.get(m.Region, body["region_id"]) is None:
        raise _invalid("region_id", target)
    if body.get("project_id") is not None and s.get(m.Project, body["project_id"]) is None:
        raise _invalid("project_id", target)
    if body.get("domain_id") is not None and s.get(m.Domain, body["domain_id"]) is None:
        raise _invalid("domain_id", target)


def _duplicate(kind: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry.")


# -- registered limits -------------------------------------------------------------

def get_registered_limit(s: Session, limit_id: str) -> m.RegisteredLimit:
    row = s.get(m.RegisteredLimit, limit_id)
    if row is None:
        raise NotFound(f"Could not find registered limit for {limit_id}.",
                       kind="registered_limit")
    return row


def _find_registered(s: Session, service_id: str, region_id: str, resource_name: str
                     ) -> m.RegisteredLimit | None:
    return s.scalar(select(m.RegisteredLimit).where(
        m.RegisteredLimit.service_id == service_id,
        m.RegisteredLimit.region_id == region_id,
        m.RegisteredLimit.resource_name == resource_name))


def create_registered_limits(ident: Identity, s: Session, items: list[dict[str, Any]]
                             ) -> list[m.RegisteredLimit]:
    """All or nothing, as Keystone does: one bad item fails the whole request."""
    rows: list[m.RegisteredLimit] = []
    for body in items:
        _check_references(s, body, "registered_limit")
        region = body.get("region_id") or ""
        if _find_registered(s, body["service_id"], region, body["resource_name"]) or any(
                (r.service_id, r.region_id, r.resource_name) ==
                (body["service_id"], region, body["resource_name"]) for r in rows):
            raise _duplicate("registered_limit")
        row = m.RegisteredLimit(service_id=body["service_id"], region_id=region,
                                resource_name=body["resource_name"],
                                default_limit=body["default_limit"],
                                description=body.get("description"))
        s.add(row)
        rows.append(row)
    s.flush()
    changed(ident, s)
    return rows


def _has_limits(s: Session, registered_limit_id: str) -> bool:
    return s.scalar(select(m.Limit.id).where(
        m.Limit.registered_limit_id == registered_limit_id).limit(1)) is not None


def update_registered_limit(ident: Identity, s: Session, limit_id: str, body: dict[str, Any]
                            ) -> m.RegisteredLimit:
    row = get_registered_limit(s, limit_id)
    _check_references(s, body, "registered_limit")
    moves = {k for k in ("service_id", "region_id", "resource_name") if k in body}
    if moves:
        # Limits point at a registered limit by what it limits; it may not move under them.
        if _has_limits(s, row.id):
            raise Forbidden(f"Unable to update or delete registered limit {row.id} because "
                            "there are project limits associated with it.")
        service_id = body.get("service_id", row.service_id)
        region = (body["region_id"] or "") if "region_id" in body else row.region_id
        resource = body.get("resource_name", row.resource_name)
        other = _find_registered(s, service_id, region, resource)
        if other is not None and other.id != row.id:
            raise _duplicate("registered_limit")
        row.service_id, row.region_id, row.resource_name = service_id, region, resource
    if "default_limit" in body:
        row.default_limit = body["default_limit"]
    if "description" in body:
        row.description = body["description"]
    s.flush()
    changed(ident, s)
    return row


def delete_registered_limit(ident: Identity, s: Session, limit_id: str) -> None:
    row = get_registered_limit(s, limit_id)
    if _has_limits(s, row.id):
        raise Forbidden(f"Unable to update or delete registered limit {row.id} because "
                        "there are project limits associated with it.")
    s.delete(row)
    changed(ident, s)


def list_registered_limits(s: Session, filters: dict[str, str | None]
                           ) -> list[m.RegisteredLimit]:
    stmt = select(m.RegisteredLimit).order_by(m.RegisteredLimit.resource_name,
                                              m.RegisteredLimit.id)
    if filters.get("service_id") is not None:
        stmt = stmt.where(m.RegisteredLimit.service_id == filters["service_id"])
    if filters.get("region_id") is not None:
        stmt = stmt.where(m.RegisteredLimit.region_id == filters["region_id"])
    if filters.get("resource_name") is not None:
        stmt = stmt.where(m.RegisteredLimit.resource_name == filters["resource_name"])
    return list(s.scalars(stmt))


# -- limits ----------------------------------------------------------------------------

def get_limit(s: Session, limit_id: str) -> m.Limit:
    row = s.get(m.Limit, limit_id)
    if row is None:
        raise NotFound(f"Could not find limit for {limit_id}.", kind="limit")
    return row


def create_limits(ident: Identity, s: Session, items: list[dict[str, Any]]) -> list[m.Limit]:
    rows: list[m.Limit] = []
    for body in items:
        if bool(body.get("project_id")) == bool(body.get("domain_id")):
            raise InvalidInput("A limit is for a project or for a domain: give exactly one of "
                               "project_id and domain_id.", field="limits.project_id")
        _check_references(s, body, "limit")
        registered = _find_registered(s, body["service_id"], body.get("region_id") or "",
                                      body["resource_name"])
        if registered is None:
            raise Forbidden("Unable to create a limit that has no corresponding registered "
                            "limit.")
        project_id, domain_id = body.get("project_id") or "", body.get("domain_id") or ""
        key = (registered.id, project_id, domain_id)
        if s.scalar(select(m.Limit.id).where(
                m.Limit.registered_limit_id == registered.id, m.Limit.project_id == project_id,
                m.Limit.domain_id == domain_id)) or any(
                (r.registered_limit_id, r.project_id, r.domain_id) == key for r in rows):
            raise _duplicate("limit")
        row = m.Limit(registered_limit_id=registered.id, project_id=project_id,
                      domain_id=domain_id, resource_limit=body["resource_limit"],
                      description=body.get("description"))
        s.add(row)
        rows.append(row)
    s.flush()
    changed(ident, s)
    return rows


def update_limit(ident: Identity, s: Session, limit_id: str, body: dict[str, Any]) -> m.Limit:
    row = get_limit(s, limit_id)
    if "resource_limit" in body:
        row.resource_limit = body["resource_limit"]
    if "description" in body:
        row.description = body["description"]
    s.flush()
    changed(ident, s)
    return row


def delete_limit(ident: Identity, s: Session, limit_id: str) -> None:
    s.delete(get_limit(s, limit_id))
    changed(ident, s)


def list_limits(s: Session, filters: dict[str, str | None]
                ) -> list[tuple[m.Limit, m.RegisteredLimit]]:
    R, L = m.RegisteredLimit, m.Limit
    stmt = select(L, R).join(R, R.id == L.registered_limit_id).order_by(R.resource_name, L.id)
    for name, column in (("service_id", R.service_id), ("region_id", R.region_id),
                         ("resource_name", R.resource_name), ("project_id", L.project_id),
                         ("domain_id", L.domain_id)):
        if filters.get(name) is not None:
            stmt = stmt.where(column == filters[name])
    return [(row[0], row[1]) for row in s.execute(stmt)]


# -- cascades from the catalog and the resource tree -------------------------------------

def delete_for_service_or_region(s: Session, service_id: str | None = None,
                                 region_id: str | None = None) -> None:
    """A deleted service or region takes its registered limits and their overrides."""
    stmt = select(m.RegisteredLimit.id)
    if service_id is not None:
        stmt = stmt.where(m.RegisteredLimit.service_id == service_id)
    if region_id is not None:
        stmt = stmt.where(m.RegisteredLimit.region_id == region_id)
    ids = list(s.scalars(stmt))
    if ids:
        s.execute(delete(m.Limit).where(m.Limit.registered_limit_id.in_(ids)))
        s.execute(delete(m.RegisteredLimit).where(m.RegisteredLimit.id.in_(ids)))
