"""os-aggregates wire shape (uuid from 2.41)."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute import zones
from gureum.compute.models import Aggregate
from gureum.compute.views.common import usg_time


def aggregate(req: Request, agg: Aggregate, hosts: list[str] | None) -> dict[str, Any]:
    """hosts None: the create response, which has neither hosts nor metadata."""
    out: dict[str, Any] = {
        "id": agg.id, "name": agg.name, "availability_zone": zones.aggregate_zone(agg),
        "created_at": usg_time(agg.created_at), "updated_at": usg_time(agg.updated_at),
        "deleted_at": None, "deleted": False,
    }
    if hosts is not None:
        out["hosts"] = hosts
        out["metadata"] = dict(agg.metadata_ or {})
    if at_least(req, "2.41"):
        out["uuid"] = agg.uuid
    return out
