"""Query-string, body and path helpers shared by the compute API handlers (parsing only)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.api.common import bool_arg, int_arg
from gureum.compute.listing import MAX_LIMIT
from gureum.errors import InvalidInput

__all__ = ["MAX_LIMIT", "int_id", "is_uuid", "limit_marker", "parse_time", "reject_before",
           "reject_unknown", "single", "strict_bool", "time_window"]


def reject_unknown(req: Request, allowed: Iterable[str], since: str | None = "2.75") -> None:
    """From ``since`` on, Nova answers 400 to query parameters a route does not know."""
    if since is not None and not at_least(req, since):
        return
    known = set(allowed)
    extra = sorted(k for k in req.query if k not in known)
    if extra:
        raise InvalidInput(f"Invalid input for query parameters {extra[0]}. Additional "
                           f"properties are not allowed ('{extra[0]}' was unexpected)",
                           field=extra[0])


def reject_before(req: Request, body: dict[str, Any], since: dict[str, str],
                  where: str) -> None:
    """A body field newer than the request's microversion is Nova's "additional property"."""
    for key, version in since.items():
        if key in body and not at_least(req, version):
            raise InvalidInput(f"Invalid input for field/attribute {where}. Additional "
                               f"properties are not allowed ('{key}' was unexpected)",
                               field=f"{where}.{key}")


def single(req: Request, name: str) -> str | None:
    """A query parameter that may be given once (Nova's single_param)."""
    values = req.query.get(name)
    if values and len(values) > 1:
        raise InvalidInput(f"Invalid input for query parameters {name}. Value: {values}. "
                           f"{values} is not of type 'string'", field=name)
    return values[0] if values else None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def int_id(value: str) -> int | None:
    """A database id from a path; None when it is not a (sane) integer."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 <= number < 2**31 else None


def limit_marker(req: Request) -> tuple[int | None, str | None]:
    limit = int_arg(req, "limit")
    return (None if limit is None else min(limit, MAX_LIMIT)), single(req, "marker")


def strict_bool(req: Request, name: str) -> bool:
    return bool(bool_arg(req, name))


def parse_time(req: Request, name: str) -> dt.datetime | None:
    """An ISO 8601 query parameter as naive UTC; 400 when it is not one."""
    value = single(req, name)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"Invalid input for query parameters {name}. Value: {value}. "
                           f"'{value}' is not a 'date-time'", field=name) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def time_window(req: Request, since_name: str = "changes-since",
                before_name: str | None = "changes-before"
                ) -> tuple[dt.datetime | None, dt.datetime | None]:
    since = parse_time(req, since_name)
    before = parse_time(req, before_name) if before_name else None
    if since is not None and before is not None and before < since:
        raise InvalidInput("The value of changes-since must be less than or equal to "
                           "changes-before.", field=before_name)
    return since, before
