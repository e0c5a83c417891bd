"""Account lockout (Keystone's ``[security_compliance]``), counted per address.

Keystone locks a user after ``lockout_failure_attempts`` failed passwords,
whoever sent them: six wrong guesses from anywhere lock the admin out for
``lockout_duration``, and an attacker who keeps guessing keeps them out for
ever. gureum counts failures per user *and* client address, so a lock holds
only against the address that guessed; the user still logs in from any other
address. Guessing across many users from one address is slowed by the address
throttle (``throttle.py``). A user with the option
``ignore_lockout_failure_attempts`` is never locked, as in Keystone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.db.base import utcnow
from gureum.identity import models as m

ADDRESS_MAX = 64


@dataclass(frozen=True)
class PasswordCheck:
    """What a password login needs to know about a user, read in one short transaction."""

    user_id: str
    password_hash: str | None
    enabled: bool
    domain_enabled: bool
    failures: int  # from the caller's address
    last_failure_at: dt.datetime | None
    ignore_lockout: bool

    def locked_until(self, attempts: int, duration: int) -> dt.datetime | None:
        """When the lock on the caller's address ends; None when it is not locked."""
        if attempts <= 0 or self.ignore_lockout or self.failures < attempts:
            return None
        return (self.last_failure_at or utcnow()) + dt.timedelta(seconds=duration)


def load_password_check(s: Session, user_id: str, address: str) -> PasswordCheck | None:
    user = s.get(m.User, user_id)
    if user is None:
        return None
    domain = s.get(m.Domain, user.domain_id)
    row = s.get(m.LoginFailure, (user.id, address[:ADDRESS_MAX]))
    return PasswordCheck(user.id, user.password_hash, user.enabled,
                         bool(domain and domain.enabled), row.failures if row else 0,
                         row.last_failure_at if row else None,
                         bool((user.options or {}).get("ignore_lockout_failure_attempts")))


def find_user_id(s: Session, ref: dict[str, Any]) -> str | None:
    """A user reference {"id"} or {"name", "domain": {"id"|"name"}} → user id."""
    if "id" in ref:
        return s.scalar(select(m.User.id).where(m.User.id == ref["id"]))
    domain = ref.get("domain") or {}
    domain_id = domain.get("id")
    if domain_id is None and "name" in domain:
        domain_id = s.scalar(select(m.Domain.id).where(m.Domain.name == domain["name"]))
    if domain_id is None:
        return None
    return s.scalar(select(m.User.id).where(m.User.domain_id == domain_id,
                                             m.User.name == ref.get("name")))


def record_failure(s: Session, user_id: str, address: str) -> None:
    address = address[:ADDRESS_MAX]
    now = utcnow()
    F = m.LoginFailure
    result = s.execute(update(F).where(F.user_id == user_id, F.address == address)
                       .values(failures=F.failures + 1, last_failure_at=now))
    if result.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with s.begin_nested():
            s.add(F(user_id=user_id, address=address, failures=1, last_failure_at=now))
    except IntegrityError:  # another request inserted it first
        s.execute(update(F).where(F.user_id == user_id, F.address == address)
                  .values(failures=F.failures + 1, last_failure_at=now))


def reset_failures(s: Session, user_id: str, address: str | None = None) -> None:
    """Forget failures from one address (a successful login), or all (a new password)."""
    stmt = delete(m.LoginFailure).where(m.LoginFailure.user_id == user_id)
    if address is not None:
        stmt = stmt.where(m.LoginFailure.address == address[:ADDRESS_MAX])
    s.execute(stmt)
