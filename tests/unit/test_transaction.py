"""The one transaction helper of the API (gureum/api/transaction.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gureum.api import transaction
from gureum.api.transaction import READ, WRITE, AfterTransaction
from gureum.api.web import Request, Response, empty


def request(method: str) -> Request:
    scope = {"type": "http", "method": method, "path": "/", "headers": [],
             "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    return Request(scope, receive, "", "/")


class Recorder:
    """A database whose sessions record when they open and close, and of which kind."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @contextmanager
    def session(self, write: bool = True) -> Iterator[str]:
        kind = WRITE if write else READ
        self.events.append(f"begin {kind}")
        try:
            yield kind
        except BaseException:
            self.events.append("rollback")
            raise
        self.events.append("commit")


@pytest.mark.parametrize(("tx", "method", "expected"), [
    (True, "GET", READ), (True, "HEAD", READ), (True, "POST", WRITE), (True, "DELETE", WRITE),
    ("read", "POST", READ), ("write", "GET", WRITE),
    (lambda req: READ, "POST", READ), (lambda req: WRITE, "GET", WRITE),
])
def test_the_route_option_names_the_kind_of_transaction(tx: Any, method: str,
                                                        expected: str) -> None:
    assert transaction.kind(tx, request(method)) == expected


def test_an_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        transaction.kind(lambda req: "maybe", request("GET"))


def test_the_handler_gets_the_session_and_its_answer_is_the_response() -> None:
    db = Recorder()

    def handler(req: Request, s: str) -> Response:
        db.events.append(f"handler in {s}")
        return empty(204)

    response = transaction.run(db, True, handler, request("PUT"))
    assert response.status == 204
    assert db.events == ["begin write", "handler in write", "commit"]


def test_work_after_the_transaction_runs_once_it_has_committed() -> None:
    db = Recorder()

    def handler(req: Request, s: str) -> AfterTransaction:
        db.events.append("read what the agent needs")

        def ask_agent() -> Response:
            db.events.append("ask the agent")
            return empty(202)
        return AfterTransaction(ask_agent)

    response = transaction.run(db, "read", handler, request("POST"))
    assert response.status == 202
    assert db.events == ["begin read", "read what the agent needs", "commit", "ask the agent"]


def test_a_failing_handler_rolls_back() -> None:
    db = Recorder()

    def handler(req: Request, s: str) -> Response:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        transaction.run(db, True, handler, request("POST"))
    assert db.events == ["begin write", "rollback"]


class _MySQLError(Exception):
    pass


def _dbapi(code: object) -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("INSERT …", {}, _MySQLError(code, "Deadlock found"))


def test_a_deadlock_victim_is_run_again_in_a_new_transaction() -> None:
    db = Recorder()
    calls: list[int] = []

    def handler(req: Request, session: Any) -> Response:
        calls.append(1)
        if len(calls) < 3:
            raise _dbapi(1213)
        return empty(201)

    assert transaction.run(db, True, handler, request("POST")).status == 201
    assert db.events == ["begin write", "rollback"] * 2 + ["begin write", "commit"]


def test_other_database_errors_are_not_retried() -> None:
    db = Recorder()
    calls: list[int] = []

    def handler(req: Request, session: Any) -> Response:
        calls.append(1)
        raise _dbapi(1062)

    with pytest.raises(Exception, match="Deadlock found"):
        transaction.run(db, True, handler, request("POST"))
    assert len(calls) == 1
    # A savepoint error that follows a deadlock in the chain still counts as one.
    try:
        try:
            raise _dbapi(1213)
        except Exception:
            raise _dbapi(1305) from None
    except Exception as exc:
        assert not transaction.is_deadlock(ValueError("x"))
        assert transaction.is_deadlock(exc)


def test_a_read_transaction_that_must_write_on_sqlite_runs_again_as_a_write(
        tmp_path: Any) -> None:
    """A GET that writes (a project's default security group) after another writer
    committed since it began gets SQLITE_BUSY at once: it runs again as a write."""
    from sqlalchemy import text

    from gureum.db.engine import Database

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.session() as s:
        s.execute(text("CREATE TABLE t (v INTEGER)"))
    kinds: list[bool] = []

    class Watching:
        @contextmanager
        def session(self, write: bool = True) -> Iterator[Any]:
            kinds.append(write)
            with db.session(write=write) as s:
                yield s

    def handler(req: Request, session: Any) -> Response:
        session.execute(text("SELECT count(*) FROM t")).scalar()  # the snapshot begins
        if len(kinds) == 1:
            with db.session() as other:  # another request commits a write meanwhile
                other.execute(text("INSERT INTO t VALUES (1)"))
        session.execute(text("INSERT INTO t VALUES (2)"))
        return empty(200)

    assert transaction.run(Watching(), True, handler, request("GET")).status == 200
    assert kinds == [False, True]
    with db.session(write=False) as s:
        assert sorted(s.execute(text("SELECT v FROM t")).scalars()) == [1, 2]
    db.dispose()
