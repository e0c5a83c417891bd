"""Keyset paging: the rows after a marker in a total sort order, one page at a time.

Every list API (Nova's servers, flavors, key pairs, migrations…, Glance's
images, Neutron's networks, subnets and ports) pages the same way: the caller
sorts by its keys and ends them with a unique column, so the order is total; the
marker row's values of those keys are read once, and the next page is the rows
strictly after them, ``WHERE (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …``. No page
loads the rows before it, so the last page costs what the first does.

NULL sorts first in ascending order, as SQLite and MariaDB put it; the order
says so explicitly (``col IS NULL DESC``) so PostgreSQL pages the same rows,
and the comparisons treat NULL as the smallest value. Each API keeps its own
wire rules (how a marker is named and looked up, what an unknown marker answers,
whether a full page gets a "next" link); they are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, literal, or_, select, true
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class SortKey:
    """One key of a sort order: a mapped column or SQL expression, and its direction."""

    column: Any
    ascending: bool = True
    nullable: bool | None = None  # None: ask the column (an expression counts as nullable)

    def may_be_null(self) -> bool:
        if self.nullable is not None:
            return self.nullable
        return bool(getattr(getattr(self.column, "expression", self.column), "nullable", True))

    def flipped(self) -> SortKey:
        return SortKey(self.column, not self.ascending, self.nullable)


def order_by(keys: Sequence[SortKey]) -> list[Any]:
    """ORDER BY terms for ``keys`` (NULL first when ascending, last when descending)."""
    terms: list[Any] = []
    for key in keys:
        if key.may_be_null():
            null_first = key.column.is_(None)
            terms.append(null_first.desc() if key.ascending else null_first.asc())
        terms.append(key.column.asc() if key.ascending else key.column.desc())
    return terms


def _equal(key: SortKey, value: Any) -> ColumnElement[bool]:
    if value is None:
        return key.column.is_(None)
    return key.column == literal(value, key.column.type)


def _beyond(key: SortKey, value: Any) -> ColumnElement[bool]:
    """Rows this key alone puts after ``value``."""
    if value is None:  # NULL is the smallest value
        return key.column.is_not(None) if key.ascending else false()
    # Bound with the column's type: booleans compare in SQL, not in SQLAlchemy.
    bound = literal(value, key.column.type)
    if key.ascending:
        return key.column > bound
    if key.may_be_null():
        return or_(key.column < bound, key.column.is_(None))
    return key.column < bound


def after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after the row whose key values are ``values``, in the order of ``keys``."""
    alternatives = []
    for i, key in enumerate(keys):
        equal = [_equal(keys[j], values[j]) for j in range(i)]
        alternatives.append(and_(*equal, _beyond(key, values[i])))
    return or_(*alternatives) if alternatives else true()


def marker_values(s: Session, keys: Sequence[SortKey], *where: ColumnElement[bool]
                  ) -> list[Any] | None:
    """The key values of the one row ``where`` selects (the marker); None when none does."""
    row = s.execute(select(*[k.column for k in keys]).where(*where).limit(1)).first()
    return None if row is None else list(row)


@dataclass
class Page:
    rows: list[Any]
    more: bool  # rows beyond this page exist (in the direction paged)


def fetch(s: Session, stmt: Select[Any], keys: Sequence[SortKey], limit: int | None,
          marker: Sequence[Any] | None = None, reverse: bool = False,
          keep: Callable[[Any], bool] | None = None) -> Page:
    """One page of ``stmt`` sorted by ``keys``: at most ``limit`` rows after ``marker``.

    ``reverse`` pages backwards (the rows before the marker, still returned in
    the order of ``keys``); ``keep`` drops rows a filter SQL cannot express, and
    the page is filled from the rows after them.
    """
    order = [k.flipped() for k in keys] if reverse else list(keys)
    if marker is not None:
        stmt = stmt.where(after(order, marker))
    stmt = stmt.order_by(*order_by(order))
    wanted = None if limit is None else limit + 1  # one more: is there a next page?
    rows: list[Any] = []
    if keep is None:
        # unique(): models that load collections with a join repeat their rows.
        rows = list(s.scalars(stmt if wanted is None else stmt.limit(wanted)).unique())
    else:
        # Streamed: a filter may drop most rows; stop as soon as the page is full, and
        # close the result (a server-side cursor on PostgreSQL) when stopping early.
        result = s.scalars(stmt.execution_options(yield_per=500))
        try:
            for row in result:
                if keep(row):
                    rows.append(row)
                    if wanted is not None and len(rows) >= wanted:
                        break
        finally:
            result.close()
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    if reverse:
        rows.reverse()
    return Page(rows, more)
