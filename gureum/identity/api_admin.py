"""Domains and projects (/v3/domains, /v3/projects); the helpers the identity handlers share.

Users and groups are in api_users.py, roles and grants in api_roles.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.errors import InvalidInput
from gureum.identity import models as m
from gureum.identity import policy, schemas, service, views
from gureum.identity.core import Identity

router = Router()


def ident_of(req: Request) -> Identity:
    ident: Identity = req.app_state.identity
    return ident


def parse_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on", ""):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"Invalid value for query parameter '{name}': {value!r} is not a "
                       "boolean.", field=name)


def filtered(req: Request, stmt: Select[Any], columns: dict[str, Any]) -> Select[Any]:
    """Apply exact-match query filters (?name=…&enabled=…) Keystone supports."""
    for name, column in columns.items():
        value = req.arg(name)
        if value is None:
            continue
        if name == "enabled":
            stmt = stmt.where(column.is_(parse_bool(value, name)))
        else:
            stmt = stmt.where(column == value)
    return stmt


def body_of(req: Request, schema: dict[str, Any], key: str) -> dict[str, Any]:
    data: dict[str, Any] = validate(schema, req.json())[key]
    return data


def one(key: str, value: dict[str, Any], status: int = 200) -> Response:
    return json_response({key: value}, status)


# -- domains -------------------------------------------------------------------------

@router.get("/v3/domains", tx=True)
def list_domains(req: Request, s: Session) -> Response:
    # A domain-scoped token's reader lists its own domain (how a domain manager's
    # `openstack … --domain NAME` finds the domain's id).
    only_domain = policy.listing(req.context, "identity:list_domains")
    stmt = filtered(req, select(m.Domain).order_by(m.Domain.name),
                    {"name": m.Domain.name, "enabled": m.Domain.enabled})
    if only_domain is not None:
        stmt = stmt.where(m.Domain.id == only_domain)
    items = [views.domain(d, req.base_url) for d in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "domains", "domains", items))


@router.post("/v3/domains", tx=True)
def create_domain(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_domain")
    d = service.create_domain(ident_of(req), s, body_of(req, schemas.domain_create, "domain"))
    return one("domain", views.domain(d, req.base_url), 201)


@router.get("/v3/domains/{domain_id}", tx=True)
def get_domain(req: Request, s: Session) -> Response:
    domain_id = req.path_params["domain_id"]
    policy.get_domain(req.context, domain_id)
    d = service.get_or_404(s, m.Domain, domain_id, "domain")
    return one("domain", views.domain(d, req.base_url))


@router.patch("/v3/domains/{domain_id}", tx=True)
def update_domain(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_domain")
    d = service.update_domain(ident_of(req), s, req.path_params["domain_id"],
                              body_of(req, schemas.domain_update, "domain"))
    return one("domain", views.domain(d, req.base_url))


@router.delete("/v3/domains/{domain_id}", tx=True)
def delete_domain(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_domain")
    service.delete_domain(ident_of(req), s, req.path_params["domain_id"])
    return empty()


# -- projects ------------------------------------------------------------------------

def _tag_filters(req: Request, tagged: list[Any]) -> list[Any]:
    """Keystone's tags, tags-any, not-tags and not-tags-any (comma-separated)."""
    for name, keep in (("tags", lambda want, have: want <= have),
                       ("tags-any", lambda want, have: bool(want & have)),
                       ("not-tags", lambda want, have: not want <= have),
                       ("not-tags-any", lambda want, have: not want & have)):
        value = req.arg(name)
        if value:
            wanted = set(value.split(","))
            tagged = [x for x in tagged if keep(wanted, set(x.tags or []))]
    return tagged


@router.get("/v3/projects", tx=True)
def list_projects(req: Request, s: Session) -> Response:
    only_domain = policy.list_projects(req.context)
    is_domain = req.arg("is_domain")
    if is_domain is not None and parse_bool(is_domain, "is_domain"):
        # Projects acting as domains: the domains (they have no domain or parent).
        if req.arg("domain_id") or req.arg("parent_id") or only_domain is not None:
            return json_response(views.collection(req.base_url, "projects", "projects",
                                                  []))
        stmt = filtered(req, select(m.Domain).order_by(m.Domain.name),
                        {"name": m.Domain.name, "enabled": m.Domain.enabled})
        items = [views.domain_project(d, req.base_url)
                 for d in _tag_filters(req, list(s.scalars(stmt)))]
        return json_response(views.collection(req.base_url, "projects", "projects", items))
    stmt = filtered(req, select(m.Project).order_by(m.Project.name),
                    {"name": m.Project.name, "domain_id": m.Project.domain_id,
                     "enabled": m.Project.enabled})
    parent = req.arg("parent_id")
    if parent is not None:
        stmt = stmt.where((m.Project.parent_id == parent) |
                          (m.Project.parent_id.is_(None) & (m.Project.domain_id == parent)))
    if only_domain is not None:
        stmt = stmt.where(m.Project.domain_id == only_domain)
    projects = _tag_filters(req, list(s.scalars(stmt)))
    items = [views.project(p, req.base_url) for p in projects]
    return json_response(views.collection(req.base_url, "projects", "projects", items))


def _project_domain(s: Session, body: dict[str, Any], default: str) -> str:
    """The domain a new project lands in: given, its parent's, or the default."""
    if body.get("domain_id"):
        return str(body["domain_id"])
    parent_id = body.get("parent_id")
    if parent_id:
        parent = s.get(m.Project, parent_id)
        return parent.domain_id if parent is not None else str(parent_id)
    return default


@router.post("/v3/projects", tx=True)
def create_project(req: Request, s: Session) -> Response:
    ctx = req.context
    body = body_of(req, schemas.project_create, "project")
    if body.get("is_domain"):
        # A project acting as a domain is a domain: only an admin makes one.
        policy.admin(ctx, "identity:create_project")
        d = service.create_domain_as_project(ident_of(req), s, body)
        return one("project", views.domain_project(d, req.base_url), 201)
    # A domain-scoped token creates in its domain when none is named (Keystone).
    default = (ctx.domain_id if ctx and ctx.domain_id else None) or service.DEFAULT_DOMAIN_ID
    policy.admin_or_domain_manager(ctx, _project_domain(s, body, default),
                                   "identity:create_project")
    p = service.create_project(ident_of(req), s, body, default)
    return one("project", views.project(p, req.base_url), 201)


def _project_for_read(req: Request, s: Session, rule: str) -> m.Project:
    """The project of the path, once the caller may read it (403 before 404)."""
    project_id = req.path_params["project_id"]
    found = s.get(m.Project, project_id)
    policy.get_project(req.context, project_id, found.domain_id if found else "", rule)
    return service.get_or_404(s, m.Project, project_id, "project")


def _project_for_change(req: Request, s: Session, rule: str) -> m.Project:
    """The project of the path, once the caller may change it: an admin, or a manager
    of the project's domain (Keystone's ADMIN_OR_DOMAIN_MANAGER)."""
    found = s.get(m.Project, req.path_params["project_id"])
    policy.admin_or_domain_manager(req.context, found.domain_id if found else None, rule)
    return service.get_or_404(s, m.Project, req.path_params["project_id"], "project")


def _domain_as_project(req: Request, s: Session, rule: str, change: bool = False
                       ) -> m.Domain | None:
    """The domain the path names when it names no project (a project acting as a
    domain, which only admins (and system readers, to read) reach)."""
    project_id = req.path_params["project_id"]
    if s.get(m.Project, project_id) is not None:
        return None
    d = s.get(m.Domain, project_id)
    if d is not None:
        if change:
            policy.admin(req.context, rule)
        elif not policy.system_reader(req.context):
            raise policy.deny(rule)
    return d


@router.get("/v3/projects/{project_id}", tx=True)
def get_project(req: Request, s: Session) -> Response:
    d = _domain_as_project(req, s, "identity:get_project")
    if d is not None:
        return one("project", views.domain_project(d, req.base_url))
    p = _project_for_read(req, s, "identity:get_project")
    return one("project", views.project(p, req.base_url))


@router.patch("/v3/projects/{project_id}", tx=True)
def update_project(req: Request, s: Session) -> Response:
    body = body_of(req, schemas.project_update, "project")
    d = _domain_as_project(req, s, "identity:update_project", change=True)
    if d is not None:
        if body.pop("is_domain", True) is not True:
            raise InvalidInput("Update of `is_domain` is not allowed.",
                               field="project.is_domain")
        d = service.update_domain(ident_of(req), s, d.id, body)
        return one("project", views.domain_project(d, req.base_url))
    p = _project_for_change(req, s, "identity:update_project")
    if body.pop("is_domain", False) is not False:
        raise InvalidInput("Update of `is_domain` is not allowed.", field="project.is_domain")
    p = service.update_project(ident_of(req), s, p.id, body)
    return one("project", views.project(p, req.base_url))


@router.delete("/v3/projects/{project_id}", tx=True)
def delete_project(req: Request, s: Session) -> Response:
    d = _domain_as_project(req, s, "identity:delete_project", change=True)
    if d is not None:
        service.delete_domain(ident_of(req), s, d.id)
        return empty()
    p = _project_for_change(req, s, "identity:delete_project")
    service.delete_project(ident_of(req), s, p.id)
    return empty()


def _tags_response(req: Request, p: m.Project, status: int = 200) -> Response:
    return json_response({"tags": list(p.tags or []), "links": {
        "self": f"{req.base_url}/v3/projects/{p.id}/tags"}}, status)


@router.get("/v3/projects/{project_id}/tags", tx=True)
def list_project_tags(req: Request, s: Session) -> Response:
    return _tags_response(req, _project_for_read(req, s, "identity:list_project_tags"))


@router.put("/v3/projects/{project_id}/tags", tx=True)
def replace_project_tags(req: Request, s: Session) -> Response:
    """Replace the whole list (Keystone's update_project_tags)."""
    p = _project_for_change(req, s, "identity:update_project_tags")
    tags = validate(schemas.project_tags_replace, req.json())["tags"]
    p = service.set_project_tags(ident_of(req), s, p.id, tags)
    return _tags_response(req, p)


@router.delete("/v3/projects/{project_id}/tags", tx=True)
def delete_project_tags(req: Request, s: Session) -> Response:
    p = _project_for_change(req, s, "identity:delete_project_tags")
    service.set_project_tags(ident_of(req), s, p.id, [])
    return empty()


@router.put("/v3/projects/{project_id}/tags/{tag}", tx=True)
def add_project_tag(req: Request, s: Session) -> Response:
    p = _project_for_change(req, s, "identity:create_project_tag")
    tag = req.path_params["tag"]
    validate(schemas.tag, tag)
    service.set_project_tags(ident_of(req), s, p.id, [*(p.tags or []), tag])
    # A header is Latin-1: the tag (any Unicode) goes in percent-encoded.
    return empty(201, {"location": f"{req.base_url}/v3/projects/{p.id}/tags/"
                                   f"{quote(tag, safe='')}"})


@router.get("/v3/projects/{project_id}/tags/{tag}", tx=True)
def check_project_tag(req: Request, s: Session) -> Response:
    p = _project_for_read(req, s, "identity:get_project_tag")
    if req.path_params["tag"] not in (p.tags or []):
        raise service.NotFound(f"Tag {req.path_params['tag']} not found on the project.")
    return empty()


@router.delete("/v3/projects/{project_id}/tags/{tag}", tx=True)
def delete_project_tag(req: Request, s: Session) -> Response:
    p = _project_for_change(req, s, "identity:delete_project_tag")
    tag = req.path_params["tag"]
    if tag not in (p.tags or []):
        raise service.NotFound(f"Tag {tag} not found on the project.")
    service.set_project_tags(ident_of(req), s, p.id, [t for t in p.tags if t != tag])
    return empty()
