"""The identity runtime: keys, token codec, cache, and the lookups tokens need.

``Identity`` is built once per process and shared by the API handlers. The
``load_*`` functions are the cache's loaders: each reads one small fact from
the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.config import Settings
from gureum.db import Database
from gureum.identity import models as m
from gureum.identity.cache import (
    AppCredInfo,
    DomainInfo,
    IdentityCache,
    ProjectInfo,
    Revocations,
    UserInfo,
)
from gureum.identity.keys import KeyRepository
from gureum.identity.passwords import dummy_hash
from gureum.identity.throttle import AddressThrottle
from gureum.identity.tokens import TokenCodec

RoleRef = tuple[str, str]  # (id, name)


class Identity:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.conf = settings.identity
        self.db = db
        self.keys = KeyRepository(settings.key_repository, self.conf.max_active_keys)
        # Keystone keeps credential keys apart from token keys, three at most.
        self.credential_keys = KeyRepository(settings.credential_key_repository, 3,
                                             command="gureum manage credential")
        self.codec = TokenCodec(self.keys)
        self.cache = IdentityCache(self.conf.cache_check_interval)
        # The dummy hash unknown users are checked against, made once up front so
        # the first such login costs no more than later ones.
        dummy_hash(self.conf.password_hash_rounds)
        self.throttle = AddressThrottle(self.conf.address_failure_threshold,
                                        self.conf.address_failure_window,
                                        self.conf.address_max_delay)

    # -- cached lookups (session None: cache only, CacheMiss otherwise) -------
    def user(self, user_id: str, s: Session | None) -> UserInfo | None:
        return self.cache.get("user", user_id, load_user, s)

    def domain(self, domain_id: str, s: Session | None) -> DomainInfo | None:
        return self.cache.get("domain", domain_id, load_domain, s)

    def project(self, project_id: str, s: Session | None) -> ProjectInfo | None:
        return self.cache.get("project", project_id, load_project, s)

    def app_cred(self, cred_id: str, s: Session | None) -> AppCredInfo | None:
        return self.cache.get("appcred", cred_id, load_app_cred, s)

    def revocations(self, s: Session | None) -> Revocations:
        return self.cache.get("revocations", None, load_revocations, s)

    def roles_on(self, user_id: str, kind: str, target: str, s: Session | None
                 ) -> tuple[RoleRef, ...]:
        """Effective roles (implied included) of a user on a project, domain or the system."""
        return self.cache.get("roles", (user_id, kind, target),
                              lambda sess, key: effective_roles(sess, *key), s)

    def catalog(self, s: Session | None) -> list[dict[str, Any]]:
        return self.cache.get("catalog", None, load_catalog, s)


# -- loaders -------------------------------------------------------------------

def load_user(s: Session, user_id: str) -> UserInfo | None:
    row = s.get(m.User, user_id)
    if row is None:
        return None
    return UserInfo(row.id, row.name, row.domain_id, row.enabled)


def load_domain(s: Session, domain_id: str) -> DomainInfo | None:
    row = s.get(m.Domain, domain_id)
    return None if row is None else DomainInfo(row.id, row.name, row.enabled)


def load_project(s: Session, project_id: str) -> ProjectInfo | None:
    row = s.get(m.Project, project_id)
    if row is None:
        return None
    return ProjectInfo(row.id, row.name, row.domain_id, row.enabled, row.parent_id)


def load_app_cred(s: Session, cred_id: str) -> AppCredInfo | None:
    row = s.get(m.ApplicationCredential, cred_id)
    if row is None:
        return None
    expires = None
    if row.expires_at is not None:
        expires = row.expires_at.replace(tzinfo=dt.UTC).timestamp()
    return AppCredInfo(row.id, row.name, row.user_id, row.project_id, row.unrestricted,
                       tuple(row.role_ids or ()), expires)


def load_revocations(s: Session, _key: None) -> Revocations:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    audit: set[str] = set()
    users: dict[str, float] = {}
    for ev in s.scalars(select(m.RevocationEvent).where(m.RevocationEvent.expires_at > now)):
        if ev.audit_id:
            audit.add(ev.audit_id)
        if ev.user_id:
            ts = ev.issued_before.replace(tzinfo=dt.UTC).timestamp()
            users[ev.user_id] = max(users.get(ev.user_id, 0.0), ts)
    return Revocations(frozenset(audit), users)


def project_ancestors(s: Session, project_id: str) -> list[str]:
    """Parent, grandparent, … of a project (not the project itself)."""
    chain: list[str] = []
    seen = {project_id}
    current = s.get(m.Project, project_id)
    while current is not None and current.parent_id and current.parent_id not in seen:
        chain.append(current.parent_id)
        seen.add(current.parent_id)
        current = s.get(m.Project, current.parent_id)
    return chain


def user_group_ids(s: Session, user_id: str) -> list[str]:
    return list(s.scalars(select(m.GroupMembership.group_id)
                          .where(m.GroupMembership.user_id == user_id)))


def expand_implied(s: Session, role_ids: set[str]) -> set[str]:
    """Add every role implied (transitively) by the given roles."""
    result = set(role_ids)
    frontier = set(role_ids)
    while frontier:
        implied = set(s.scalars(select(m.ImpliedRole.implied_role_id)
                                .where(m.ImpliedRole.prior_role_id.in_(frontier))))
        frontier = implied - result
        result |= frontier
    return result


def effective_roles(s: Session, user_id: str, kind: str, target: str) -> tuple[RoleRef, ...]:
    """Roles a user holds on a target directly, through groups, inheritance, implication
    (domain-specific roles contribute the global roles they imply, not themselves)."""
    actors = [user_id, *user_group_ids(s, user_id)]
    A = m.Assignment
    if kind == "project":
        project = s.get(m.Project, target)
        if project is None:
            return ()
        ancestors = project_ancestors(s, target)
        cond = or_(
            (A.target_id == target) & A.type.in_([m.USER_PROJECT, m.GROUP_PROJECT])
            & A.inherited.is_(False),
            (A.target_id.in_(ancestors)) & A.type.in_([m.USER_PROJECT, m.GROUP_PROJECT])
            & A.inherited.is_(True),
            (A.target_id == project.domain_id) & A.type.in_([m.USER_DOMAIN, m.GROUP_DOMAIN])
            & A.inherited.is_(True),
        )
    elif kind == "domain":
        cond = ((A.target_id == target) & A.type.in_([m.USER_DOMAIN, m.GROUP_DOMAIN])
                & A.inherited.is_(False))
    else:
        cond = (A.target_id == m.SYSTEM_TARGET) & A.type.in_([m.USER_SYSTEM, m.GROUP_SYSTEM])
    role_ids = set(s.scalars(select(A.role_id).where(A.actor_id.in_(actors)).where(cond)))
    if not role_ids:
        return ()
    role_ids = expand_implied(s, role_ids)
    # Domain-specific roles only imply others; they never reach a token (Keystone).
    rows = s.execute(select(m.Role.id, m.Role.name).where(m.Role.id.in_(role_ids))
                     .where(m.Role.domain_id == ""))
    return tuple(sorted(((r.id, r.name) for r in rows), key=lambda r: r[1]))


def load_catalog(s: Session, _key: None) -> list[dict[str, Any]]:
    services = s.scalars(select(m.Service).where(m.Service.enabled.is_(True))
                         .order_by(m.Service.type, m.Service.id)).all()
    endpoints = s.scalars(select(m.Endpoint).where(m.Endpoint.enabled.is_(True))
                          .order_by(m.Endpoint.interface, m.Endpoint.id)).all()
    by_service: dict[str, list[dict[str, Any]]] = {}
    for ep in endpoints:
        by_service.setdefault(ep.service_id, []).append({
            "id": ep.id, "interface": ep.interface, "region_id": ep.region_id,
            "url": ep.url, "region": ep.region_id,
        })
    return [{"endpoints": by_service.get(svc.id, []), "id": svc.id, "type": svc.type,
             "name": svc.name} for svc in services]
