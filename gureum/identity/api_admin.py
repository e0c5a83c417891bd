"""Domains, projects, users and groups (/v3/domains, /v3/projects, /v3/users, /v3/groups)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.errors import InvalidInput, Unauthorized
from gureum.identity import assignments, policy, schemas, service, views
from gureum.identity import models as m
from gureum.identity.core import Identity
from gureum.identity.login import Login, LoginFailed

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
    policy.admin(req.context, "identity:list_domains")
    stmt = filtered(req, select(m.Domain).order_by(m.Domain.name),
                    {"name": m.Domain.name, "enabled": m.Domain.enabled})
    items = [views.domain(d, req.base_url) for d in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "domains", "domains", items))


@router.post("/v3/domains", tx=True)
def create_domain(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_domain")
    d = service.create_domain(ident_of(req), s, body_of(req, schemas.domain_create, "domain"))
    return one("domain", views.domain(d, req.base_url), 201)


@router.get("/v3/domains/{domain_id}", tx=True)
def get_domain(req: Request, s: Session) -> Response:
    ctx = req.context
    domain_id = req.path_params["domain_id"]
    if not (ctx and (ctx.is_admin or ctx.domain_id == domain_id or
                     ctx.project_domain_id == domain_id)):
        raise policy.deny("identity:get_domain")
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

@router.get("/v3/projects", tx=True)
def list_projects(req: Request, s: Session) -> Response:
    only_domain = policy.list_projects(req.context)
    stmt = filtered(req, select(m.Project).order_by(m.Project.name),
                    {"name": m.Project.name, "domain_id": m.Project.domain_id,
                     "enabled": m.Project.enabled})
    parent = req.arg("parent_id")
    if parent is not None:
        stmt = stmt.where((m.Project.parent_id == parent) |
                          (m.Project.parent_id.is_(None) & (m.Project.domain_id == parent)))
    if (req.arg("is_domain") or "").lower() == "true":
        stmt = stmt.where(m.Project.id.is_(None))
    projects = list(s.scalars(stmt))
    tags = req.arg("tags")
    if tags:
        wanted = set(tags.split(","))
        projects = [p for p in projects if wanted <= set(p.tags or [])]
    tags_any = req.arg("tags-any")
    if tags_any:
        wanted = set(tags_any.split(","))
        projects = [p for p in projects if wanted & set(p.tags or [])]
    if only_domain is not None:
        projects = [p for p in projects if p.domain_id == only_domain]
    items = [views.project(p, req.base_url) for p in projects]
    return json_response(views.collection(req.base_url, "projects", "projects", items))


@router.post("/v3/projects", tx=True)
def create_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_project")
    p = service.create_project(ident_of(req), s, body_of(req, schemas.project_create, "project"))
    return one("project", views.project(p, req.base_url), 201)


def _project_for_read(req: Request, s: Session, rule: str) -> m.Project:
    """The project of the path, once the caller may read it (403 before 404)."""
    project_id = req.path_params["project_id"]
    found = s.get(m.Project, project_id)
    policy.get_project(req.context, project_id, found.domain_id if found else "", rule)
    return service.get_or_404(s, m.Project, project_id, "project")


@router.get("/v3/projects/{project_id}", tx=True)
def get_project(req: Request, s: Session) -> Response:
    p = _project_for_read(req, s, "identity:get_project")
    return one("project", views.project(p, req.base_url))


@router.patch("/v3/projects/{project_id}", tx=True)
def update_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_project")
    p = service.update_project(ident_of(req), s, req.path_params["project_id"],
                               body_of(req, schemas.project_update, "project"))
    return one("project", views.project(p, req.base_url))


@router.delete("/v3/projects/{project_id}", tx=True)
def delete_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_project")
    service.delete_project(ident_of(req), s, req.path_params["project_id"])
    return empty()


@router.get("/v3/projects/{project_id}/tags", tx=True)
def list_project_tags(req: Request, s: Session) -> Response:
    p = _project_for_read(req, s, "identity:list_project_tags")
    return json_response({"tags": list(p.tags or [])})


@router.put("/v3/projects/{project_id}/tags/{tag}", tx=True)
def add_project_tag(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_project_tag")
    tag = req.path_params["tag"]
    validate(schemas._tags, [tag])
    p = service.add_project_tag(ident_of(req), s, req.path_params["project_id"], tag)
    return json_response({"tags": list(p.tags or [])}, 201)


@router.get("/v3/projects/{project_id}/tags/{tag}", tx=True)
def check_project_tag(req: Request, s: Session) -> Response:
    p = _project_for_read(req, s, "identity:get_project_tag")
    if req.path_params["tag"] not in (p.tags or []):
        raise service.NotFound(f"Tag {req.path_params['tag']} not found on the project.")
    return empty()


@router.delete("/v3/projects/{project_id}/tags/{tag}", tx=True)
def delete_project_tag(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_project_tag")
    p = service.get_or_404(s, m.Project, req.path_params["project_id"], "project")
    tag = req.path_params["tag"]
    if tag not in (p.tags or []):
        raise service.NotFound(f"Tag {tag} not found on the project.")
    p.tags = [t for t in p.tags if t != tag]
    service.changed(ident_of(req), s)
    return empty()


# -- users ---------------------------------------------------------------------------

@router.get("/v3/users", tx=True)
def list_users(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_users")
    stmt = filtered(req, select(m.User).order_by(m.User.name),
                    {"name": m.User.name, "domain_id": m.User.domain_id,
                     "enabled": m.User.enabled})
    items = [views.user(u, req.base_url) for u in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "users", "users", items))


@router.post("/v3/users")
def create_user(req: Request) -> Response:
    policy.admin(req.context, "identity:create_user")
    ident = ident_of(req)
    body = body_of(req, schemas.user_create, "user")
    password_hash = service.hash_password(ident, body.get("password"))
    with ident.db.session() as s:
        u = service.create_user(ident, s, body, password_hash)
        return one("user", views.user(u, req.base_url), 201)


@router.get("/v3/users/{user_id}", tx=True)
def get_user(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:get_user")
    u = service.get_or_404(s, m.User, user_id, "user")
    return one("user", views.user(u, req.base_url))


@router.patch("/v3/users/{user_id}")
def update_user(req: Request) -> Response:
    policy.admin(req.context, "identity:update_user")
    ident = ident_of(req)
    body = body_of(req, schemas.user_update, "user")
    password_hash = service.hash_password(ident, body.get("password"))
    with ident.db.session() as s:
        u = service.update_user(ident, s, req.path_params["user_id"], body, password_hash)
        return one("user", views.user(u, req.base_url))


@router.delete("/v3/users/{user_id}", tx=True)
def delete_user(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_user")
    service.delete_user(ident_of(req), s, req.path_params["user_id"])
    return empty()


@router.post("/v3/users/{user_id}/password", auth=False)
async def change_password(req: Request) -> Response:
    """The user's own password change (Keystone: no policy, no token needed).

    The original password is the proof, so a wrong one counts towards the
    lockout and the address throttle exactly as a failed login does.
    """
    ident = ident_of(req)
    user_id = req.path_params["user_id"]
    body = body_of(req, schemas.password_change, "user")
    address = req.remote_addr
    delay = ident.throttle.delay(address)
    if delay:
        await asyncio.sleep(delay)

    def _change() -> None:
        login = Login(req.app_state.tokens, address)
        try:
            login.verify_password({"id": user_id}, body["original_password"])
        except LoginFailed as exc:
            ident.throttle.failed(address)
            raise Unauthorized(f"Error when changing user password: {exc.message}") from None
        new_hash = service.hash_password(ident, body["password"])
        assert new_hash is not None
        with ident.db.session() as s:
            service.change_password(ident, s, user_id, new_hash)

    await asyncio.get_running_loop().run_in_executor(req.app_state.executor, _change)
    return empty()


@router.get("/v3/users/{user_id}/projects", tx=True)
def list_user_projects(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:list_user_projects")
    service.get_or_404(s, m.User, user_id, "user")
    items = [views.project(p, req.base_url) for p in assignments.user_projects(s, user_id)]
    return json_response(views.collection(req.base_url, f"users/{user_id}/projects",
                                          "projects", items))


@router.get("/v3/users/{user_id}/groups", tx=True)
def list_user_groups(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:list_groups_for_user")
    service.get_or_404(s, m.User, user_id, "user")
    groups = s.scalars(select(m.Group).join(
        m.GroupMembership, m.GroupMembership.group_id == m.Group.id)
        .where(m.GroupMembership.user_id == user_id).order_by(m.Group.name))
    items = [views.group(g, req.base_url) for g in groups]
    return json_response(views.collection(req.base_url, f"users/{user_id}/groups", "groups",
                                          items))


# -- groups --------------------------------------------------------------------------

@router.get("/v3/groups", tx=True)
def list_groups(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_groups")
    stmt = filtered(req, select(m.Group).order_by(m.Group.name),
                    {"name": m.Group.name, "domain_id": m.Group.domain_id})
    items = [views.group(g, req.base_url) for g in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "groups", "groups", items))


@router.post("/v3/groups", tx=True)
def create_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_group")
    g = service.create_group(ident_of(req), s, body_of(req, schemas.group_create, "group"))
    return one("group", views.group(g, req.base_url), 201)


@router.get("/v3/groups/{group_id}", tx=True)
def get_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:get_group")
    g = service.get_or_404(s, m.Group, req.path_params["group_id"], "group")
    return one("group", views.group(g, req.base_url))


@router.patch("/v3/groups/{group_id}", tx=True)
def update_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_group")
    g = service.update_group(ident_of(req), s, req.path_params["group_id"],
                             body_of(req, schemas.group_update, "group"))
    return one("group", views.group(g, req.base_url))


@router.delete("/v3/groups/{group_id}", tx=True)
def delete_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_group")
    service.delete_group(ident_of(req), s, req.path_params["group_id"])
    return empty()


@router.get("/v3/groups/{group_id}/users", tx=True)
def list_group_users(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_users_in_group")
    group_id = req.path_params["group_id"]
    service.get_or_404(s, m.Group, group_id, "group")
    users = s.scalars(select(m.User).join(
        m.GroupMembership, m.GroupMembership.user_id == m.User.id)
        .where(m.GroupMembership.group_id == group_id).order_by(m.User.name))
    items = [views.user(u, req.base_url) for u in users]
    return json_response(views.collection(req.base_url, f"groups/{group_id}/users", "users",
                                          items))


@router.put("/v3/groups/{group_id}/users/{user_id}", tx=True)
def add_group_user(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:add_user_to_group")
    service.add_group_member(ident_of(req), s, req.path_params["group_id"],
                             req.path_params["user_id"])
    return empty()


@router.head("/v3/groups/{group_id}/users/{user_id}", tx=True)
def check_group_user(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:check_user_in_group")
    service.check_group_member(s, req.path_params["group_id"], req.path_params["user_id"])
    return empty()


router.add("GET", "/v3/groups/{group_id}/users/{user_id}", check_group_user, tx=True)


@router.delete("/v3/groups/{group_id}/users/{user_id}", tx=True)
def remove_group_user(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:remove_user_from_group")
    service.remove_group_member(ident_of(req), s, req.path_params["group_id"],
                                req.path_params["user_id"])
    return empty()
