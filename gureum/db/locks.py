"""Two ways work is made exclusive in the database: a project's quota lock, and a
lease on a piece of long work.

**The quota lock.** A quota check counts rows and then inserts one; two requests
that count at once on PostgreSQL or MariaDB (SQLite's write transactions are
``BEGIN IMMEDIATE``, one at a time) both see room for one more and both insert.
``lock_project_quotas`` locks the project's row in ``quota_locks`` (``SELECT …
FOR UPDATE``; the row is made on first use) before the count, so the counts and
inserts of one project's creates queue one behind the other until commit, in every
service (Compute, Networking and Block Storage share the row: one project, one
queue). It works because every write transaction reads at read committed (see
``engine.py``): once the lock is granted, the count sees what the previous holder
committed.

**Leases.** A conductor that starts long work on a row (a volume copy) claims it
first: ``claim`` writes (kind, ident) → owner + expiry with a compare-and-swap
(taken when free, expired, or already its own), ``renew`` pushes the expiry on
while the work runs, ``release`` drops it when the outcome is written. Another
conductor, or the same one restarted, takes the work over only once the lease
has expired, i.e. its owner stopped renewing it (died).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from gureum.db.base import Base, utcnow


class QuotaLock(Base):
    """One row per project; locking it serialises the project's quota checks."""

    __tablename__ = "quota_locks"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class WorkClaim(Base):
    """Who is doing a piece of long work, and until when they said they would be."""

    __tablename__ = "work_claims"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    ident: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column()


def lock_project_quotas(s: Session, project_id: str) -> None:
    """Hold the project's quota lock until the transaction ends (call before counting).
    Quotas counted per user (Nova's key pairs) lock ``user:<user id>`` instead."""
    # Asked again in one transaction, the lock is already ours and granted at once; it
    # is not remembered in the session, since a savepoint rolled back may release it.
    stmt = select(QuotaLock.project_id).where(QuotaLock.project_id == project_id) \
        .with_for_update()
    if s.scalar(stmt) is None:
        try:
            with s.begin_nested():
                s.add(QuotaLock(project_id=project_id))
        except IntegrityError:  # a concurrent first check made it: queue behind it
            s.scalar(stmt)


def claim(s: Session, kind: str, ident: str, owner: str, lease: float) -> bool:
    """Take (or keep) the work on (kind, ident) for ``lease`` seconds; False if someone
    else holds a lease that has not expired."""
    now = utcnow()
    until = now + dt.timedelta(seconds=lease)
    taken = s.execute(
        update(WorkClaim).where(WorkClaim.kind == kind, WorkClaim.ident == ident,
                                (WorkClaim.owner == owner) | (WorkClaim.expires_at < now))
        .values(owner=owner, expires_at=until).execution_options(synchronize_session=False))
    if taken.rowcount:  # type: ignore[attr-defined]
        return True
    if s.scalar(select(WorkClaim.owner).where(WorkClaim.kind == kind,
                                              WorkClaim.ident == ident)) is not None:
        return False
    try:
        with s.begin_nested():
            s.add(WorkClaim(kind=kind, ident=ident, owner=owner, expires_at=until))
    except IntegrityError:  # another conductor claimed it at the same moment
        return False
    return True


def renew(s: Session, kind: str, ident: str, owner: str, lease: float) -> bool:
    """Push the lease on; False if it is not ours any more (it expired and was taken)."""
    result = s.execute(
        update(WorkClaim).where(WorkClaim.kind == kind, WorkClaim.ident == ident,
                                WorkClaim.owner == owner)
        .values(expires_at=utcnow() + dt.timedelta(seconds=lease))
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(s: Session, kind: str, ident: str, owner: str) -> None:
    s.execute(delete(WorkClaim).where(WorkClaim.kind == kind, WorkClaim.ident == ident,
                                      WorkClaim.owner == owner)
              .execution_options(synchronize_session=False))


def claimed(s: Session, kind: str, other_than: str = "") -> set[str]:
    """The idents of ``kind`` whose lease has not expired (someone is on them), leases
    of the owner ``other_than`` left out."""
    return set(s.scalars(select(WorkClaim.ident).where(
        WorkClaim.kind == kind, WorkClaim.expires_at >= utcnow(),
        WorkClaim.owner != other_than)))


def expired(s: Session, kind: str) -> set[str]:
    """The idents of ``kind`` whose lease ran out: their owner stopped renewing it."""
    return set(s.scalars(select(WorkClaim.ident).where(WorkClaim.kind == kind,
                                                       WorkClaim.expires_at < utcnow())))


def forget_expired(s: Session, kind: str, idents: set[str]) -> None:
    """Drop expired leases on work that is over (its owner died after finishing it)."""
    if idents:
        s.execute(delete(WorkClaim).where(WorkClaim.kind == kind, WorkClaim.ident.in_(idents),
                                          WorkClaim.expires_at < utcnow())
                  .execution_options(synchronize_session=False))
