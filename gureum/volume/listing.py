"""Block Storage's list paging, as volumes and snapshots share it.

A list is paged as Cinder pages it: after the ``marker`` row (an unknown marker
is a 404), then ``offset`` rows skipped, then at most ``limit`` rows (a limit
that is not a whole number >= 0 is a 400). Each resource keeps its own filters
and sort order.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from gureum.volume import errors as e
from gureum.volume import schemas


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=_Identified)


def last_arg(query: dict[str, list[str]], name: str) -> str | None:
    """The value the client last gave for ``name`` (None when it gave none)."""
    values = query.get(name)
    return values[-1] if values else None


def page(rows: list[Row], query: dict[str, list[str]], kind: str) -> list[Row]:
    """``rows`` (sorted and filtered) from the marker on, offset skipped, cut at limit."""
    marker = last_arg(query, "marker")
    if marker:
        ids = [r.id for r in rows]
        if marker not in ids:
            raise e.not_found(kind, marker)  # Cinder: "Marker ... could not be found."
        rows = rows[ids.index(marker) + 1:]
    offset = last_arg(query, "offset")
    if offset and schemas.is_uint(offset):
        rows = rows[int(offset):]
    limit = last_arg(query, "limit")
    if limit is not None:
        if not schemas.is_uint(limit):
            raise e.bad_request(f"Invalid limit {limit}: must be an integer >= 0.", "limit")
        rows = rows[:int(limit)]
    return rows
