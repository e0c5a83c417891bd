"""Endpoint filtering (Keystone's OS-EP-FILTER): per-project service catalogs.

An endpoint group is a saved filter over endpoints (service_id, region_id,
interface). A project associated with endpoints, directly or through endpoint
groups, sees only those endpoints in the catalog of its tokens; a project
with no association sees the whole catalog (Keystone's default
``return_all_endpoints_if_no_filter = true``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.errors import Conflict, InvalidInput, NotFound
from gureum.identity import models as m
from gureum.identity.core import Identity
from gureum.identity.service import changed, get_or_404

FILTER_KEYS = ("service_id", "region_id", "interface")


# -- endpoint groups -------------------------------------------------------------------

def get_group(s: Session, group_id: str) -> m.EndpointGroup:
    g = s.get(m.EndpointGroup, group_id)
    if g is None:
        raise NotFound(f"Could not find Endpoint Group: {group_id}.", kind="endpoint_group")
    return g


def create_group(ident: Identity, s: Session, body: dict[str, Any]) -> m.EndpointGroup:
    if not body["filters"]:
        raise InvalidInput("filters field is required and cannot be empty",
                           field="endpoint_group.filters")
    g = m.EndpointGroup(name=body["name"], description=body.get("description"),
                        filters=dict(body["filters"]))
    s.add(g)
    s.flush()
    changed(ident, s)
    return g


def update_group(ident: Identity, s: Session, group_id: str, body: dict[str, Any]
                 ) -> m.EndpointGroup:
    g = get_group(s, group_id)
    if "name" in body:
        g.name = body["name"]
    if "description" in body:
        g.description = body["description"]
    if "filters" in body:
        g.filters = dict(body["filters"])
    s.flush()
    changed(ident, s)
    return g


def delete_group(ident: Identity, s: Session, group_id: str) -> None:
    g = get_group(s, group_id)
    s.execute(delete(m.ProjectEndpointGroup)
              .where(m.ProjectEndpointGroup.endpoint_group_id == g.id))
    s.delete(g)
    changed(ident, s)


def matches(e: m.Endpoint, filters: dict[str, Any]) -> bool:
    return all(getattr(e, key) == value for key, value in filters.items()
               if key in FILTER_KEYS)


def group_endpoints(s: Session, g: m.EndpointGroup) -> list[m.Endpoint]:
    endpoints = s.scalars(select(m.Endpoint).order_by(m.Endpoint.service_id,
                                                      m.Endpoint.interface, m.Endpoint.id))
    return [e for e in endpoints if matches(e, g.filters or {})]


# -- project associations ------------------------------------------------------------

def add_group_to_project(ident: Identity, s: Session, group_id: str, project_id: str) -> None:
    get_or_404(s, m.Project, project_id, "project")
    get_group(s, group_id)
    if s.get(m.ProjectEndpointGroup, (group_id, project_id)) is not None:
        raise Conflict("Conflict occurred attempting to store project_endpoint_group - "
                       "Duplicate entry.")
    s.add(m.ProjectEndpointGroup(endpoint_group_id=group_id, project_id=project_id))
    changed(ident, s)


def get_group_in_project(s: Session, group_id: str, project_id: str
                         ) -> m.ProjectEndpointGroup:
    get_or_404(s, m.Project, project_id, "project")
    get_group(s, group_id)
    row = s.get(m.ProjectEndpointGroup, (group_id, project_id))
    if row is None:
        raise NotFound("Endpoint Group Project Association not found")
    return row


def remove_group_from_project(ident: Identity, s: Session, group_id: str, project_id: str
                              ) -> None:
    s.delete(get_group_in_project(s, group_id, project_id))
    changed(ident, s)


def project_groups(s: Session, project_id: str) -> list[m.EndpointGroup]:
    return list(s.scalars(select(m.EndpointGroup).join(
        m.ProjectEndpointGroup, m.ProjectEndpointGroup.endpoint_group_id == m.EndpointGroup.id)
        .where(m.ProjectEndpointGroup.project_id == project_id).order_by(m.EndpointGroup.name)))


def group_projects(s: Session, group_id: str) -> list[m.Project]:
    get_group(s, group_id)
    return list(s.scalars(select(m.Project).join(
        m.ProjectEndpointGroup, m.ProjectEndpointGroup.project_id == m.Project.id)
        .where(m.ProjectEndpointGroup.endpoint_group_id == group_id).order_by(m.Project.name)))


def add_endpoint_to_project(ident: Identity, s: Session, endpoint_id: str, project_id: str
                            ) -> None:
    get_or_404(s, m.Endpoint, endpoint_id, "endpoint")
    get_or_404(s, m.Project, project_id, "project")
    if s.get(m.ProjectEndpoint, (endpoint_id, project_id)) is not None:
        raise Conflict("Conflict occurred attempting to store project_endpoint - "
                       "Duplicate entry.")
    s.add(m.ProjectEndpoint(endpoint_id=endpoint_id, project_id=project_id))
    changed(ident, s)


def get_project_endpoint(s: Session, endpoint_id: str, project_id: str) -> m.ProjectEndpoint:
    get_or_404(s, m.Endpoint, endpoint_id, "endpoint")
    get_or_404(s, m.Project, project_id, "project")
    row = s.get(m.ProjectEndpoint, (endpoint_id, project_id))
    if row is None:
        raise NotFound(f"Endpoint {endpoint_id} not found in project {project_id}")
    return row


def remove_endpoint_from_project(ident: Identity, s: Session, endpoint_id: str,
                                 project_id: str) -> None:
    s.delete(get_project_endpoint(s, endpoint_id, project_id))
    changed(ident, s)


def endpoint_projects(s: Session, endpoint_id: str) -> list[m.Project]:
    get_or_404(s, m.Endpoint, endpoint_id, "endpoint")
    return list(s.scalars(select(m.Project).join(
        m.ProjectEndpoint, m.ProjectEndpoint.project_id == m.Project.id)
        .where(m.ProjectEndpoint.endpoint_id == endpoint_id).order_by(m.Project.name)))


def project_endpoints(s: Session, project_id: str) -> list[m.Endpoint]:
    """The endpoints a project is associated with, directly or through groups."""
    direct = list(s.scalars(select(m.Endpoint).join(
        m.ProjectEndpoint, m.ProjectEndpoint.endpoint_id == m.Endpoint.id)
        .where(m.ProjectEndpoint.project_id == project_id)))
    found = {e.id: e for e in direct}
    for g in project_groups(s, project_id):
        for e in group_endpoints(s, g):
            found.setdefault(e.id, e)
    return sorted(found.values(), key=lambda e: (e.service_id, e.interface, e.id))


def load_project_filter(s: Session, project_id: str) -> frozenset[str] | None:
    """The endpoint ids a project's catalog is limited to; None when it is not filtered."""
    ids = frozenset(e.id for e in project_endpoints(s, project_id))
    return ids or None


def filter_catalog(catalog: list[dict[str, Any]], allowed: frozenset[str] | None
                   ) -> list[dict[str, Any]]:
    """Keep only the allowed endpoints, and only the services that still have one."""
    if allowed is None:
        return catalog
    out = []
    for svc in catalog:
        endpoints = [e for e in svc["endpoints"] if e["id"] in allowed]
        if endpoints:
            out.append({**svc, "endpoints": endpoints})
    return out
