"""The one way a route's handler gets its database transaction.

A route says what it needs with its ``tx`` option and the app calls ``run``:
the handler receives the session as its second argument; the transaction
commits when the handler returns and rolls back when it raises. ``tx`` is

* ``True``: a read transaction for GET and HEAD, a write one otherwise;
* ``"read"`` or ``"write"``: that kind, whatever the method;
* a function of the request answering ``"read"`` or ``"write"``, for a route
  that serves several operations (compute's ``POST /servers/{id}/action``
  looks the action up in the body: reset-state writes, console output reads).

Some operations must wait on something slow that is not the database: an
agent's answer (console output, forcing a live migration to complete). A
handler must not hold a transaction while it waits (on SQLite a write
transaction is ``BEGIN IMMEDIATE`` and would stop every other writer), so it
returns ``AfterTransaction(work)`` instead of a response: ``run`` ends the
transaction first and then calls ``work()`` for the response, outside any
transaction. When that work must then record its outcome, it returns
``InTransaction(fn)``: ``fn(session)`` runs in a new transaction of the same
helper (changePassword: set the task_state, wait for the agent, clear it); an
error it returns instead of a response is raised once that transaction has
committed, so the outcome stays recorded while the request fails.
Work the conductor must do is not that: it is handed over in the transaction
itself (an outbox row, see gureum/outbox.py).

A transaction the database server ends as a deadlock victim (MariaDB/MySQL
1213, PostgreSQL 40P01 or a serialization failure 40001) was rolled back
whole, so the handler is run again from the start in a new one, a few times
with a short random pause, as oslo.db's retry does for Neutron: many requests
inserting into one unique index at once (100 port creates on one subnet) get
their addresses instead of a 500. So is one whose compare-and-swap lost
(``StaleRead``): on MariaDB's repeatable reads only a new transaction sees
what the winner wrote.

A read transaction on SQLite that finds it must write after all (a project's first
look at its security groups makes its default group) cannot take the write lock when
another writer committed since it began: SQLite answers "database is locked" at once,
without waiting. That request runs again in a write transaction (``BEGIN IMMEDIATE``,
which waits its turn).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError

from gureum.api.web import Request, Response, TxOption
from gureum.errors import GureumError, StaleRead

READ, WRITE = "read", "write"
DEADLOCK_RETRIES = 20
# MariaDB/MySQL: deadlock, lock wait timeout, and the savepoint a deadlock's rollback
# took with it; PostgreSQL: deadlock detected, serialization failure.
_MYSQL_RETRY = (1213, 1205, 1305)
_PG_RETRY = ("40P01", "40001")


class Sessions(Protocol):
    def session(self, write: bool = True) -> AbstractContextManager[Any]: ...


class AfterTransaction:
    """A handler's answer when the rest of its work must run after its transaction."""

    __slots__ = ("work",)

    def __init__(self, work: Callable[[], Response | InTransaction]) -> None:
        self.work = work


class InTransaction:
    """After-transaction work's answer when recording its outcome needs the database."""

    __slots__ = ("fn", "kind")

    def __init__(self, fn: Callable[[Any], Response | GureumError], kind: str = WRITE
                 ) -> None:
        self.fn = fn
        self.kind = kind


def kind(tx: TxOption, req: Request) -> str:
    """"read" or "write": the transaction a route's tx option asks for this request."""
    if callable(tx):
        tx = tx(req)
    if tx in (READ, WRITE):
        return str(tx)
    if tx is True:
        return READ if req.method in ("GET", "HEAD") else WRITE
    raise ValueError(f"not a transaction kind: {tx!r}")


def is_deadlock(exc: BaseException | None) -> bool:
    """The database rolled the transaction back to break a deadlock (anywhere in the
    chain: the error that surfaces may be a savepoint the rollback removed)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, StaleRead):
            return True
        if isinstance(exc, DBAPIError):
            orig = exc.orig
            code = orig.args[0] if orig is not None and orig.args else None
            if code in _MYSQL_RETRY or getattr(orig, "pgcode", None) in _PG_RETRY or \
                    getattr(orig, "sqlstate", None) in _PG_RETRY:
                return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def is_sqlite_locked(exc: BaseException | None) -> bool:
    """SQLite refused a read transaction's first write (SQLITE_BUSY)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DBAPIError) and exc.orig is not None and \
                type(exc.orig).__module__.startswith("sqlite3") and \
                "database is locked" in str(exc.orig):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def run(db: Sessions, tx: TxOption, handler: Callable[[Request, Any], Any],
        req: Request) -> Response:
    """Call handler(req, session) in the transaction tx asks for; then any work it left."""
    write = kind(tx, req) == WRITE
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            with db.session(write=write) as session:
                result = handler(req, session)
            break
        except Exception as exc:
            if not write and is_sqlite_locked(exc):
                write = True
                continue
            if attempt == DEADLOCK_RETRIES or not is_deadlock(exc):
                raise
            time.sleep(random.uniform(0.005, 0.03) * min(attempt + 1, 5))
    if isinstance(result, AfterTransaction):
        result = result.work()
        if isinstance(result, InTransaction):
            with db.session(write=result.kind == WRITE) as session:
                outcome = result.fn(session)
            if isinstance(outcome, GureumError):
                raise outcome
            return outcome
    final: Response = result
    return final
