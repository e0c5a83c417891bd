"""Nova's security-group routes (compute/security_groups.py does the work).

* the server actions ``addSecurityGroup`` / ``removeSecurityGroup`` (every port of
  the server joins or leaves the group) and ``GET /servers/{id}/os-security-groups``;
* the deprecated ``os-security-groups`` and ``os-security-group-rules`` APIs,
  before microversion 2.36 only (404 from 2.36 on, as Nova).
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import policy
from gureum.compute import security_groups as service
from gureum.compute.api.actions import action
from gureum.compute.api.common import bool_arg, ctx_of, int_arg
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_name_body = {"type": "object", "required": ["name"], "additionalProperties": False,
              "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}}}


def _name(body: Any) -> str:
    name = str(validate(_name_body, body)["name"]).strip()
    if not name:
        raise InvalidInput("Security group name cannot be empty", field="name")
    return name


@action("addSecurityGroup")
def add_security_group(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-security-groups:add")
    service.add_to_server(s, ctx, req.path_params["server_id"], _name(body))
    return empty(202)


@action("removeSecurityGroup")
def remove_security_group(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-security-groups:remove")
    service.remove_from_server(s, ctx, req.path_params["server_id"], _name(body))
    return empty(202)


@router.get("/v2.1/servers/{server_id}/os-security-groups", tx=True)
def server_security_groups(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-security-groups:list")
    return json_response({"security_groups": service.server_groups(
        s, ctx, req.path_params["server_id"])})


# -- the deprecated proxy (before 2.36) -------------------------------------------------

def _proxy(req: Request, rule: str) -> RequestContext:
    if at_least(req, "2.36"):
        raise NotFound()
    return policy.authorize(ctx_of(req), f"os_compute_api:os-security-groups:{rule}")


_text = {"type": "string", "maxLength": 255}
_group_body = {"type": "object", "required": ["security_group"], "properties": {
    "security_group": {"type": "object", "properties": {"name": _text,
                                                        "description": _text}}}}


def _group_fields(req: Request) -> dict[str, str]:
    body = validate(_group_body, req.json())["security_group"]
    out = {}
    for key in ("name", "description"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"Security group {key} should not be empty", field=key)
        out[key] = value.strip()
    return out


@router.get("/v2.1/os-security-groups", tx=True)
def list_groups(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "get")
    groups = service.list_groups(s, ctx, bool(bool_arg(req, "all_tenants")),
                                 int_arg(req, "offset") or 0, int_arg(req, "limit"))
    return json_response({"security_groups": groups})


@router.post("/v2.1/os-security-groups", tx=True)
def create_group(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "create")
    return json_response({"security_group": service.create_group(s, ctx, _group_fields(req))})


@router.get("/v2.1/os-security-groups/{group_id}", tx=True)
def show_group(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "show")
    return json_response({"security_group": service.show_group(
        s, ctx, req.path_params["group_id"])})


@router.put("/v2.1/os-security-groups/{group_id}", tx=True)
def update_group(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "update")
    return json_response({"security_group": service.update_group(
        s, ctx, req.path_params["group_id"], _group_fields(req))})


@router.delete("/v2.1/os-security-groups/{group_id}", tx=True)
def delete_group(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "delete")
    service.delete_group(s, ctx, req.path_params["group_id"])
    return empty(202)


_rule_body = {"type": "object", "required": ["security_group_rule"], "properties": {
    "security_group_rule": {"type": "object", "required": ["parent_group_id"], "properties": {
        "parent_group_id": {"type": ["string", "integer"]},
        "ip_protocol": {"type": ["string", "null"]},
        "from_port": {"type": ["string", "integer", "null"]},
        "to_port": {"type": ["string", "integer", "null"]},
        "cidr": {"type": ["string", "null"]},
        "group_id": {"type": ["string", "null"]}}}}}


@router.post("/v2.1/os-security-group-rules", tx=True)
def create_rule(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "rule:create")
    body = validate(_rule_body, req.json())["security_group_rule"]
    return json_response({"security_group_rule": service.create_rule(s, ctx, body)})


@router.delete("/v2.1/os-security-group-rules/{rule_id}", tx=True)
def delete_rule(req: Request, s: Session) -> Response:
    ctx = _proxy(req, "rule:delete")
    service.delete_rule(s, ctx, req.path_params["rule_id"])
    return empty(202)
