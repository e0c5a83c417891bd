"""/v2.1/servers/{id}/os-instance-actions: what was done to a server, step by step.

From 2.21 the actions of a deleted server stay readable; from 2.58 the list
pages (limit, marker = request_id) and filters by changes-since (2.66:
changes-before) on the action's updated_at.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum import paging
from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute.api.common import ctx_of, require_reader
from gureum.compute.api.params import limit_marker, page, reject_unknown, time_window
from gureum.compute.models import Instance, InstanceAction, InstanceActionEvent
from gureum.compute.views import instance_actions as views
from gureum.compute.views.common import next_link
from gureum.context import RequestContext
from gureum.errors import NotFound
from gureum.paging import SortKey

router = Router()


def instance_with_history(req: Request, s: Session, ctx: RequestContext,
                          server_id: str) -> Instance:
    """The server, deleted ones too from 2.21; 404 for other projects' servers."""
    require_reader(ctx, "os_compute_api:os-instance-actions:list")
    inst = s.get(Instance, server_id)
    if inst is None or (inst.deleted and not at_least(req, "2.21")) or \
            (not ctx.is_admin and inst.project_id != ctx.project_id):
        raise NotFound(f"Instance {server_id} could not be found.", kind="instance")
    return inst


@router.get("/v2.1/servers/{server_id}/os-instance-actions", tx=True)
def list_actions(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    inst = instance_with_history(req, s, ctx, req.path_params["server_id"])
    stmt = select(InstanceAction).where(InstanceAction.instance_id == inst.id)
    keys = [SortKey(InstanceAction.start_time, ascending=False),
            SortKey(InstanceAction.id, ascending=False)]
    limit = None
    paged = at_least(req, "2.58")
    if paged:
        allowed = ["limit", "marker", "changes-since"]
        if at_least(req, "2.66"):
            allowed.append("changes-before")
        reject_unknown(req, allowed, since=None)
        since, before = time_window(req, before_name="changes-before"
                                    if at_least(req, "2.66") else None)
        if since is not None:
            stmt = stmt.where(InstanceAction.updated_at >= since)
        if before is not None:
            stmt = stmt.where(InstanceAction.updated_at <= before)
        limit, marker = limit_marker(req)
        # The marker is the newest action of that request on this server (as Nova).
        found = s.scalar(select(InstanceAction.id).where(
            InstanceAction.instance_id == inst.id, InstanceAction.request_id == marker)
            .order_by(InstanceAction.id.desc()).limit(1)) if marker else None
        rows = page(s, stmt, keys, limit, marker, InstanceAction.id == found)
    else:
        rows = list(s.scalars(stmt.order_by(*paging.order_by(keys))))
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
    ctx = ctx_of(req)
    inst = instance_with_history(req, s, ctx, req.path_params["server_id"])
    request_id = req.path_params["request_id"]
    found = s.scalar(select(InstanceAction).where(
        InstanceAction.instance_id == inst.id, InstanceAction.request_id == request_id)
        .order_by(InstanceAction.id.desc()).limit(1))
    if found is None:
        raise NotFound(f"Action {request_id} not found")
    out = views.action(req, found)
    if views.shows_events(req, ctx):
        events = s.scalars(select(InstanceActionEvent).where(
            InstanceActionEvent.action_id == found.id).order_by(
            InstanceActionEvent.start_time.desc(), InstanceActionEvent.id.desc()))
        project = found.project_id or inst.project_id
        out["events"] = [views.event(req, ctx, ev, project) for ev in events]
    return json_response({"instanceAction": out})
