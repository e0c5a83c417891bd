"""Migration records as operators see them: os-migrations and a server's live migrations.

Every move (resize, cold and live migration, evacuation) is a Migration row
that its workflow keeps up to date. Operators list them all (os-migrations);
from 2.22 they also see a server's live migration in progress, and may ask it
to complete now (pause the guest so the last memory copies) or to stop. Those
two are answered by the source host's agent: the functions here only check
that the request makes sense and say which host to ask, so that the caller
asks after its transaction has ended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.compute import instances
from gureum.compute.listing import page
from gureum.compute.models import Migration
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, NotFound
from gureum.paging import SortKey

# The statuses of a live migration still under way (Nova's "in progress" for 2.22+).
LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


@dataclass
class MigrationQuery:
    """The filters of GET /os-migrations; paging (2.59) only when ``paged``."""

    host: str | None = None
    equal: dict[str, str] = field(default_factory=dict)  # instance_uuid, status, …
    paged: bool = False
    since: dt.datetime | None = None
    before: dt.datetime | None = None
    limit: int | None = None
    marker: str | None = None


_EQUAL = {"instance_uuid": Migration.instance_id, "source_compute": Migration.source_compute,
          "status": Migration.status, "migration_type": Migration.migration_type,
          "user_id": Migration.user_id, "project_id": Migration.project_id}
EQUAL_FILTERS = tuple(_EQUAL)


def list_migrations(s: Session, q: MigrationQuery) -> list[Migration]:
    stmt = select(Migration)
    if q.host:
        stmt = stmt.where(or_(Migration.source_compute == q.host,
                              Migration.dest_compute == q.host))
    for name, value in q.equal.items():
        if value:
            stmt = stmt.where(_EQUAL[name] == value)
    if not q.paged:
        return list(s.scalars(stmt.order_by(Migration.id)))
    if q.since is not None:
        stmt = stmt.where(Migration.updated_at >= q.since)
    if q.before is not None:
        stmt = stmt.where(Migration.updated_at <= q.before)
    keys = [SortKey(Migration.created_at, ascending=False),
            SortKey(Migration.id, ascending=False)]
    return page(s, stmt, keys, q.limit, q.marker, Migration.uuid == q.marker)


# -- a server's live migrations (2.22+) ----------------------------------------------------

def live_in_progress(s: Session, ctx: RequestContext, server_id: str) -> list[Migration]:
    inst = instances.visible(s, ctx, server_id)
    return list(s.scalars(select(Migration).where(
        Migration.instance_id == inst.id, Migration.migration_type == "live-migration",
        Migration.status.in_(LIVE_IN_PROGRESS)).order_by(Migration.id)))


def live_migration(s: Session, ctx: RequestContext, server_id: str,
                   migration_id: str) -> Migration:
    """The server's live migration in progress with that id; 404 otherwise."""
    inst = instances.visible(s, ctx, server_id)
    try:
        number = int(migration_id)
    except ValueError:
        raise NotFound(f"Migration {migration_id} could not be found.") from None
    mig = s.get(Migration, number)
    if mig is None or mig.instance_id != inst.id:
        raise NotFound(f"Migration {number} could not be found.")
    if mig.migration_type != "live-migration" or mig.status not in LIVE_IN_PROGRESS:
        raise NotFound(f"Migration {number} for instance {inst.id} is not in progress.")
    return mig


def force_complete_target(s: Session, ctx: RequestContext, server_id: str,
                          migration_id: str) -> tuple[str, str]:
    """(source host, instance id) to ask to complete now; 409 unless it is running."""
    mig = live_migration(s, ctx, server_id, migration_id)
    if mig.status != "running" or not mig.source_compute:
        raise Conflict(f"Migration {mig.id} state of instance {mig.instance_id} is "
                       f"{mig.status}. Cannot force_complete_migration while the "
                       "migration is in this state.")
    return mig.source_compute, mig.instance_id


def request_abort(s: Session, ctx: RequestContext, server_id: str, migration_id: str,
                  after_copy: bool) -> tuple[str | None, str]:
    """Record that the operator asked the live migration to stop (the workflow rolls
    back when it sees it) and return (source host, instance id) to tell the agent.
    Before 2.65 only a migration that has not started copying memory may be
    aborted; from 2.65 (``after_copy``) one in post-migrating too."""
    mig = live_migration(s, ctx, server_id, migration_id)
    if mig.status not in ("queued", "preparing", "running") and not after_copy:
        raise InvalidInput(f"Migration {mig.id} state of instance {mig.instance_id} is "
                           f"{mig.status}. Cannot abort live migration while the "
                           "migration is in this state.")
    mig.state = {**(mig.state or {}), "abort_requested": True}
    return mig.source_compute, mig.instance_id
