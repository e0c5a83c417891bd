"""Server-hours over a period (os-simple-tenant-usage): which servers count.

A server counts for a period when it ran in it: launched before the period
ends and not terminated before it starts; deleted servers count too (their
hours were used). The hours themselves are the view's sums
(compute/views/usage.py), from each server's flavor snapshot.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.compute.listing import page
from gureum.compute.models import Instance
from gureum.paging import SortKey


def servers_in_period(s: Session, start: dt.datetime, stop: dt.datetime,
                      project_id: str | None, limit: int, marker: str | None
                      ) -> list[Instance]:
    """A page of the servers (of a project, or all) that ran between start and stop."""
    stmt = select(Instance).where(
        or_(Instance.terminated_at.is_(None), Instance.terminated_at > start),
        or_(Instance.launched_at.is_(None), Instance.launched_at < stop),
    )
    mine = [] if project_id is None else [Instance.project_id == project_id]
    keys = [SortKey(Instance.created_at), SortKey(Instance.seq)]
    # The marker is any server (of the project asked about), deleted ones too, as Nova.
    return page(s, stmt.where(*mine), keys, limit, marker, Instance.id == marker, *mine)
