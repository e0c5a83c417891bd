"""/v2.1/os-migrations: every move of every server, for operators (admin only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute.api.common import ctx_of, require_admin
from gureum.compute.api.params import limit_marker, page, reject_unknown, time_window
from gureum.compute.models import Migration
from gureum.compute.views import migrations as views
from gureum.compute.views.common import next_link
from gureum.paging import SortKey

router = Router()

FILTERS = ("hidden", "host", "instance_uuid", "source_compute", "status", "migration_type")


@router.get("/v2.1/os-migrations", tx=True)
def list_migrations(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-migrations:index")
    allowed = list(FILTERS)
    if at_least(req, "2.59"):
        allowed += ["limit", "marker", "changes-since"]
    if at_least(req, "2.66"):
        allowed.append("changes-before")
    if at_least(req, "2.80"):
        allowed += ["user_id", "project_id"]
    reject_unknown(req, allowed, since="2.59")
    stmt = select(Migration)
    host = req.arg("host")
    if host:
        stmt = stmt.where(or_(Migration.source_compute == host, Migration.dest_compute == host))
    for name, column in (("instance_uuid", Migration.instance_id),
                         ("source_compute", Migration.source_compute),
                         ("status", Migration.status),
                         ("migration_type", Migration.migration_type)):
        value = req.arg(name)
        if value:
            stmt = stmt.where(column == value)
    if at_least(req, "2.80"):
        for name, column in (("user_id", Migration.user_id),
                             ("project_id", Migration.project_id)):
            value = req.arg(name)
            if value:
                stmt = stmt.where(column == value)
    limit = None
    paged = at_least(req, "2.59")
    if paged:
        since, before = time_window(req, before_name="changes-before"
                                    if at_least(req, "2.66") else None)
        if since is not None:
            stmt = stmt.where(Migration.updated_at >= since)
        if before is not None:
            stmt = stmt.where(Migration.updated_at <= before)
        limit, marker = limit_marker(req)
        keys = [SortKey(Migration.created_at, ascending=False),
                SortKey(Migration.id, ascending=False)]
        rows = page(s, stmt, keys, limit, marker, Migration.uuid == marker)
    else:
        rows = list(s.scalars(stmt.order_by(Migration.id)))
    items = [views.migration(req, m) for m in rows]
    body: dict[str, Any] = {"migrations": items}
    if paged:
        links = next_link(req, "os-migrations", items, limit, key="uuid")
        if links:
            body["migrations_links"] = links
    return json_response(body)
