"""/v2.1/servers/{id}/os-instance-actions: what was done to a server, step by step.

From 2.21 the actions of a deleted server stay readable; from 2.58 the list
pages (limit, marker = request_id) and filters by changes-since (2.66:
changes-before) on the action's updated_at. The records are read by
compute/instance_actions.py.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import instance_actions, policy
from gureum.compute.api.common import ctx_of
from gureum.compute.api.params import limit_marker, reject_unknown, time_window
from gureum.compute.views import instance_actions as views
from gureum.compute.views.common import next_link
from gureum.db import Session

router = Router()


@router.get("/v2.1/servers/{server_id}/os-instance-actions", tx=True)
def list_actions(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-instance-actions:list")
    inst = instance_actions.server(s, ctx, req.path_params["server_id"],
                                   deleted_too=at_least(req, "2.21"))
    limit = None
    paged = at_least(req, "2.58")
    if paged:
        allowed = ["limit", "marker", "changes-since"]
        if at_least(req, "2.66"):
            allowed.append("changes-before")
        reject_unknown(req, allowed, since=None)
        since, before = time_window(req, before_name="changes-before"
                                    if at_least(req, "2.66") else None)
        limit, marker = limit_marker(req)
        rows = instance_actions.page_actions(s, inst, since, before, limit, marker)
    else:
        rows = instance_actions.list_actions(s, inst)
    items = [views.action(req, a) for a in rows]
    body: dict[str, Any] = {"instanceActions": items}
    if paged:
        links = next_link(req, f"servers/{inst.id}/os-instance-actions", items, limit,
                          key="request_id")
        if links:
            body["links"] = links
    return json_response(body)


@router.get("/v2.1/servers/{server_id}/os-instance-actions/{request_id}", tx=True)
def show_action(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-instance-actions:show")
    inst = instance_actions.server(s, ctx, req.path_params["server_id"],
                                   deleted_too=at_least(req, "2.21"))
    found = instance_actions.find(s, inst, req.path_params["request_id"])
    out = views.action(req, found)
    if views.shows_events(req, ctx):
        project = found.project_id or inst.project_id
        out["events"] = [views.event(req, ctx, ev, project)
                         for ev in instance_actions.events(s, found)]
    return json_response({"instanceAction": out})
