"""Roles, implied roles and role assignments (grants)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound
from gureum.identity import models as m
from gureum.identity.core import Identity, project_ancestors, user_group_ids
from gureum.identity.service import (
    changed,
    check_immutable_delete,
    check_immutable_update,
    flush_unique,
    get_or_404,
    merged_options,
)

# -- roles ---------------------------------------------------------------------


def create_role(ident: Identity, s: Session, body: dict[str, Any]) -> m.Role:
    domain_id = body.get("domain_id") or ""
    if domain_id:
        get_or_404(s, m.Domain, domain_id, "domain")
    name = body["name"]
    if s.scalar(select(m.Role.id).where(m.Role.name == name, m.Role.domain_id == domain_id)):
        raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found "
                       f"with name {name}.")
    r = m.Role(name=name, domain_id=domain_id, description=body.get("description") or "",
               options=merged_options({}, body.get("options")))
    s.add(r)
    flush_unique(s, "role", f"name {name}")
    changed(ident, s)
    return r


def update_role(ident: Identity, s: Session, role_id: str, body: dict[str, Any]) -> m.Role:
    r = get_or_404(s, m.Role, role_id, "role")
    check_immutable_update(r, body, "role")
    if "domain_id" in body and (body["domain_id"] or "") != r.domain_id:
        raise InvalidInput("Cannot change the domain of a role.", field="role.domain_id")
    if "name" in body and body["name"] != r.name:
        if s.scalar(select(m.Role.id).where(m.Role.name == body["name"],
                                            m.Role.domain_id == r.domain_id)):
            raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry "
                           f"found with name {body['name']}.")
        r.name = body["name"]
    if "description" in body:
        r.description = body["description"] or ""
    if "options" in body:
        r.options = merged_options(r.options, body["options"])
    flush_unique(s, "role", f"name {r.name}")
    changed(ident, s)
    return r


def delete_role(ident: Identity, s: Session, role_id: str) -> None:
    r = get_or_404(s, m.Role, role_id, "role")
    check_immutable_delete(r, "role")
    s.execute(delete(m.Assignment).where(m.Assignment.role_id == r.id))
    s.execute(delete(m.ImpliedRole).where(
        (m.ImpliedRole.prior_role_id == r.id) | (m.ImpliedRole.implied_role_id == r.id)))
    s.delete(r)
    changed(ident, s)


# Keystone's [assignment] prohibited_implied_role: nothing may imply admin.
PROHIBITED_IMPLIED = ("admin",)


def add_implied_role(ident: Identity, s: Session, prior_id: str, implied_id: str) -> None:
    prior = get_or_404(s, m.Role, prior_id, "role")
    implied = get_or_404(s, m.Role, implied_id, "role")
    if implied.name in PROHIBITED_IMPLIED and not implied.domain_id:
        raise Forbidden(f"{implied_id} cannot be an implied roles.")
    if not prior.domain_id and implied.domain_id:
        raise Forbidden(f"Global role cannot imply a domain-specific role: {implied_id} "
                        "cannot be an implied roles.")
    if prior_id == implied_id:
        raise InvalidInput("A role cannot imply itself.")
    # Refuse cycles: the implied role must not (transitively) imply the prior one.
    from gureum.identity.core import expand_implied

    if prior_id in expand_implied(s, {implied_id}):
        raise InvalidInput(f"Role {implied_id} already implies {prior_id}; that would make "
                           "a cycle.")
    if s.get(m.ImpliedRole, (prior_id, implied_id)) is None:
        s.add(m.ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
        changed(ident, s)


def remove_implied_role(ident: Identity, s: Session, prior_id: str, implied_id: str) -> None:
    row = s.get(m.ImpliedRole, (prior_id, implied_id))
    if row is None:
        raise NotFound(f"{prior_id} does not imply {implied_id}.")
    s.delete(row)
    changed(ident, s)


# -- grants --------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    type: str
    actor_id: str
    target_id: str
    role_id: str
    inherited: bool = False


def grant_type(actor: str, target: str) -> str:
    """('user'|'group', 'project'|'domain'|'system') → Keystone's assignment type."""
    return {("user", "project"): m.USER_PROJECT, ("group", "project"): m.GROUP_PROJECT,
            ("user", "domain"): m.USER_DOMAIN, ("group", "domain"): m.GROUP_DOMAIN,
            ("user", "system"): m.USER_SYSTEM, ("group", "system"): m.GROUP_SYSTEM}[
        (actor, target)]


def check_grant_parts(s: Session, actor: str, actor_id: str, target: str, target_id: str,
                      role_id: str | None) -> None:
    get_or_404(s, m.User if actor == "user" else m.Group, actor_id, actor)
    if target == "project":
        get_or_404(s, m.Project, target_id, "project")
    elif target == "domain":
        get_or_404(s, m.Domain, target_id, "domain")
    if role_id is not None:
        get_or_404(s, m.Role, role_id, "role")


def check_domain_role(s: Session, role_id: str, target: str, target_id: str) -> None:
    """A domain-specific role is granted only on projects of its own domain."""
    role = s.get(m.Role, role_id)
    if role is None or not role.domain_id or target != "project":
        return
    project = s.get(m.Project, target_id)
    if project is not None and project.domain_id != role.domain_id:
        raise Forbidden(f"Project {target_id} must be in the same domain as the role "
                        f"{role_id} being assigned.")


def add_grant(ident: Identity, s: Session, g: Grant) -> None:
    if s.get(m.Assignment, (g.type, g.actor_id, g.target_id, g.role_id, g.inherited)) is None:
        s.add(m.Assignment(type=g.type, actor_id=g.actor_id, target_id=g.target_id,
                           role_id=g.role_id, inherited=g.inherited))
        changed(ident, s)


def remove_grant(ident: Identity, s: Session, g: Grant) -> None:
    row = s.get(m.Assignment, (g.type, g.actor_id, g.target_id, g.role_id, g.inherited))
    if row is None:
        raise NotFound(f"Could not find role assignment with role: {g.role_id}, "
                       f"{'user' if g.type.startswith('User') else 'group'}: {g.actor_id}, "
                       f"target: {g.target_id}.")
    s.delete(row)
    changed(ident, s)


def has_grant(s: Session, g: Grant) -> bool:
    return s.get(m.Assignment, (g.type, g.actor_id, g.target_id, g.role_id,
                                g.inherited)) is not None


def grant_roles(s: Session, type_: str, actor_id: str, target_id: str, inherited: bool
                ) -> list[m.Role]:
    role_ids = select(m.Assignment.role_id).where(
        m.Assignment.type == type_, m.Assignment.actor_id == actor_id,
        m.Assignment.target_id == target_id, m.Assignment.inherited.is_(inherited))
    return list(s.scalars(select(m.Role).where(m.Role.id.in_(role_ids)).order_by(m.Role.name)))


# -- /v3/role_assignments ----------------------------------------------------------

@dataclass(frozen=True)
class AssignmentRow:
    """One row of /v3/role_assignments."""

    role_id: str
    actor: str  # "user" | "group"
    actor_id: str
    scope: str  # "project" | "domain" | "system"
    target_id: str
    inherited: bool = False
    via_group: str | None = None  # effective: the group the user got it through
    via_role: str | None = None  # effective: the prior role that implied it


def _row_of(a: m.Assignment) -> AssignmentRow:
    actor = "user" if a.type.startswith("User") else "group"
    scope = "project" if a.type.endswith("Project") else (
        "domain" if a.type.endswith("Domain") else "system")
    return AssignmentRow(a.role_id, actor, a.actor_id, scope, a.target_id, a.inherited)


def list_assignments(s: Session, q: dict[str, Any]) -> list[AssignmentRow]:
    """The filters of GET /v3/role_assignments, including ``effective``."""
    A = m.Assignment
    stmt = select(A)
    if q.get("role_id") and not q.get("effective"):
        stmt = stmt.where(A.role_id == q["role_id"])
    rows = [_row_of(a) for a in s.scalars(stmt)]
    if q.get("inherited_to_projects"):
        rows = [r for r in rows if r.inherited]
    if not q.get("effective"):
        return [r for r in rows if _matches(r, q)]
    return _effective(s, rows, q)


def _matches(r: AssignmentRow, q: dict[str, Any]) -> bool:
    if q.get("user_id") and not (r.actor == "user" and r.actor_id == q["user_id"]):
        return False
    if q.get("group_id") and not (r.actor == "group" and r.actor_id == q["group_id"]):
        return False
    if q.get("project_id") and not (r.scope == "project" and r.target_id == q["project_id"]):
        return False
    if q.get("domain_id") and not (r.scope == "domain" and r.target_id == q["domain_id"]):
        return False
    return not (q.get("system") and r.scope != "system")


def _effective(s: Session, rows: list[AssignmentRow], q: dict[str, Any]
               ) -> list[AssignmentRow]:
    """Expand groups to users, inheritance to projects, roles to implied roles."""
    out: list[AssignmentRow] = []
    members: dict[str, list[str]] = {}
    for gm in s.scalars(select(m.GroupMembership)):
        members.setdefault(gm.group_id, []).append(gm.user_id)
    projects = list(s.scalars(select(m.Project)))
    for r in rows:
        users = ([(r.actor_id, None)] if r.actor == "user"
                 else [(u, r.actor_id) for u in members.get(r.actor_id, [])])
        if r.inherited and r.scope == "domain":
            targets = [("project", p.id) for p in projects if p.domain_id == r.target_id]
        elif r.inherited and r.scope == "project":
            targets = [("project", p.id) for p in projects
                       if r.target_id in project_ancestors(s, p.id)]
        else:
            targets = [(r.scope, r.target_id)]
        for user_id, group_id in users:
            for scope, target in targets:
                out.append(AssignmentRow(r.role_id, "user", user_id, scope, target,
                                         False, via_group=group_id))
    # Implied roles appear as their own rows, pointing at the prior role.
    implied: dict[str, list[str]] = {}
    for ir in s.scalars(select(m.ImpliedRole)):
        implied.setdefault(ir.prior_role_id, []).append(ir.implied_role_id)
    expanded: list[AssignmentRow] = []
    for r in out:
        expanded.append(r)
        frontier, seen = [r.role_id], {r.role_id}
        while frontier:
            prior = frontier.pop()
            for child in implied.get(prior, []):
                if child not in seen:
                    seen.add(child)
                    frontier.append(child)
                    expanded.append(AssignmentRow(child, r.actor, r.actor_id, r.scope,
                                                  r.target_id, False, r.via_group, prior))
    # Domain-specific roles have done their job (implying others); they are not
    # effective themselves, as in Keystone.
    global_roles = set(s.scalars(select(m.Role.id).where(m.Role.domain_id == "")))
    seen_keys: set[tuple[Any, ...]] = set()
    result = []
    for r in expanded:
        if r.role_id not in global_roles:
            continue
        if not _matches(r, {**q, "group_id": None}):
            continue
        if q.get("role_id") and r.role_id != q["role_id"]:
            continue
        key = (r.role_id, r.actor_id, r.scope, r.target_id)
        if key not in seen_keys:
            seen_keys.add(key)
            result.append(r)
    return result


def user_projects(s: Session, user_id: str) -> list[m.Project]:
    """Enabled projects on which the user has any effective role."""
    from gureum.identity.core import effective_roles

    groups = user_group_ids(s, user_id)
    actors = [user_id, *groups]
    direct = set(s.scalars(select(m.Assignment.target_id).where(
        m.Assignment.actor_id.in_(actors),
        m.Assignment.type.in_([m.USER_PROJECT, m.GROUP_PROJECT, m.USER_DOMAIN,
                               m.GROUP_DOMAIN]))))
    if not direct:
        return []
    candidates = s.scalars(select(m.Project).order_by(m.Project.name)).all()
    return [p for p in candidates
            if (p.id in direct or p.domain_id in direct or
                any(a in direct for a in project_ancestors(s, p.id)))
            and effective_roles(s, user_id, "project", p.id)]


def user_domains(s: Session, user_id: str) -> list[m.Domain]:
    from gureum.identity.core import effective_roles

    domains = s.scalars(select(m.Domain).order_by(m.Domain.name)).all()
    return [d for d in domains if effective_roles(s, user_id, "domain", d.id)]
