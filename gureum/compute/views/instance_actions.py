"""os-instance-actions wire shapes; which event fields show depends on role and version.

Events: admin always (with traceback); others from 2.51 (without). host: admin
from 2.62; hostId: everyone from 2.62; details: admin from 2.84.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.models import InstanceAction, InstanceActionEvent
from gureum.compute.views.common import host_id, usg_time
from gureum.context import RequestContext


def action(req: Request, a: InstanceAction) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "instance_uuid": a.instance_id,
                           "request_id": a.request_id, "user_id": a.user_id,
                           "project_id": a.project_id, "start_time": usg_time(a.start_time),
                           "message": a.message}
    if at_least(req, "2.58"):
        out["updated_at"] = usg_time(a.updated_at)
    return out


def shows_events(req: Request, ctx: RequestContext) -> bool:
    return ctx.is_admin or at_least(req, "2.51")


def event(req: Request, ctx: RequestContext, ev: InstanceActionEvent, project_id: str
          ) -> dict[str, Any]:
    out: dict[str, Any] = {"event": ev.event, "start_time": usg_time(ev.start_time),
                           "finish_time": usg_time(ev.finish_time), "result": ev.result}
    if ctx.is_admin:
        out["traceback"] = ev.traceback
        if at_least(req, "2.62"):
            out["host"] = ev.host or ""
    if at_least(req, "2.62"):
        out["hostId"] = host_id(ev.host, project_id)
    if at_least(req, "2.84") and ctx.is_admin:
        out["details"] = ev.details
    return out
