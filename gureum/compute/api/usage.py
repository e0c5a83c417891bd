"""/v2.1/os-simple-tenant-usage: server-hours per project over a period.

Computed from each server's launched_at/terminated_at and the flavor it had
(its snapshot), deleted servers included. From 2.40 the servers page by
limit/marker (marker = a server id).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import policy, usage
from gureum.compute.api.common import ctx_of
from gureum.compute.api.params import MAX_LIMIT, limit_marker, reject_unknown
from gureum.compute.views import usage as views
from gureum.db import Session, utcnow
from gureum.errors import InvalidInput

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


def _servers(s: Session, start: dt.datetime, stop: dt.datetime, project_id: str | None,
             limit: int | None, marker: str | None) -> list[Any]:
    return usage.servers_in_period(s, start, stop, project_id,
                                   limit if limit is not None else MAX_LIMIT, marker)


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
    policy.authorize(ctx_of(req), "os_compute_api:os-simple-tenant-usage:list")
    reject_unknown(req, _QUERY if at_least(req, "2.40") else _QUERY[:3])
    start, stop, now = _period(req)
    limit, marker = _paging(req)
    # Nova reads only "1"; openstacksdk sends "True" (and then shows no server counts).
    detailed = (req.query.get("detailed") or ["0"])[0].strip().lower() in ("1", "true")
    rows = _servers(s, start, stop, None, limit, marker)
    usages, servers = views.tenant_usages(rows, start, stop, now, detailed)
    body: dict[str, Any] = {"tenant_usages": usages}
    links = _links(req, "os-simple-tenant-usage", servers, limit)
    if links:
        body["tenant_usages_links"] = links
    return json_response(body)


@router.get("/v2.1/os-simple-tenant-usage/{project_id}", tx=True)
def show_usage(req: Request, s: Session) -> Response:
    project_id = req.path_params["project_id"]
    policy.authorize(ctx_of(req), "os_compute_api:os-simple-tenant-usage:show", project_id)
    reject_unknown(req, ("start", "end", "limit", "marker") if at_least(req, "2.40")
                   else ("start", "end"))
    start, stop, now = _period(req)
    limit, marker = _paging(req)
    rows = _servers(s, start, stop, project_id, limit, marker)
    usages, servers = views.tenant_usages(rows, start, stop, now, detailed=True)
    body: dict[str, Any] = {"tenant_usage": usages[0] if usages else {}}
    links = _links(req, f"os-simple-tenant-usage/{project_id}", servers, limit)
    if links:
        body["tenant_usage_links"] = links
    return json_response(body)
