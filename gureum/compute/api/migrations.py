"""/v2.1/os-migrations: every move of every server, for operators; a project manager
lists its own project's moves (``?project_id=<its project>``) without the hosts."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import migrations, policy
from gureum.compute.api.common import ctx_of
from gureum.compute.api.params import limit_marker, reject_unknown, time_window
from gureum.compute.views import migrations as views
from gureum.compute.views.common import next_link
from gureum.db import Session

router = Router()

_RULE = "os_compute_api:os-migrations:"
FILTERS = ("hidden", "host", "instance_uuid", "source_compute", "status", "migration_type")


@router.get("/v2.1/os-migrations", tx=True)
def list_migrations(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    allowed = list(FILTERS)
    if at_least(req, "2.59"):
        allowed += ["limit", "marker", "changes-since"]
    if at_least(req, "2.66"):
        allowed.append("changes-before")
    if at_least(req, "2.80"):
        allowed += ["user_id", "project_id"]
    reject_unknown(req, allowed, since="2.59")
    # As Nova: every caller passes index; listing another project's migrations, or
    # every project's (no project_id), needs index:all_projects (the admin's), so a
    # project manager names its own project; the hosts need index:host.
    policy.authorize(ctx, _RULE + "index")
    project_id = req.arg("project_id")
    if not project_id or project_id != ctx.project_id:
        policy.authorize(ctx, _RULE + "index:all_projects")
    hosts = policy.allowed(ctx, _RULE + "index:host")
    equal = ["instance_uuid", "source_compute", "status", "migration_type", "project_id"]
    if at_least(req, "2.80"):
        equal.append("user_id")
    query = migrations.MigrationQuery(
        host=req.arg("host"), equal={name: value for name in equal
                                     if (value := req.arg(name))},
        paged=at_least(req, "2.59"))
    if query.paged:
        query.since, query.before = time_window(
            req, before_name="changes-before" if at_least(req, "2.66") else None)
        query.limit, query.marker = limit_marker(req)
    items = [views.migration(req, m, hosts) for m in migrations.list_migrations(s, query)]
    body: dict[str, Any] = {"migrations": items}
    if query.paged:
        links = next_link(req, "os-migrations", items, query.limit, key="uuid")
        if links:
            body["migrations_links"] = links
    return json_response(body)
