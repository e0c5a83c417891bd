"""Application credentials: a named secret that acts as a user on one project."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db.base import utcnow
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound
from gureum.identity import models as m
from gureum.identity.core import Identity
from gureum.identity.service import changed, flush_unique, get_or_404


def new_secret() -> str:
    return secrets.token_urlsafe(64)


def parse_expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"Invalid input for field 'application_credential.expires_at': "
                           f"{value!r} is not an ISO 8601 time.",
                           field="application_credential.expires_at") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if parsed <= utcnow():
        raise InvalidInput("The application credential would already be expired.",
                           field="application_credential.expires_at")
    return parsed


def create(ident: Identity, s: Session, ctx: RequestContext, user_id: str,
           body: dict[str, Any], secret_hash: str, token_roles: list[tuple[str, str]]
           ) -> tuple[m.ApplicationCredential, list[m.Role]]:
    if ctx.user_id != user_id:
        raise Forbidden("You can only create application credentials for yourself.")
    if not ctx.project_id:
        raise Forbidden("A project-scoped token is required to create an application "
                        "credential.")
    if ctx.application_credential_id:
        cred = s.get(m.ApplicationCredential, ctx.application_credential_id)
        if cred is None or not cred.unrestricted:
            raise Forbidden("Using method 'application_credential' is not allowed for "
                            "managing additional application credentials.")
    get_or_404(s, m.User, user_id, "user")
    name = body["name"]
    if s.scalar(select(m.ApplicationCredential.id).where(
            m.ApplicationCredential.user_id == user_id,
            m.ApplicationCredential.name == name)):
        raise Conflict(f"Conflict occurred attempting to store application_credential - "
                       f"Duplicate entry found with name {name}.")
    available = {rid: name for rid, name in token_roles}
    by_name = {name: rid for rid, name in token_roles}
    wanted = body.get("roles")
    if wanted:
        role_ids = []
        for ref in wanted:
            rid = ref.get("id") or by_name.get(ref.get("name", ""))
            if rid not in available:
                raise Forbidden(f"Cannot delegate role {ref.get('id') or ref.get('name')}: "
                                "you do not have it on this project.")
            role_ids.append(rid)
    else:
        role_ids = list(available)
    cred = m.ApplicationCredential(
        name=name, user_id=user_id, project_id=ctx.project_id, secret_hash=secret_hash,
        description=body.get("description") or "",
        expires_at=parse_expiry(body.get("expires_at")),
        unrestricted=bool(body.get("unrestricted")), role_ids=list(dict.fromkeys(role_ids)),
        access_rules=resolve_access_rules(s, user_id, body.get("access_rules") or []))
    s.add(cred)
    flush_unique(s, "application_credential", f"name {name}")
    changed(ident, s)
    return cred, roles_of(s, cred)


def resolve_access_rules(s: Session, user_id: str, wanted: list[dict[str, Any]]
                         ) -> list[dict[str, str]]:
    """The user's access rules for a new credential: reused when they exist, else made.

    A rule given by id must be one of the user's rules; a rule given by service,
    path and method reuses the user's identical rule, as Keystone does.
    """
    out: list[dict[str, str]] = []
    for ref in wanted:
        rule = None
        if ref.get("id"):
            rule = s.get(m.AccessRule, ref["id"])
            if rule is not None and rule.user_id != user_id:
                rule = None
            if rule is None and not {"service", "path", "method"} <= set(ref):
                raise InvalidInput(f"Could not find Access Rule: {ref['id']}.",
                                   field="application_credential.access_rules")
        if rule is None:
            rule = s.scalar(select(m.AccessRule).where(
                m.AccessRule.user_id == user_id, m.AccessRule.service == ref["service"],
                m.AccessRule.path == ref["path"], m.AccessRule.method == ref["method"]))
        if rule is None:
            rule = m.AccessRule(user_id=user_id, service=ref["service"], path=ref["path"],
                                method=ref["method"])
            if ref.get("id") and s.get(m.AccessRule, ref["id"]) is None:
                rule.id = ref["id"]
            s.add(rule)
            s.flush()
        copy = {"id": rule.id, "service": rule.service, "path": rule.path,
                "method": rule.method}
        if copy not in out:
            out.append(copy)
    return out


def get_access_rule(s: Session, user_id: str, rule_id: str) -> m.AccessRule:
    rule = s.get(m.AccessRule, rule_id)
    if rule is None or rule.user_id != user_id:
        raise NotFound(f"Could not find Access Rule: {rule_id}.", kind="access_rule")
    return rule


def delete_access_rule(ident: Identity, s: Session, user_id: str, rule_id: str) -> None:
    rule = get_access_rule(s, user_id, rule_id)
    creds = s.scalars(select(m.ApplicationCredential).where(
        m.ApplicationCredential.user_id == user_id))
    if any(r.get("id") == rule.id for c in creds for r in (c.access_rules or [])):
        raise Forbidden("May not delete access rule in use")
    s.delete(rule)
    changed(ident, s)


def roles_of(s: Session, cred: m.ApplicationCredential) -> list[m.Role]:
    if not cred.role_ids:
        return []
    rows = {r.id: r for r in s.scalars(select(m.Role).where(m.Role.id.in_(cred.role_ids)))}
    return [rows[rid] for rid in cred.role_ids if rid in rows]


def get(s: Session, user_id: str, cred_id: str) -> m.ApplicationCredential:
    cred = s.get(m.ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise NotFound(f"Could not find Application Credential: {cred_id}.",
                       kind="application_credential")
    return cred


def delete(ident: Identity, s: Session, ctx: RequestContext, user_id: str,
           cred_id: str) -> None:
    cred = get(s, user_id, cred_id)
    if ctx.application_credential_id:
        own = s.get(m.ApplicationCredential, ctx.application_credential_id)
        if own is None or not own.unrestricted:
            raise Forbidden("Using method 'application_credential' is not allowed for "
                            "managing additional application credentials.")
    s.delete(cred)
    changed(ident, s)
