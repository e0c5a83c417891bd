"""Roles, implied roles, grants and /v3/role_assignments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.identity import assignments as asg
from gureum.identity import models as m
from gureum.identity import policy, schemas, service, views
from gureum.identity.api_admin import body_of, filtered, ident_of, one, parse_bool

router = Router()


# -- roles ---------------------------------------------------------------------------

@router.get("/v3/roles", tx=True)
def list_roles(req: Request, s: Session) -> Response:
    domain_id = req.arg("domain_id") or ""
    policy.list_roles(req.context, domain_roles=bool(domain_id))
    stmt = filtered(req, select(m.Role).order_by(m.Role.name), {"name": m.Role.name})
    stmt = stmt.where(m.Role.domain_id == domain_id)
    items = [views.role(r, req.base_url) for r in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "roles", "roles", items))


@router.post("/v3/roles", tx=True)
def create_role(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_role")
    r = asg.create_role(ident_of(req), s, body_of(req, schemas.role_create, "role"))
    return one("role", views.role(r, req.base_url), 201)


@router.get("/v3/roles/{role_id}", tx=True)
def get_role(req: Request, s: Session) -> Response:
    r = service.get_or_404(s, m.Role, req.path_params["role_id"], "role")
    policy.get_role(req.context, r.name, r.domain_id)
    return one("role", views.role(r, req.base_url))


@router.patch("/v3/roles/{role_id}", tx=True)
def update_role(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_role")
    r = asg.update_role(ident_of(req), s, req.path_params["role_id"],
                        body_of(req, schemas.role_update, "role"))
    return one("role", views.role(r, req.base_url))


@router.delete("/v3/roles/{role_id}", tx=True)
def delete_role(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_role")
    asg.delete_role(ident_of(req), s, req.path_params["role_id"])
    return empty()


# -- implied roles ---------------------------------------------------------------------

def _inference(prior: m.Role, implied: list[m.Role], base: str) -> dict[str, Any]:
    return {"prior_role": views.role_ref(prior, base),
            "implies": [views.role_ref(r, base) for r in implied]}


@router.get("/v3/roles/{prior_id}/implies", tx=True)
def list_implied(req: Request, s: Session) -> Response:
    policy.admin_or_system_reader(req.context, "identity:list_implied_roles")
    prior = service.get_or_404(s, m.Role, req.path_params["prior_id"], "role")
    implied = list(s.scalars(select(m.Role).join(
        m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
        .where(m.ImpliedRole.prior_role_id == prior.id).order_by(m.Role.name)))
    return json_response({"role_inference": _inference(prior, implied, req.base_url),
                          "links": {"self": f"{req.base_url}/v3/roles/{prior.id}/implies"}})


@router.put("/v3/roles/{prior_id}/implies/{implied_id}", tx=True)
def add_implied(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_implied_role")
    prior_id, implied_id = req.path_params["prior_id"], req.path_params["implied_id"]
    asg.add_implied_role(ident_of(req), s, prior_id, implied_id)
    prior = service.get_or_404(s, m.Role, prior_id, "role")
    implied = service.get_or_404(s, m.Role, implied_id, "role")
    return json_response({"role_inference": {
        "prior_role": views.role_ref(prior, req.base_url),
        "implies": views.role_ref(implied, req.base_url)},
        "links": {"self": f"{req.base_url}/v3/roles/{prior_id}/implies/{implied_id}"}}, 201)


@router.get("/v3/roles/{prior_id}/implies/{implied_id}", tx=True)
def get_implied(req: Request, s: Session) -> Response:
    policy.admin_or_system_reader(req.context, "identity:check_implied_role" if req.method == "HEAD"
                                 else "identity:get_implied_role")
    prior_id, implied_id = req.path_params["prior_id"], req.path_params["implied_id"]
    if s.get(m.ImpliedRole, (prior_id, implied_id)) is None:
        raise service.NotFound(f"{prior_id} does not imply {implied_id}.")
    prior = service.get_or_404(s, m.Role, prior_id, "role")
    implied = service.get_or_404(s, m.Role, implied_id, "role")
    if req.method == "HEAD":
        return empty()
    return json_response({"role_inference": {
        "prior_role": views.role_ref(prior, req.base_url),
        "implies": views.role_ref(implied, req.base_url)}})


@router.delete("/v3/roles/{prior_id}/implies/{implied_id}", tx=True)
def delete_implied(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_implied_role")
    asg.remove_implied_role(ident_of(req), s, req.path_params["prior_id"],
                            req.path_params["implied_id"])
    return empty()


@router.get("/v3/role_inferences", tx=True)
def list_inferences(req: Request, s: Session) -> Response:
    policy.admin_or_system_reader(req.context, "identity:list_role_inference_rules")
    roles = {r.id: r for r in s.scalars(select(m.Role))}
    grouped: dict[str, list[m.Role]] = {}
    for ir in s.scalars(select(m.ImpliedRole)):
        grouped.setdefault(ir.prior_role_id, []).append(roles[ir.implied_role_id])
    items = [_inference(roles[p], sorted(imp, key=lambda r: r.name), req.base_url)
             for p, imp in sorted(grouped.items(), key=lambda kv: roles[kv[0]].name)]
    return json_response({"role_inferences": items,
                          "links": {"self": f"{req.base_url}/v3/role_inferences"}})


# -- grants: /v3/{projects|domains}/{id}/{users|groups}/{id}/roles[/{role_id}] -----------

def _grant_parts(req: Request) -> tuple[str, str, str, str]:
    p = req.path_params
    target = "project" if "project_id" in p else ("domain" if "domain_id" in p else "system")
    target_id = p.get("project_id") or p.get("domain_id") or m.SYSTEM_TARGET
    actor = "user" if "user_id" in p else "group"
    actor_id = p.get("user_id") or p["group_id"]
    return actor, actor_id, target, target_id


def _inherited(req: Request) -> bool:
    return bool(req.route.extra.get("inherited", False)) if req.route else False


def _grant(req: Request) -> asg.Grant:
    actor, actor_id, target, target_id = _grant_parts(req)
    return asg.Grant(asg.grant_type(actor, target), actor_id, target_id,
                     req.path_params["role_id"], _inherited(req))


def _authorize_grant(req: Request, s: Session, op: str) -> asg.GrantSubjects:
    """Look the grant's parts up (404s first, as Keystone) and check op's rule:
    create/revoke (an admin, or a domain manager granting a role it may),
    check/list (a system reader, or a reader of the domain)."""
    actor, actor_id, target, target_id = _grant_parts(req)
    subjects = asg.grant_subjects(s, actor, actor_id, target, target_id,
                                  req.path_params.get("role_id"),
                                  actor_may_be_missing=op == "revoke")
    ctx = req.context
    if target == "system":
        rule = (f"identity:list_system_grants_for_{actor}" if op == "list"
                else f"identity:{op}_system_grant_for_{actor}")
        if op in ("create", "revoke"):
            policy.admin(ctx, rule)
        else:
            policy.admin_or_system_reader(ctx, rule)
    elif op in ("create", "revoke"):
        policy.change_grant(ctx, f"identity:{op}_grant", subjects.actor_domain,
                            subjects.target_domain,
                            subjects.role.name if subjects.role else None)
    else:
        policy.read_grant(ctx, f"identity:{op}_grant", subjects.actor_domain,
                          subjects.target_domain,
                          subjects.role.domain_id if subjects.role else "")
    return subjects


def put_grant(req: Request, s: Session) -> Response:
    _authorize_grant(req, s, "create")
    _, _, target, target_id = _grant_parts(req)
    asg.check_domain_role(s, req.path_params["role_id"], target, target_id)
    asg.add_grant(ident_of(req), s, _grant(req))
    return empty()


def check_grant(req: Request, s: Session) -> Response:
    _authorize_grant(req, s, "check")
    actor, actor_id, target, target_id = _grant_parts(req)
    g = _grant(req)
    if not asg.has_grant(s, g):
        raise service.NotFound(f"Could not find role assignment with role: {g.role_id}, "
                               f"{actor}: {actor_id}, {target}: {target_id}.")
    return empty()


def delete_grant(req: Request, s: Session) -> Response:
    _authorize_grant(req, s, "revoke")
    asg.remove_grant(ident_of(req), s, _grant(req))
    return empty()


def list_grants(req: Request, s: Session) -> Response:
    _authorize_grant(req, s, "list")
    actor, actor_id, target, target_id = _grant_parts(req)
    roles = asg.grant_roles(s, asg.grant_type(actor, target), actor_id, target_id,
                            _inherited(req))
    items = [views.role(r, req.base_url) for r in roles]
    return json_response(views.collection(req.base_url, req.path.removeprefix("/v3/"),
                                          "roles", items))


for _target in ("projects/{project_id}", "domains/{domain_id}", "system"):
    for _actor in ("users/{user_id}", "groups/{group_id}"):
        _base = f"/v3/{_target}/{_actor}/roles"
        router.add("GET", _base, list_grants, tx=True)
        router.add("PUT", _base + "/{role_id}", put_grant, tx=True)
        router.add("HEAD", _base + "/{role_id}", check_grant, tx=True)
        router.add("GET", _base + "/{role_id}", check_grant, tx=True)
        router.add("DELETE", _base + "/{role_id}", delete_grant, tx=True)
    if _target != "system":
        for _actor in ("users/{user_id}", "groups/{group_id}"):
            _base = f"/v3/OS-INHERIT/{_target}/{_actor}/roles"
            router.add("GET", _base + "/inherited_to_projects", list_grants, tx=True,
                       inherited=True)
            _one = _base + "/{role_id}/inherited_to_projects"
            router.add("PUT", _one, put_grant, tx=True, inherited=True)
            router.add("HEAD", _one, check_grant, tx=True, inherited=True)
            router.add("GET", _one, check_grant, tx=True, inherited=True)
            router.add("DELETE", _one, delete_grant, tx=True, inherited=True)


# -- /v3/role_assignments ----------------------------------------------------------------

def _flag(req: Request, name: str) -> bool:
    """A query flag: present (``?effective``) or a boolean value."""
    return name in req.query and parse_bool(req.arg(name) or "", name)


@router.get("/v3/role_assignments", tx=True)
def list_role_assignments(req: Request, s: Session) -> Response:
    """Keystone's identity:list_role_assignments: admins and system readers list every
    assignment, a reader of a domain-scoped token those on its domain and its
    projects; nobody else, not even for their own user (Keystone has no such rule:
    a user sees its roles in its token, or with /v3/auth/projects)."""
    only_domain = policy.listing(req.context, "identity:list_role_assignments")
    inherited_to = req.arg("scope.OS-INHERIT:inherited_to")
    f = asg.AssignmentFilter(
        user_id=req.arg("user.id"), group_id=req.arg("group.id"),
        role_id=req.arg("role.id"), project_id=req.arg("scope.project.id"),
        domain_id=req.arg("scope.domain.id"), system=bool(req.arg("scope.system")),
        inherited=None if inherited_to is None else inherited_to == "projects",
        effective=_flag(req, "effective"))
    f.check()
    rows = asg.list_assignments(s, f)
    if only_domain is not None:
        rows = asg.in_domain(s, rows, only_domain)
    names = _Names(s) if _flag(req, "include_names") else None
    items = [_assignment_view(r, req.base_url, names) for r in rows]
    return json_response({"role_assignments": items, "links": {
        "self": f"{req.base_url}/v3/role_assignments", "previous": None, "next": None}})


class _Names:
    """Name lookups for include_names, memoised for one request."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.domains = {d.id: d.name for d in s.scalars(select(m.Domain))}

    def domain(self, domain_id: str) -> dict[str, str]:
        return {"id": domain_id, "name": self.domains.get(domain_id, "")}

    def of(self, model: Any, ident: str) -> dict[str, Any]:
        row = self.s.get(model, ident)
        if row is None:
            return {"id": ident}
        out: dict[str, Any] = {"id": ident, "name": row.name}
        domain_id = getattr(row, "domain_id", None)
        if domain_id:
            out["domain"] = self.domain(domain_id)
        return out


def _assignment_view(r: asg.AssignmentRow, base: str, names: _Names | None
                     ) -> dict[str, Any]:
    role = names.of(m.Role, r.role_id) if names else {"id": r.role_id}
    actor_model = m.User if r.actor == "user" else m.Group
    actor = names.of(actor_model, r.actor_id) if names else {"id": r.actor_id}
    if r.scope == "system":
        scope: dict[str, Any] = {"system": {"all": True}}
    elif r.scope == "project":
        scope = {"project": names.of(m.Project, r.target_id) if names else {"id": r.target_id}}
    else:
        scope = {"domain": ({"id": r.target_id, "name": names.domains.get(r.target_id, "")}
                            if names else {"id": r.target_id})}
    # An effective row links to the grant it came from: the group's grant (with the
    # membership), the inherited grant on the domain or parent project, the grant of
    # the role that implied it (with Keystone's prior_role link).
    if r.inherited or r.inherited_from:
        scope["OS-INHERIT:inherited_to"] = "projects"
    source_scope, source_id = r.inherited_from or (r.scope, r.target_id)
    target = "system" if source_scope == "system" else f"{source_scope}s/{source_id}"
    actor_path = f"groups/{r.via_group}" if r.via_group else f"{r.actor}s/{r.actor_id}"
    path = f"{target}/{actor_path}/roles/{r.via_role or r.role_id}"
    if r.inherited or r.inherited_from:
        path = f"OS-INHERIT/{path}/inherited_to_projects"
    links: dict[str, str] = {"assignment": f"{base}/v3/{path}"}
    if r.via_group:
        links["membership"] = f"{base}/v3/groups/{r.via_group}/users/{r.actor_id}"
    if r.via_role:
        # Keystone's spelling: /prior_role/{the implied role}/implies/{its prior role}.
        links["prior_role"] = f"{base}/v3/prior_role/{r.role_id}/implies/{r.via_role}"
    return {"role": role, r.actor: actor, "scope": scope, "links": links}
