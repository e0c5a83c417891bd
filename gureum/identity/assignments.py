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


def check_domain_role(s: Session, role_id: str, target: str, target_id: str) -> None:
    """A domain-specific role is granted only on projects of its own domain."""
    role = s.get(m.Role, role_id)
    if role is None or not role.domain_id or target != "project":
        return
    project = s.get(m.Project, target_id)
    if project is not None and project.domain_id != role.domain_id:
        raise Forbidden(f"Project {target_id} must be in the same domain as the role "
                        f"{role_id} being assigned.")


@dataclass(frozen=True)
class GrantSubjects:
    """What the policy of a grant looks at: the domains of its actor and target."""

    actor_domain: str | None  # None: no such user (group)
    target_domain: str | None  # None: a grant on the system
    role: m.Role | None


def grant_subjects(s: Session, actor: str, actor_id: str, target: str, target_id: str,
                   role_id: str | None, actor_may_be_missing: bool = False
                   ) -> GrantSubjects:
    """The grant's role, actor and target, looked up as Keystone does before its policy
    check: a missing one is a 404, except a missing user or group when revoking
    (``actor_may_be_missing``: only an admin passes then, to the grant's 404)."""
    role = get_or_404(s, m.Role, role_id, "role") if role_id else None
    found = s.get(m.User, actor_id) if actor == "user" else s.get(m.Group, actor_id)
    if found is None and not actor_may_be_missing:
        raise NotFound(f"Could not find {actor}: {actor_id}.", kind=actor)
    target_domain = None
    if target == "project":
        target_domain = get_or_404(s, m.Project, target_id, "project").domain_id
    elif target == "domain":
        target_domain = get_or_404(s, m.Domain, target_id, "domain").id
    return GrantSubjects(found.domain_id if found else None, target_domain, role)


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
    # Effective rows only: where the row came from (Keystone's "indirect").
    via_group: str | None = None  # the group the user is a member of
    via_role: str | None = None  # the prior role that implied this one
    inherited_from: tuple[str, str] | None = None  # ("domain"|"project", id) of the grant


@dataclass(frozen=True)
class AssignmentFilter:
    """The query of GET /v3/role_assignments."""

    user_id: str | None = None
    group_id: str | None = None
    role_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited: bool | None = None  # scope.OS-INHERIT:inherited_to given: == "projects"
    effective: bool = False

    def check(self) -> None:
        """Keystone's 400s for filters that contradict each other."""
        for a, b, message in (
                ("domain_id", "project_id", "Specify a domain or project, not both"),
                ("system", "domain_id", "Specify system or domain, not both"),
                ("system", "project_id", "Specify system or project, not both"),
                ("user_id", "group_id", "Specify a user or group, not both")):
            if getattr(self, a) and getattr(self, b):
                raise InvalidInput(message)
        if self.effective and self.group_id:
            raise InvalidInput("Combining effective and group filter will always result "
                               "in an empty list.", field="group.id")
        if self.effective and self.inherited and self.domain_id:
            raise InvalidInput("Combining effective, domain and inherited filters will "
                               "always result in an empty list.")


def _row_of(a: m.Assignment) -> AssignmentRow:
    actor = "user" if a.type.startswith("User") else "group"
    scope = "project" if a.type.endswith("Project") else (
        "domain" if a.type.endswith("Domain") else "system")
    return AssignmentRow(a.role_id, actor, a.actor_id, scope, a.target_id, a.inherited)


def list_assignments(s: Session, f: AssignmentFilter) -> list[AssignmentRow]:
    """GET /v3/role_assignments: the grants themselves, or (``effective``) what they
    give each user, as Keystone computes it."""
    A = m.Assignment
    stmt = select(A)
    if f.role_id and not f.effective:
        stmt = stmt.where(A.role_id == f.role_id)
    rows = [_row_of(a) for a in s.scalars(stmt)]
    if f.effective:
        return _effective(s, rows, f)
    return [r for r in rows if _matches(r, f)
            and (f.inherited is None or r.inherited == f.inherited)]


def _matches(r: AssignmentRow, f: AssignmentFilter) -> bool:
    if f.user_id and not (r.actor == "user" and r.actor_id == f.user_id):
        return False
    if f.group_id and not (r.actor == "group" and r.actor_id == f.group_id):
        return False
    if f.project_id and not (r.scope == "project" and r.target_id == f.project_id):
        return False
    if f.domain_id and not (r.scope == "domain" and r.target_id == f.domain_id):
        return False
    return not (f.system and r.scope != "system")


def _effective(s: Session, rows: list[AssignmentRow], f: AssignmentFilter
               ) -> list[AssignmentRow]:
    """Keystone's effective mode: a group's grant becomes one row per member, an
    inherited grant one row per project below its target, and each role brings the
    roles it implies; every row says where it came from. Grants on the system are
    not part of it (Keystone computes effective rows from project and domain grants
    only), and domain-specific roles leave only what they imply."""
    if f.system:
        return []
    # A domain inherits nothing: with a domain filter only its direct grants count.
    inherited = False if f.domain_id else f.inherited
    members: dict[str, list[str]] = {}
    for gm in s.scalars(select(m.GroupMembership)):
        members.setdefault(gm.group_id, []).append(gm.user_id)
    parent: dict[str, str | None] = {}
    in_domain: dict[str, list[str]] = {}
    for pid, domain_id, parent_id in s.execute(
            select(m.Project.id, m.Project.domain_id, m.Project.parent_id)
            .order_by(m.Project.name)):
        parent[pid] = parent_id
        in_domain.setdefault(domain_id, []).append(pid)

    def below(project_id: str) -> list[str]:
        """The projects under project_id (not itself)."""
        out = []
        for pid in parent:
            seen, up = {pid}, parent.get(pid)
            while up is not None and up not in seen:
                if up == project_id:
                    out.append(pid)
                    break
                seen.add(up)
                up = parent.get(up)
        return out

    granted: list[AssignmentRow] = []
    for r in rows:
        if r.scope == "system" or (inherited is not None and r.inherited != inherited):
            continue
        users = ([(r.actor_id, None)] if r.actor == "user"
                 else [(u, r.actor_id) for u in members.get(r.actor_id, [])])
        if r.inherited:
            projects = in_domain.get(r.target_id, []) if r.scope == "domain" \
                else below(r.target_id)
            targets: list[tuple[str, str, tuple[str, str] | None]] = [
                ("project", p, (r.scope, r.target_id)) for p in projects]
        else:
            targets = [(r.scope, r.target_id, None)]
        for user_id, group_id in users:
            for scope, target, source in targets:
                row = AssignmentRow(r.role_id, "user", user_id, scope, target,
                                    via_group=group_id, inherited_from=source)
                if _matches(row, AssignmentFilter(user_id=f.user_id,
                                                  project_id=f.project_id,
                                                  domain_id=f.domain_id)):
                    granted.append(row)
    implied: dict[str, list[str]] = {}
    for ir in s.scalars(select(m.ImpliedRole)):
        implied.setdefault(ir.prior_role_id, []).append(ir.implied_role_id)
    global_roles = set(s.scalars(select(m.Role.id).where(m.Role.domain_id == "")))
    result: list[AssignmentRow] = []
    seen_rows: set[AssignmentRow] = set()
    for r in granted:
        # Each implied role is a row of its own whose source is the role implying it.
        # Each implication is followed once: a role reached through two priors gives
        # two rows (two sources), as with Keystone.
        chain, frontier, followed = [r], [r], set()
        while frontier:
            prior = frontier.pop()
            for child in implied.get(prior.role_id, []):
                if (prior.role_id, child) not in followed:
                    followed.add((prior.role_id, child))
                    row = AssignmentRow(child, prior.actor, prior.actor_id, prior.scope,
                                        prior.target_id, False, prior.via_group,
                                        prior.role_id, prior.inherited_from)
                    chain.append(row)
                    frontier.append(row)
        for row in chain:
            if row.role_id not in global_roles or (f.role_id and row.role_id != f.role_id):
                continue
            if row not in seen_rows:
                seen_rows.add(row)
                result.append(row)
    return result


def in_domain(s: Session, rows: list[AssignmentRow], domain_id: str) -> list[AssignmentRow]:
    """The rows on the domain or on one of its projects (a domain-scoped token's view)."""
    projects = set(s.scalars(select(m.Project.id).where(m.Project.domain_id == domain_id)))
    return [r for r in rows if (r.scope == "domain" and r.target_id == domain_id) or
            (r.scope == "project" and r.target_id in projects)]


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
