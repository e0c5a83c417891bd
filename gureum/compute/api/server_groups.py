"""/v2.1/os-server-groups: groups whose members the scheduler keeps together or apart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import schemas
from gureum.compute.api.common import (
    ctx_of,
    int_arg,
    require_reader,
    require_writer,
    settings_of,
)
from gureum.compute.api.params import MAX_LIMIT, reject_unknown
from gureum.compute.models import Instance, ServerGroup
from gureum.compute.quotas import limits_for
from gureum.compute.views import server_groups as views
from gureum.context import RequestContext
from gureum.errors import Forbidden, InvalidInput, NotFound

router = Router()

HARD = ["anti-affinity", "affinity"]
SOFT = ["soft-anti-affinity", "soft-affinity"]
_name = schemas.name


def _create_schema(group: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["server_group"], "additionalProperties": False,
            "properties": {"server_group": group}}


def _policies(names: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": ["name", "policies"], "additionalProperties": False,
            "properties": {"name": _name, "policies": {
                "type": "array", "minItems": 1, "maxItems": 1, "uniqueItems": True,
                "items": {"type": "string", "enum": names}}}}


create_v21 = _create_schema(_policies(HARD))
create_v215 = _create_schema(_policies(HARD + SOFT))
create_v264 = _create_schema({
    "type": "object", "required": ["name", "policy"], "additionalProperties": False,
    "properties": {"name": _name, "policy": {"type": "string", "enum": HARD + SOFT},
                   "rules": {"type": "object", "additionalProperties": False, "properties": {
                       "max_server_per_host": {"type": ["integer", "string"],
                                               "pattern": "^[0-9]+$", "minimum": 1}}}}})


def members_of(s: Session, group_ids: list[str]) -> dict[str, list[str]]:
    """group id → ids of its members that are not deleted."""
    out: dict[str, list[str]] = {g: [] for g in group_ids}
    if group_ids:
        for iid, gid in s.execute(select(Instance.id, Instance.server_group_id).where(
                Instance.server_group_id.in_(group_ids), Instance.deleted.is_(False))
                .order_by(Instance.created_at, Instance.seq)):
            out.setdefault(gid or "", []).append(iid)
    return out


def _visible(s: Session, ctx: RequestContext, group_id: str) -> ServerGroup:
    require_reader(ctx, "os_compute_api:os-server-groups:show")
    group = s.get(ServerGroup, group_id)
    if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


@router.get("/v2.1/os-server-groups", tx=True)
def list_groups(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_reader(ctx, "os_compute_api:os-server-groups:index")
    reject_unknown(req, ("all_projects", "limit", "offset"))
    stmt = select(ServerGroup).order_by(ServerGroup.created_at, ServerGroup.id)
    if not (ctx.is_admin and "all_projects" in req.query):
        stmt = stmt.where(ServerGroup.project_id == ctx.project_id)
    offset = min(int_arg(req, "offset") or 0, 2**31)
    limit = min(int_arg(req, "limit") or MAX_LIMIT, MAX_LIMIT)
    groups = list(s.scalars(stmt.offset(offset).limit(limit)))
    members = members_of(s, [g.id for g in groups])
    return json_response({"server_groups": [views.server_group(req, g, members[g.id])
                                            for g in groups]})


@router.get("/v2.1/os-server-groups/{group_id}", tx=True)
def show_group(req: Request, s: Session) -> Response:
    group = _visible(s, ctx_of(req), req.path_params["group_id"])
    return json_response({"server_group": views.server_group(
        req, group, members_of(s, [group.id])[group.id])})


@router.post("/v2.1/os-server-groups", tx=True)
def create_group(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:os-server-groups:create")
    if at_least(req, "2.64"):
        body = validate(create_v264, req.json())["server_group"]
        policy = body["policy"]
        rules = {k: int(v) for k, v in (body.get("rules") or {}).items()}
        if any(not 1 <= v < 2**31 for v in rules.values()):
            raise InvalidInput("Invalid input for field/attribute max_server_per_host: it "
                               "must be a positive integer.",
                               field="server_group.rules.max_server_per_host")
        if rules and policy != "anti-affinity":
            raise InvalidInput("Only anti-affinity policy supports rules.",
                               field="server_group.rules")
    else:
        schema = create_v215 if at_least(req, "2.15") else create_v21
        body = validate(schema, req.json())["server_group"]
        policy, rules = body["policies"][0], {}
    assert ctx.project_id is not None
    limit = limits_for(s, ctx.project_id, settings_of(req)).get("server_groups", -1)
    count = s.scalar(select(func.count(ServerGroup.id)).where(
        ServerGroup.project_id == ctx.project_id)) or 0
    if 0 <= limit <= count:
        raise Forbidden("Quota exceeded, too many server groups.")
    group = ServerGroup(name=body["name"], project_id=ctx.project_id, user_id=ctx.user_id,
                        policy=policy, rules=rules)
    s.add(group)
    s.flush()
    return json_response({"server_group": views.server_group(req, group, [])})


@router.delete("/v2.1/os-server-groups/{group_id}", tx=True)
def delete_group(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    group = _visible(s, ctx, req.path_params["group_id"])
    require_writer(ctx, "os_compute_api:os-server-groups:delete")
    s.delete(group)
    return empty(204)
