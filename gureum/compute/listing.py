"""Keyset pages of compute rows, with Nova's answers for a page that cannot be found.

Every compute list that pages (servers, flavors, key pairs, hypervisors,
migrations, instance actions, usage) takes its rows after a marker row, in a
total order, through the one keyset paginator (gureum/paging.py). What is
compute's own is Nova's limit (``[api] max_limit``) and its 400 for a marker
that names no row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import Session

from gureum import paging
from gureum.errors import InvalidInput

MAX_LIMIT = 1000  # Nova's [api] max_limit: a bigger page is cut to this


def page(s: Session, stmt: Select[Any], keys: Sequence[paging.SortKey], limit: int | None,
         marker: str | None, *marker_where: ColumnElement[bool],
         not_found: str = "Marker {marker} could not be found.",
         keep: Callable[[Any], bool] | None = None) -> list[Any]:
    """The rows of ``stmt`` after the marker row (found by ``marker_where``), at most ``limit``.

    An unknown marker is Nova's 400 (MarkerNotFound, or the servers' own wording).
    """
    values = None
    if marker:
        values = paging.marker_values(s, keys, *marker_where)
        if values is None:
            raise InvalidInput(not_found.format(marker=marker), field="marker")
    return paging.fetch(s, stmt, keys, limit, values, keep=keep).rows
