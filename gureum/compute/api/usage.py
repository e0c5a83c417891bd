"""/v2.1/os-simple-tenant-usage: server-hours per project over a period.

Computed from each server's launched_at/terminated_at and the flavor it had
(its snapshot), deleted servers included. From 2.40 the servers page by
limit/marker (marker = a server id).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute.api.common import ctx_of, require_admin, require_reader
from gureum.compute.api.params import MAX_LIMIT, limit_marker, page, reject_unknown
from gureum.compute.models import Instance
from gureum.compute.views import usage as views
from gureum.db import utcnow
from gureum.errors import Forbidden, InvalidInput
from gureum.paging import SortKey

router = Router()

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _when(req: Request, name: str, now: dt.datetime) -> dt.datetime:
    values = req.query.get(name) or [""]
    text = values[0]  # Nova reads the first of repeated values
    if not text:
        return now
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise InvalidInput(f"Invalid datetime string: {text!r} is not in a recognised format "
                       "(e.g. 2024-01-31T12:00:00)", field=name)


def _period(req: Request) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    now = utcnow()
    start, stop = _when(req, "start", now), _when(req, "end", now)
    # Nova reads "now" twice when both are left out: an empty window, not an error.
    given = bool(req.arg("start") or req.arg("end"))
    if start > stop or (start == stop and given):
        raise InvalidInput("Invalid start time. The start time cannot occur after the end "
                           "time.", field="start")
    return start, min(stop, now), now


def _instances(s: Session, start: dt.datetime, stop: dt.datetime, project_id: str | None,
               limit: int | None, marker: str | None) -> list[Instance]:
    stmt = select(Instance).where(
        or_(Instance.terminated_at.is_(None), Instance.terminated_at > start),
        or_(Instance.launched_at.is_(None), Instance.launched_at < stop),
    )
    mine = [] if project_id is None else [Instance.project_id == project_id]
    keys = [SortKey(Instance.created_at), SortKey(Instance.seq)]
    # The marker is any server (of the project asked about), deleted ones too, as Nova.
    return page(s, stmt.where(*mine), keys, limit if limit is not None else MAX_LIMIT,
                marker, Instance.id == marker, *mine)


def _paging(req: Request) -> tuple[int | None, str | None]:
    if not at_least(req, "2.40"):
        return None, None
    return limit_marker(req)


def _links(req: Request, path: str, servers: list[dict[str, Any]], limit: int | None
           ) -> list[dict[str, str]]:
    page = limit if limit is not None else MAX_LIMIT
    if not at_least(req, "2.40") or not servers or len(servers) < page:
        return []
    params = [(k, v) for k, vs in req.query.items() for v in vs if k != "marker"]
    params.append(("marker", servers[-1]["instance_id"]))
    return [{"rel": "next", "href": f"{req.base_url}/v2.1/{path}?{urlencode(params)}"}]


_QUERY = ("start", "end", "detailed", "limit", "marker")


@router.get("/v2.1/os-simple-tenant-usage", tx=True)
def list_usage(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-simple-tenant-usage:list")
    reject_unknown(req, _QUERY if at_least(req, "2.40") else _QUERY[:3])
    start, stop, now = _period(req)
    limit, marker = _paging(req)
    # Nova reads only "1"; openstacksdk sends "True" (and then shows no server counts).
    detailed = (req.query.get("detailed") or ["0"])[0].strip().lower() in ("1", "true")
    rows = _instances(s, start, stop, None, limit, marker)
    usages, servers = views.tenant_usages(rows, start, stop, now, detailed)
    body: dict[str, Any] = {"tenant_usages": usages}
    links = _links(req, "os-simple-tenant-usage", servers, limit)
    if links:
        body["tenant_usages_links"] = links
    return json_response(body)


@router.get("/v2.1/os-simple-tenant-usage/{project_id}", tx=True)
def show_usage(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    project_id = req.path_params["project_id"]
    require_reader(ctx, "os_compute_api:os-simple-tenant-usage:show")
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden("Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to "
                        "be performed.")
    reject_unknown(req, ("start", "end", "limit", "marker") if at_least(req, "2.40")
                   else ("start", "end"))
    start, stop, now = _period(req)
    limit, marker = _paging(req)
    rows = _instances(s, start, stop, project_id, limit, marker)
    usages, servers = views.tenant_usages(rows, start, stop, now, detailed=True)
    body: dict[str, Any] = {"tenant_usage": usages[0] if usages else {}}
    links = _links(req, f"os-simple-tenant-usage/{project_id}", servers, limit)
    if links:
        body["tenant_usage_links"] = links
    return json_response(body)
