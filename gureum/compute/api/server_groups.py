"""/v2.1/os-server-groups: groups whose members the scheduler keeps together or apart.

Schemas and microversions here; the quota and who sees which group are
compute/server_groups.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import policy, schemas, server_groups
from gureum.compute.api.common import ctx_of, int_arg, settings_of
from gureum.compute.api.params import MAX_LIMIT, reject_unknown
from gureum.compute.views import server_groups as views
from gureum.db import Session
from gureum.errors import InvalidInput

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


_RULE = "os_compute_api:os-server-groups:"


def _visible(req: Request, s: Session) -> Any:
    ctx = policy.authorize(ctx_of(req), _RULE + "show")
    return server_groups.visible(s, ctx, req.path_params["group_id"])


@router.get("/v2.1/os-server-groups", tx=True)
def list_groups(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _RULE + "index")
    reject_unknown(req, ("all_projects", "limit", "offset"))
    # A member's all_projects is ignored, as with Nova.
    everyone = "all_projects" in req.query and policy.allowed(ctx, _RULE + "index:all_projects")
    offset = min(int_arg(req, "offset") or 0, 2**31)
    limit = min(int_arg(req, "limit") or MAX_LIMIT, MAX_LIMIT)
    groups = server_groups.list_groups(s, ctx, everyone, offset, limit)
    members = server_groups.members_of(s, [g.id for g in groups])
    return json_response({"server_groups": [views.server_group(req, g, members[g.id])
                                            for g in groups]})


@router.get("/v2.1/os-server-groups/{group_id}", tx=True)
def show_group(req: Request, s: Session) -> Response:
    group = _visible(req, s)
    return json_response({"server_group": views.server_group(
        req, group, server_groups.members_of(s, [group.id])[group.id])})


@router.post("/v2.1/os-server-groups", tx=True)
def create_group(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _RULE + "create")
    if at_least(req, "2.64"):
        body = validate(create_v264, req.json())["server_group"]
        kind = body["policy"]
        rules = {k: int(v) for k, v in (body.get("rules") or {}).items()}
        if any(not 1 <= v < 2**31 for v in rules.values()):
            raise InvalidInput("Invalid input for field/attribute max_server_per_host: it "
                               "must be a positive integer.",
                               field="server_group.rules.max_server_per_host")
        if rules and kind != "anti-affinity":
            raise InvalidInput("Only anti-affinity policy supports rules.",
                               field="server_group.rules")
    else:
        schema = create_v215 if at_least(req, "2.15") else create_v21
        body = validate(schema, req.json())["server_group"]
        kind, rules = body["policies"][0], {}
    group = server_groups.create(s, ctx, body["name"], kind, rules, settings_of(req))
    return json_response({"server_group": views.server_group(req, group, [])})


@router.delete("/v2.1/os-server-groups/{group_id}", tx=True)
def delete_group(req: Request, s: Session) -> Response:
    group = _visible(req, s)
    policy.authorize(ctx_of(req), _RULE + "delete")
    server_groups.delete(s, group)
    return empty(204)
