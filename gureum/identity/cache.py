"""An in-process cache of the identity data token validation needs.

Every identity write bumps the ``identity`` revision row in the same
transaction and clears this process's cache after commit, so a change made
here is seen by the next request. Other processes sharing the database notice
the new revision within ``cache_check_interval`` seconds. Entries are small
(names, flags, role lists), bounded in number, and independent of how many
tokens were ever issued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gureum.identity.models import Revision

REVISION_NAME = "identity"
MAX_ENTRIES = 50_000

T = TypeVar("T")


class CacheMiss(Exception):
    """Raised on the fast path when an entry would need the database."""


@dataclass(frozen=True)
class DomainInfo:
    id: str
    name: str
    enabled: bool


@dataclass(frozen=True)
class UserInfo:
    id: str
    name: str
    domain_id: str
    enabled: bool
    password_expires_at: str | None = None


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    domain_id: str
    enabled: bool
    parent_id: str | None


@dataclass(frozen=True)
class AppCredInfo:
    id: str
    name: str
    user_id: str
    project_id: str | None
    unrestricted: bool
    role_ids: tuple[str, ...]
    expires_at: float | None  # epoch seconds


@dataclass(frozen=True)
class Revocations:
    audit_ids: frozenset[str]
    users_before: dict[str, float]  # user id → revoke tokens issued at or before

    def revoked(self, user_id: str, audit_ids: tuple[str, ...], issued_at: float) -> bool:
        if audit_ids and audit_ids[0] in self.audit_ids:
            return True
        before = self.users_before.get(user_id)
        return before is not None and issued_at <= before


_MISSING = object()


class IdentityCache:
    def __init__(self, check_interval: float = 1.0) -> None:
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._revision = -1
        self._checked_at = 0.0
        self._generation = 0
        self._maps: dict[str, dict[Any, Any]] = {}

    # -- freshness -----------------------------------------------------------
    def needs_check(self) -> bool:
        return time.monotonic() - self._checked_at > self.check_interval

    def check(self, session: Session) -> None:
        """Compare our revision with the database's; clear the cache when it moved."""
        value = session.scalar(select(Revision.value).where(Revision.name == REVISION_NAME))
        value = value or 0
        with self._lock:
            if value != self._revision:
                self._maps = {}
                self._generation += 1
                self._revision = value
            self._checked_at = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._maps = {}
            self._generation += 1
            self._revision = -1
            self._checked_at = 0.0

    # -- entries -------------------------------------------------------------
    def get(self, kind: str, key: Any, load: Callable[[Session, Any], T],
            session: Session | None) -> T:
        """The cached value; loaded with ``load`` when a session is given, else CacheMiss."""
        bucket = self._maps.get(kind)
        if bucket is not None:
            value = bucket.get(key, _MISSING)
            if value is not _MISSING:
                return value
        if session is None:
            raise CacheMiss(kind)
        generation = self._generation
        value = load(session, key)
        with self._lock:
            if generation == self._generation:
                bucket = self._maps.setdefault(kind, {})
                if len(bucket) >= MAX_ENTRIES:
                    bucket.clear()
                bucket[key] = value
        return value


def bump_revision(session: Session, cache: IdentityCache) -> None:
    """Record an identity change: bump the revision, clear our cache after commit."""
    result = session.execute(
        update(Revision).where(Revision.name == REVISION_NAME)
        .values(value=Revision.value + 1))
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(Revision(name=REVISION_NAME, value=1))
    if not session.info.get("identity_clear_hooked"):
        from sqlalchemy import event

        session.info["identity_clear_hooked"] = True

        def _after_commit(sess: Session) -> None:
            sess.info.pop("identity_clear_hooked", None)
            cache.clear()

        event.listen(session, "after_commit", _after_commit, once=True)
