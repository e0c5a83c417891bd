"""Compute quotas: defaults from settings, per-project overrides in the database."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.models import QuotaLimit
from gureum.config import QuotaSettings, Settings
from gureum.errors import QuotaExceeded

RESOURCES = tuple(f.name for f in dataclasses.fields(QuotaSettings))


def defaults(settings: Settings) -> dict[str, int]:
    return {name: int(getattr(settings.quota, name)) for name in RESOURCES}


def limits_for(s: Session, project_id: str, settings: Settings) -> dict[str, int]:
    """The effective hard limits of a project (-1: unlimited)."""
    limits = defaults(settings)
    for row in s.scalars(select(QuotaLimit).where(QuotaLimit.project_id == project_id)):
        limits[row.resource] = row.hard_limit
    return limits


def check_metadata_items(s: Session, project_id: str, settings: Settings, count: int) -> None:
    """Nova's 403 when a server would hold more metadata items than the project may."""
    limit = limits_for(s, project_id, settings).get("metadata_items", -1)
    if 0 <= limit < count:
        raise QuotaExceeded(f"Maximum number of metadata items exceeds {limit}",
                            resource="metadata_items")
