"""GET /v2/images: filters, visibility, sorting and marker paging, as Glance does them.

Query parameters Glance knows become column filters; any other parameter is an
exact-match filter on a custom property (``?os_distro=cirros``). Sorting takes
``sort_key``/``sort_dir`` (repeatable) or ``sort=key:dir,...``; ``created_at``
and ``id`` are always appended so the order, and so the marker, is total.
Nullable sort columns are compared through COALESCE so every database orders
(and pages) them the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from gureum import paging
from gureum.context import RequestContext
from gureum.errors import InvalidInput, NotFound
from gureum.image import models as m
from gureum.image import policy, service
from gureum.paging import SortKey
from gureum.query import GLANCE, parse_bool

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
MAX_BIGINT = 2**63 - 1
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
VISIBILITIES = ("community", "public", "private", "shared", "all")
_OPERATOR_COLUMNS = ("name", "id", "status", "container_format", "disk_format")
_TIME_OPERATORS = ("gt", "gte", "lt", "lte", "neq", "eq")
_RANGES = {"size": m.Image.size, "virtual_size": m.Image.virtual_size,
           "min_ram": m.Image.min_ram, "min_disk": m.Image.min_disk}
_EXACT = {"owner": m.Image.owner, "checksum": m.Image.checksum,
          "os_hash_value": m.Image.os_hash_value}


@dataclass
class ListQuery:
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    member_status: str = "accepted"
    visibility: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def _bool(value: str, name: str) -> bool:
    parsed = parse_bool(value, GLANCE)
    if parsed is None:
        raise InvalidInput(f"Invalid value '{value}' for '{name}' filter. Valid values are "
                           "'true' or 'false'.", field=name)
    return parsed


def _split_op(expression: str) -> tuple[str, str]:
    """'gte:2020-01-01T00:00:00Z' → ('gte', ...); a bare timestamp or value → ('eq', ...)."""
    left, sep, right = expression.partition(":")
    if not sep:
        return "eq", expression
    if _parse_time(expression) is not None:
        return "eq", expression
    return left, right


def _parse_time(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _split_in(value: str) -> list[str]:
    """The values of 'in:a,"b,c",d' (quotes protect commas, as the API-WG says)."""
    if len(re.findall(r'(?<!\\)"', value)) % 2:
        raise InvalidInput("Invalid filter value: the quotes are not closed.", field="in")
    pattern = re.compile(r'"((?:[^"\\]|\\.)*)",?|([^,]+),?|,')
    return [quoted or plain for quoted, plain in pattern.findall(value)]


def _operator_filter(name: str, raw: str) -> ColumnElement[bool]:
    column = getattr(m.Image, name)
    op, value = _split_op(raw)
    if op == "in":
        values = [service.check_text(v, name, 255) for v in _split_in(value)]
        return column.in_(values)
    if op == "eq":
        return column == service.check_text(value, name, 255)
    raise InvalidInput(f"Unable to filter by unknown operator '{op}'.", field=name)


def _time_filter(name: str, raw: str) -> ColumnElement[bool]:
    column = getattr(m.Image, name)
    op, value = _split_op(raw)
    when = _parse_time(value)
    if when is None:
        raise InvalidInput(f'Bad "{name}" query filter format. Use ISO 8601 DateTime '
                           "notation.", field=name)
    if op not in _TIME_OPERATORS:
        raise InvalidInput("Unable to filter on a unknown operator.", field=name)
    compare = {"gt": column > when, "gte": column >= when, "lt": column < when,
               "lte": column <= when, "neq": column != when, "eq": column == when}
    return compare[op]


def _sorting(params: dict[str, list[str]]) -> list[tuple[str, str]]:
    def key(text: str) -> str:
        text = text.strip()
        if text not in SORT_KEYS:
            raise InvalidInput(f"Invalid sort key: {text}. It must be one of the following: "
                               f"{', '.join(SORT_KEYS)}.", field="sort_key")
        return text

    def direction(text: str) -> str:
        text = text.strip()
        if text not in ("asc", "desc"):
            raise InvalidInput(f"Invalid sort direction: {text}", field="sort_dir")
        return text

    keys: list[str] = []
    dirs: list[str] = []
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise InvalidInput("Old and new sorting syntax cannot be combined", field="sort")
        for part in params["sort"][-1].strip().split(","):
            k, _sep, d = part.partition(":")
            keys.append(key(k))
            dirs.append(direction(d or "desc"))
    else:
        keys = [key(k) for k in params.get("sort_key", [])]
        dirs = [direction(d) for d in params.get("sort_dir", [])]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise InvalidInput("Number of sort dirs does not match the number of sort keys",
                               field="sort_dir")
    default = dirs[0] if len(dirs) == 1 else "desc"
    if not keys:
        keys = ["created_at"]
    if len(dirs) <= 1:
        dirs = [default] * len(keys)
    order = list(zip(keys, dirs, strict=True))
    for extra in ("created_at", "id"):
        if extra not in keys:
            order.append((extra, default))
    return order


def parse(params: dict[str, list[str]]) -> ListQuery:
    params = dict(params)
    q = ListQuery()

    def pop(name: str) -> str | None:
        values = params.pop(name, None)
        return values[-1] if values else None

    limit = pop("limit")
    if limit is not None:
        try:
            q.limit = int(limit)
        except ValueError:
            raise InvalidInput("limit param must be an integer", field="limit") from None
        if q.limit < 0:
            raise InvalidInput("limit param must be positive", field="limit")
        q.limit = min(q.limit, MAX_LIMIT)
    q.marker = pop("marker")
    member_status = pop("member_status")
    if member_status is not None:
        if member_status not in MEMBER_STATUSES:
            raise InvalidInput(f"Invalid status: {member_status}", field="member_status")
        q.member_status = member_status
    q.tags = [service.check_text(t.strip(), "tag", 255) for t in params.pop("tag", [])]
    q.sort = _sorting(params)
    for name in ("sort", "sort_key", "sort_dir"):
        params.pop(name, None)
    visibility = pop("visibility")
    if visibility is not None:
        if visibility not in VISIBILITIES:
            raise InvalidInput(f"Invalid visibility value: {visibility}", field="visibility")
        q.visibility = visibility
    if "changes-since" in params:
        raise InvalidInput('The "changes-since" filter is no longer available on v2.',
                           field="changes-since")
    # Glance lowercases os_hidden (openstacksdk sends "True"), not protected.
    q.conditions.append(m.Image.os_hidden == _bool((pop("os_hidden") or "false").lower(),
                                                   "os_hidden"))
    protected = pop("protected")
    if protected is not None:
        q.conditions.append(m.Image.protected == _bool(protected, "protected"))
    for name in list(params):
        raw = pop(name)
        assert raw is not None
        if name in _OPERATOR_COLUMNS:
            q.conditions.append(_operator_filter(name, raw))
        elif name in ("created_at", "updated_at"):
            q.conditions.append(_time_filter(name, raw))
        elif name.endswith(("_min", "_max")) and name[:-4] in _RANGES:
            try:
                number = int(raw)
            except ValueError:
                raise InvalidInput("Unable to filter on a range with a non-numeric value.",
                                   field=name) from None
            if abs(number) > MAX_BIGINT:
                raise InvalidInput(f"Invalid value for '{name}': out of range.", field=name)
            column = _RANGES[name[:-4]]
            q.conditions.append(column >= number if name.endswith("_min") else
                                column <= number)
        elif name in _EXACT:
            q.conditions.append(_EXACT[name] == service.check_text(raw, name, 255))
        else:
            q.properties[service.check_text(name, name[:40], 255)] = \
                service.check_text(raw, name[:40])
    return q


def _visible(ctx: RequestContext, q: ListQuery) -> list[ColumnElement[bool]]:
    """Which images a caller's list may hold (glance/db/sqlalchemy/api.py semantics)."""
    project = ctx.project_id
    out: list[ColumnElement[bool]] = []
    if not ctx.is_admin:
        options: list[ColumnElement[bool]] = [m.Image.visibility.in_(("public", "community"))]
        if project is not None:
            member = [m.ImageMember.image_id == m.Image.id,
                      m.ImageMember.member_id == project]
            if q.member_status != "all":
                member.append(m.ImageMember.status == q.member_status)
            options.append(m.Image.owner == project)
            options.append(and_(m.Image.visibility == "shared",
                                exists().where(*member)))
        out.append(or_(*options))
    if q.visibility is not None:
        if q.visibility != "all":
            out.append(m.Image.visibility == q.visibility)
    elif project is None:
        out.append(m.Image.visibility != "community")
    else:
        out.append(or_(m.Image.owner == project, m.Image.visibility != "community"))
    return out


def _sort_key(name: str, direction: str) -> SortKey:
    """Nullable text and size sort through COALESCE, so every database orders them alike."""
    column: Any = getattr(m.Image, name)
    if name in ("name", "container_format", "disk_format"):
        return SortKey(func.coalesce(column, ""), direction == "asc", nullable=False)
    if name == "size":
        return SortKey(func.coalesce(column, -1), direction == "asc", nullable=False)
    return SortKey(column, direction == "asc")


def list_images(s: Session, ctx: RequestContext, q: ListQuery
                ) -> tuple[list[m.Image], str | None]:
    """One page of images, and the marker of the next page when this one is full."""
    policy.check_read(ctx, "get_images")
    stmt: Select[Any] = select(m.Image).where(*_visible(ctx, q), *q.conditions)
    for tag in q.tags:
        stmt = stmt.where(exists().where(m.ImageTag.image_id == m.Image.id,
                                         m.ImageTag.value == tag))
    for key, value in q.properties.items():
        stmt = stmt.where(exists().where(m.ImageProperty.image_id == m.Image.id,
                                         m.ImageProperty.name == key,
                                         m.ImageProperty.value == value))
    keys = [_sort_key(k, d) for k, d in q.sort]
    marker = None
    if q.marker is not None:
        try:
            found = service.get_visible(s, ctx, q.marker)
        except NotFound as exc:
            raise InvalidInput(f"No image found with ID {q.marker}", field="marker") from exc
        marker = paging.marker_values(s, keys, m.Image.id == found.id)
    images = paging.fetch(s, stmt, keys, q.limit, marker).rows
    next_marker = images[-1].id if images and len(images) == q.limit else None
    return images, next_marker
