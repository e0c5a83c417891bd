"""The keyset paginator on SQLite, PostgreSQL and MariaDB: every page follows the last.

Paging through a table with duplicate and NULL sort values, in every direction,
forwards and backwards and with a Python filter, must visit each row exactly
once in the order Python's own sort gives (NULL smallest), on every database.
PostgreSQL and MariaDB are skipped (with the reason) when they are not running.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from gureum import paging
from gureum.paging import SortKey
from tests.functional.test_databases import SERVERS, reachable


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "paging_rows"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    size: Mapped[int | None] = mapped_column(nullable=True)
    flag: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime, nullable=False)


def make_rows(count: int = 60) -> list[dict[str, Any]]:
    rng = random.Random(7)
    start = dt.datetime(2024, 1, 1)
    return [{"id": i, "name": rng.choice([None, "a", "b", "c", "cc"]),
             "size": rng.choice([None, -1, 0, 5, 5, 12]), "flag": rng.random() < 0.5,
             "created": start + dt.timedelta(minutes=rng.randrange(8))}
            for i in range(1, count + 1)]


@pytest.fixture(params=["sqlite", *sorted(SERVERS)], scope="module")
def session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Session]:
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('paging') / 'p.db'}"
    else:
        url_fmt, admin_url, port = SERVERS[request.param]
        if not reachable(port):
            pytest.skip(f"{request.param} is not running on 127.0.0.1:{port}")
        name = f"gureum_paging_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        url = url_fmt.format(db=name)

        def drop() -> None:
            with admin.connect() as conn:
                force = " WITH (FORCE)" if request.param == "postgresql" else ""
                conn.execute(sa.text(f"DROP DATABASE {name}{force}"))
            admin.dispose()
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.execute(sa.insert(Row), make_rows())
        s.commit()
        yield s
    engine.dispose()
    drop()


ORDERS = [
    [("name", True)], [("name", False)], [("size", True), ("flag", False)],
    [("flag", True), ("name", False)], [("created", False), ("size", False)],
    [("size", False), ("name", True), ("created", True)],
]


def keys_for(order: list[tuple[str, bool]]) -> list[SortKey]:
    keys = [SortKey(getattr(Row, name), ascending) for name, ascending in order]
    return [*keys, SortKey(Row.id, order[0][1])]  # unique last: the order is total


def expected(rows: list[dict[str, Any]], keys: list[SortKey]) -> list[int]:
    """Python's order for ``keys``, NULL the smallest value."""
    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for key in keys:
            name = key.column.key
            x, y = a[name], b[name]
            if x == y:
                continue
            result = -1 if x is None or (y is not None and x < y) else 1
            return result if key.ascending else -result
        return 0
    return [r["id"] for r in sorted(rows, key=functools.cmp_to_key(compare))]


def walk(s: Session, keys: list[SortKey], limit: int, reverse: bool = False,
         keep: Callable[[Any], bool] | None = None, start: list[Any] | None = None
         ) -> list[int]:
    """All ids, a page at a time, each page's marker the last (or first) row before it."""
    seen: list[int] = []
    marker = start
    while True:
        page = paging.fetch(s, sa.select(Row), keys, limit, marker, reverse=reverse, keep=keep)
        assert len(page.rows) <= limit
        ids = [r.id for r in page.rows]
        seen = ids + seen if reverse else seen + ids
        if not page.more:
            return seen
        edge = page.rows[0] if reverse else page.rows[-1]
        marker = paging.marker_values(s, keys, Row.id == edge.id)


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ",".join(
    f"{n}:{'asc' if a else 'desc'}" for n, a in o))
def test_pages_visit_every_row_once_in_order(session: Session,
                                             order: list[tuple[str, bool]]) -> None:
    keys = keys_for(order)
    want = expected(make_rows(), keys)
    for limit in (1, 4, 7, 100):
        assert walk(session, keys, limit) == want, limit
    # One query with the order alone agrees too.
    assert [r.id for r in session.scalars(sa.select(Row).order_by(
        *paging.order_by(keys)))] == want


@pytest.mark.parametrize("order", ORDERS[:4])
def test_reverse_pages_come_back_in_order(session: Session,
                                          order: list[tuple[str, bool]]) -> None:
    keys = keys_for(order)
    want = expected(make_rows(), keys)
    # Start after the last row, paging backwards: the rows before it, all of them.
    last = paging.marker_values(session, keys, Row.id == want[-1])
    assert walk(session, keys, 5, reverse=True, start=last) == want[:-1]


def test_a_python_filter_fills_each_page_from_the_rows_after(session: Session) -> None:
    keys = keys_for([("name", True)])
    want = [i for i in expected(make_rows(), keys) if i % 3]
    assert walk(session, keys, 4, keep=lambda r: r.id % 3 != 0) == want


def test_no_limit_is_every_row_and_limit_zero_is_none(session: Session) -> None:
    keys = keys_for([("size", True)])
    page = paging.fetch(session, sa.select(Row), keys, None)
    assert [r.id for r in page.rows] == expected(make_rows(), keys) and not page.more
    page = paging.fetch(session, sa.select(Row), keys, 0)
    assert page.rows == [] and page.more


def test_an_unknown_marker_row_has_no_values(session: Session) -> None:
    assert paging.marker_values(session, keys_for([("name", True)]), Row.id == -5) is None
