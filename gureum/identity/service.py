"""Domains, projects, users, groups: the identity records and their rules.

Every function takes the identity runtime and an open session; the caller (an
API handler, bootstrap) owns the transaction. Every change bumps the identity
revision so caches everywhere notice it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.db.base import utcnow
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound
from gureum.identity import models as m
from gureum.identity.cache import bump_revision
from gureum.identity.core import Identity
from gureum.identity.lockout import reset_failures
from gureum.identity.passwords import hash_secret

T = TypeVar("T")

DEFAULT_DOMAIN_ID = "default"
MAX_TAGS = 80


def get_or_404(s: Session, model: type[T], ident: str, kind: str) -> T:
    row = s.get(model, ident)
    if row is None:
        raise NotFound(f"Could not find {kind}: {ident}.", kind=kind)
    return row


def flush_unique(s: Session, kind: str, description: str) -> None:
    """Flush; a unique-constraint violation becomes Keystone's 409."""
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        raise Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry "
                       f"found with {description}.") from None


def merged_options(old: dict[str, Any] | None, new: dict[str, Any] | None
                   ) -> dict[str, Any]:
    """Resource options after an update: a null value removes the option (Keystone)."""
    return {k: v for k, v in {**(old or {}), **(new or {})}.items() if v is not None}


def check_immutable_update(row: Any, body: dict[str, Any], kind: str) -> None:
    """An immutable resource may only be made mutable, in a request doing nothing else."""
    if not (row.options or {}).get("immutable"):
        return
    options = body.get("options") or {}
    if len(body) > 1 or "immutable" not in options or options["immutable"] not in (False,
                                                                                  None):
        raise Forbidden(f"Unable to update immutable {kind} resource: `{row.id}. Set "
                        'resource option "immutable" to false first.')


def check_immutable_delete(row: Any, kind: str) -> None:
    if (row.options or {}).get("immutable"):
        raise Forbidden(f"Unable to delete immutable {kind} resource: `{row.id}. Set "
                        'resource option "immutable" to false first.')


def changed(ident: Identity, s: Session) -> None:
    bump_revision(s, ident.cache)


def revoke_user_tokens(ident: Identity, s: Session, user_id: str) -> None:
    """Every token of this user issued until now stops working."""
    now = utcnow()
    s.add(m.RevocationEvent(user_id=user_id, issued_before=now,
                            expires_at=now + dt.timedelta(seconds=ident.conf.token_expiration)))
    prune_revocations(s)
    changed(ident, s)


def revoke_audit_id(ident: Identity, s: Session, audit_id: str, expires_at: dt.datetime
                    ) -> None:
    s.add(m.RevocationEvent(audit_id=audit_id, issued_before=utcnow(), expires_at=expires_at))
    prune_revocations(s)
    changed(ident, s)


def prune_revocations(s: Session) -> int:
    """Drop revocations no valid token can match any more."""
    result = s.execute(delete(m.RevocationEvent).where(m.RevocationEvent.expires_at <= utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- domains -------------------------------------------------------------------

def create_domain(ident: Identity, s: Session, body: dict[str, Any],
                  domain_id: str | None = None) -> m.Domain:
    d = m.Domain(name=body["name"], description=body.get("description") or "",
                 enabled=body.get("enabled", True), tags=body.get("tags") or [],
                 options=merged_options({}, body.get("options")))
    if domain_id:
        d.id = domain_id
    if s.scalar(select(m.Domain.id).where(m.Domain.name == d.name)):
        raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry "
                       f"found with name {d.name}.")
    s.add(d)
    flush_unique(s, "domain", f"name {d.name}")
    changed(ident, s)
    return d


def create_domain_as_project(ident: Identity, s: Session, body: dict[str, Any]
                             ) -> m.Domain:
    """POST /v3/projects with is_domain: a domain, which may have no parent."""
    if body.get("parent_id") or body.get("domain_id"):
        raise InvalidInput("only root projects are allowed to act as domains.",
                           field="project.parent_id" if body.get("parent_id")
                           else "project.domain_id")
    if s.scalar(select(m.Domain.id).where(m.Domain.name == body["name"])):
        raise Conflict("Conflict occurred attempting to store project - it is not "
                       "permitted to have two projects acting as domains with the same "
                       f"name: {body['name']}.")
    keys = ("name", "description", "enabled", "tags", "options")
    fields: dict[str, Any] = {k: body[k] for k in keys if k in body}
    return create_domain(ident, s, fields)


def update_domain(ident: Identity, s: Session, domain_id: str, body: dict[str, Any]
                  ) -> m.Domain:
    d = get_or_404(s, m.Domain, domain_id, "domain")
    check_immutable_update(d, body, "domain")
    if "name" in body and body["name"] != d.name:
        if s.scalar(select(m.Domain.id).where(m.Domain.name == body["name"])):
            raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry "
                           f"found with name {body['name']}.")
        d.name = body["name"]
    if "enabled" in body:
        if d.id == DEFAULT_DOMAIN_ID and not body["enabled"]:
            raise Forbidden("The default domain cannot be disabled.")
        d.enabled = body["enabled"]
    if "description" in body:
        d.description = body["description"] or ""
    if "tags" in body:
        d.tags = body["tags"] or []
    if "options" in body:
        d.options = merged_options(d.options, body["options"])
    flush_unique(s, "domain", f"name {d.name}")
    changed(ident, s)
    return d


def delete_domain(ident: Identity, s: Session, domain_id: str) -> None:
    d = get_or_404(s, m.Domain, domain_id, "domain")
    check_immutable_delete(d, "domain")
    if d.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    for p in s.scalars(select(m.Project).where(m.Project.domain_id == d.id)
                       .order_by(m.Project.parent_id.desc())).all():
        _delete_project_row(s, p)
    for u in s.scalars(select(m.User).where(m.User.domain_id == d.id)).all():
        _delete_user_row(ident, s, u)
    for g in s.scalars(select(m.Group).where(m.Group.domain_id == d.id)).all():
        _delete_group_row(s, g)
    s.execute(delete(m.Assignment).where(m.Assignment.target_id == d.id))
    s.execute(delete(m.Limit).where(m.Limit.domain_id == d.id))
    s.execute(delete(m.Role).where(m.Role.domain_id == d.id))
    s.delete(d)
    changed(ident, s)


# -- projects ------------------------------------------------------------------

def create_project(ident: Identity, s: Session, body: dict[str, Any],
                   default_domain: str = DEFAULT_DOMAIN_ID) -> m.Project:
    parent_id = body.get("parent_id")
    domain_id = body.get("domain_id")
    if parent_id:
        parent = s.get(m.Project, parent_id)
        if parent is None:
            if s.get(m.Domain, parent_id) is not None:
                # A domain given as parent means a top-level project in it.
                if domain_id and domain_id != parent_id:
                    raise InvalidInput(
                        f"Cannot create project, the parent ({parent_id}) is acting as a "
                        f"domain, but this project's domain id ({domain_id}) does not "
                        "match the parent's id.", field="project.domain_id")
                domain_id, parent_id = parent_id, None
            else:
                raise NotFound(f"Could not find project: {parent_id}.", kind="project")
        else:
            if domain_id and domain_id != parent.domain_id:
                raise InvalidInput("Cannot create project, the parent is in a different "
                                   "domain.", field="project.parent_id")
            domain_id = parent.domain_id
    domain_id = domain_id or default_domain
    get_or_404(s, m.Domain, domain_id, "domain")
    name = body["name"]
    if s.scalar(select(m.Project.id).where(m.Project.domain_id == domain_id,
                                           m.Project.name == name)):
        raise Conflict(f"Conflict occurred attempting to store project - Duplicate entry "
                       f"found with name {name} at domain ID {domain_id}.")
    p = m.Project(name=name, domain_id=domain_id, parent_id=parent_id,
                  description=body.get("description") or "",
                  enabled=body.get("enabled", True), tags=body.get("tags") or [],
                  options=merged_options({}, body.get("options")))
    s.add(p)
    flush_unique(s, "project", f"name {name} at domain ID {domain_id}")
    changed(ident, s)
    return p


def update_project(ident: Identity, s: Session, project_id: str, body: dict[str, Any]
                   ) -> m.Project:
    p = get_or_404(s, m.Project, project_id, "project")
    check_immutable_update(p, body, "project")
    if "name" in body and body["name"] != p.name:
        if s.scalar(select(m.Project.id).where(m.Project.domain_id == p.domain_id,
                                               m.Project.name == body["name"])):
            raise Conflict(f"Conflict occurred attempting to store project - Duplicate "
                           f"entry found with name {body['name']} at domain ID "
                           f"{p.domain_id}.")
        p.name = body["name"]
    if "enabled" in body:
        p.enabled = body["enabled"]
    if "description" in body:
        p.description = body["description"] or ""
    if "tags" in body:
        p.tags = body["tags"] or []
    if "options" in body:
        p.options = merged_options(p.options, body["options"])
    flush_unique(s, "project", f"name {p.name} at domain ID {p.domain_id}")
    changed(ident, s)
    return p


def delete_project(ident: Identity, s: Session, project_id: str) -> None:
    p = get_or_404(s, m.Project, project_id, "project")
    check_immutable_delete(p, "project")
    if s.scalar(select(m.Project.id).where(m.Project.parent_id == p.id).limit(1)):
        raise Forbidden(f"Cannot delete the project {p.id} since it is not a leaf in the "
                        "hierarchy. Use the cascade option if you want to delete a subtree.")
    _delete_project_row(s, p)
    changed(ident, s)


def _delete_project_row(s: Session, p: m.Project) -> None:
    s.execute(delete(m.Assignment).where(m.Assignment.target_id == p.id))
    s.execute(delete(m.ApplicationCredential)
              .where(m.ApplicationCredential.project_id == p.id))
    s.execute(delete(m.Limit).where(m.Limit.project_id == p.id))
    s.execute(delete(m.Credential).where(m.Credential.project_id == p.id))
    s.execute(delete(m.ProjectEndpoint).where(m.ProjectEndpoint.project_id == p.id))
    s.execute(delete(m.ProjectEndpointGroup).where(m.ProjectEndpointGroup.project_id == p.id))
    s.delete(p)
    s.flush()


def set_project_tags(ident: Identity, s: Session, project_id: str, tags: list[str]
                     ) -> m.Project:
    """The project's tags become ``tags`` (duplicates dropped, order kept), at most 80."""
    p = get_or_404(s, m.Project, project_id, "project")
    check_immutable_update(p, {"tags": tags}, "project")
    tags = list(dict.fromkeys(tags))
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"Invalid input for field 'tags': a project has at most "
                           f"{MAX_TAGS} tags.", field="tags")
    p.tags = tags
    changed(ident, s)
    return p


# -- users ---------------------------------------------------------------------

def create_user(ident: Identity, s: Session, body: dict[str, Any], password_hash: str | None,
                default_domain: str = DEFAULT_DOMAIN_ID) -> m.User:
    domain_id = body.get("domain_id") or default_domain
    get_or_404(s, m.Domain, domain_id, "domain")
    name = body["name"]
    if s.scalar(select(m.User.id).where(m.User.domain_id == domain_id, m.User.name == name)):
        raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found "
                       f"with name {name} at domain ID {domain_id}.")
    project_id = body.get("default_project_id")
    if project_id:
        get_or_404(s, m.Project, project_id, "project")
    extra = {k: v for k, v in body.items() if k not in (
        "name", "domain_id", "enabled", "password", "default_project_id", "description",
        "options", "id")}
    u = m.User(name=name, domain_id=domain_id, enabled=body.get("enabled", True),
               password_hash=password_hash,
               password_created_at=utcnow() if password_hash else None,
               default_project_id=project_id, description=body.get("description") or "",
               extra=extra, options=merged_options({}, body.get("options")))
    s.add(u)
    flush_unique(s, "user", f"name {name} at domain ID {domain_id}")
    changed(ident, s)
    return u


def update_user(ident: Identity, s: Session, user_id: str, body: dict[str, Any],
                password_hash: str | None) -> m.User:
    u = get_or_404(s, m.User, user_id, "user")
    if "name" in body and body["name"] != u.name:
        if s.scalar(select(m.User.id).where(m.User.domain_id == u.domain_id,
                                            m.User.name == body["name"])):
            raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry "
                           f"found with name {body['name']} at domain ID {u.domain_id}.")
        u.name = body["name"]
    if "domain_id" in body and body["domain_id"] != u.domain_id:
        raise InvalidInput("Cannot change the domain of a user.", field="user.domain_id")
    revoke = False
    if "enabled" in body and body["enabled"] != u.enabled:
        u.enabled = body["enabled"]
        revoke = revoke or not u.enabled
    if "password" in body:
        u.password_hash = password_hash
        u.password_created_at = utcnow()
        reset_failures(s, u.id)
        revoke = True
    if "default_project_id" in body:
        if body["default_project_id"]:
            get_or_404(s, m.Project, body["default_project_id"], "project")
        u.default_project_id = body["default_project_id"]
    if "description" in body:
        u.description = body["description"] or ""
    if "options" in body:
        u.options = merged_options(u.options, body["options"])
    extra = {k: v for k, v in body.items() if k not in (
        "name", "domain_id", "enabled", "password", "default_project_id", "description",
        "options", "id")}
    if extra:
        u.extra = {**(u.extra or {}), **extra}
    flush_unique(s, "user", f"name {u.name} at domain ID {u.domain_id}")
    if revoke:
        revoke_user_tokens(ident, s, u.id)
    changed(ident, s)
    return u


def change_password(ident: Identity, s: Session, user_id: str, new_hash: str) -> None:
    """The user's own password change; the caller has checked the original password.

    A user with the option ``lock_password`` may not change it (Keystone's
    PasswordSelfServiceDisabled, a 400).
    """
    u = get_or_404(s, m.User, user_id, "user")
    if (u.options or {}).get("lock_password"):
        raise InvalidInput("You cannot change your password at this time due to password "
                        "policy disallowing password changes. Please contact your "
                        "administrator to reset your password.")
    u.password_hash = new_hash
    u.password_created_at = utcnow()
    reset_failures(s, u.id)
    revoke_user_tokens(ident, s, u.id)


def delete_user(ident: Identity, s: Session, user_id: str) -> None:
    u = get_or_404(s, m.User, user_id, "user")
    _delete_user_row(ident, s, u)
    changed(ident, s)


def _delete_user_row(ident: Identity, s: Session, u: m.User) -> None:
    s.execute(delete(m.Assignment).where(m.Assignment.actor_id == u.id))
    s.execute(delete(m.GroupMembership).where(m.GroupMembership.user_id == u.id))
    s.execute(delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == u.id))
    s.execute(delete(m.Credential).where(m.Credential.user_id == u.id))
    revoke_user_tokens(ident, s, u.id)
    s.delete(u)
    s.flush()


def hash_password(ident: Identity, password: str | None) -> str | None:
    """Hash before any transaction is opened: bcrypt takes a quarter second."""
    if password is None:
        return None
    return hash_secret(password, ident.conf.password_hash_rounds)


# -- groups --------------------------------------------------------------------

def create_group(ident: Identity, s: Session, body: dict[str, Any],
                 default_domain: str = DEFAULT_DOMAIN_ID) -> m.Group:
    domain_id = body.get("domain_id") or default_domain
    get_or_404(s, m.Domain, domain_id, "domain")
    name = body["name"]
    if s.scalar(select(m.Group.id).where(m.Group.domain_id == domain_id, m.Group.name == name)):
        raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry found "
                       f"with name {name} at domain ID {domain_id}.")
    g = m.Group(name=name, domain_id=domain_id, description=body.get("description") or "")
    s.add(g)
    flush_unique(s, "group", f"name {name} at domain ID {domain_id}")
    changed(ident, s)
    return g


def update_group(ident: Identity, s: Session, group_id: str, body: dict[str, Any]) -> m.Group:
    g = get_or_404(s, m.Group, group_id, "group")
    if "domain_id" in body and body["domain_id"] != g.domain_id:
        raise InvalidInput("Cannot change the domain of a group.", field="group.domain_id")
    if "name" in body:
        g.name = body["name"]
    if "description" in body:
        g.description = body["description"] or ""
    flush_unique(s, "group", f"name {g.name} at domain ID {g.domain_id}")
    changed(ident, s)
    return g


def delete_group(ident: Identity, s: Session, group_id: str) -> None:
    g = get_or_404(s, m.Group, group_id, "group")
    _delete_group_row(s, g)
    changed(ident, s)


def _delete_group_row(s: Session, g: m.Group) -> None:
    s.execute(delete(m.Assignment).where(m.Assignment.actor_id == g.id))
    s.execute(delete(m.GroupMembership).where(m.GroupMembership.group_id == g.id))
    s.delete(g)
    s.flush()


def add_group_member(ident: Identity, s: Session, group_id: str, user_id: str) -> None:
    get_or_404(s, m.Group, group_id, "group")
    get_or_404(s, m.User, user_id, "user")
    if s.get(m.GroupMembership, (user_id, group_id)) is None:
        s.add(m.GroupMembership(user_id=user_id, group_id=group_id))
        changed(ident, s)


def remove_group_member(ident: Identity, s: Session, group_id: str, user_id: str) -> None:
    get_or_404(s, m.Group, group_id, "group")
    get_or_404(s, m.User, user_id, "user")
    row = s.get(m.GroupMembership, (user_id, group_id))
    if row is None:
        raise NotFound(f"Could not find user, {user_id}, in group, {group_id}.")
    s.delete(row)
    changed(ident, s)


def check_group_member(s: Session, group_id: str, user_id: str) -> None:
    get_or_404(s, m.Group, group_id, "group")
    get_or_404(s, m.User, user_id, "user")
    if s.get(m.GroupMembership, (user_id, group_id)) is None:
        raise NotFound(f"Could not find user, {user_id}, in group, {group_id}.")
