"""/v2.1/gureum-host-operations: drain and restore a compute host (gureum's own, admins).

``POST`` ``{"operation": {"host": "c01", "kind": "drain", "policy": "live",
"per_server": {"vm-a": "stop"}, "target": "c02", "reason": "maintenance"}}``
starts a drain (or continues the host's open one) and answers 202 with the
operation; ``kind: "restore"`` moves back what the drain moved. ``GET`` lists
them (``?host=``), ``GET /{id}`` shows one with its instances, ``PUT /{id}``
``{"operation": {"status": "paused"}}`` pauses it after the instance in flight.
`gureum host drain|restore` is the client. The rules are compute/host_operations.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import host_operations, policy
from gureum.compute.api.common import ctx_of
from gureum.compute.api.params import int_id, reject_unknown
from gureum.compute.views import host_operations as views
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_RULE = "gureum:host-operations:"
_host = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
_policy = {"type": "string", "enum": list(host_operations.POLICIES)}

create = {"type": "object", "required": ["operation"], "additionalProperties": False,
          "properties": {"operation": {
              "type": "object", "required": ["host", "kind"], "additionalProperties": False,
              "properties": {
                  "host": _host, "kind": {"type": "string", "enum": ["drain", "restore"]},
                  "policy": _policy, "target": _host,
                  "reason": {"type": "string", "minLength": 1, "maxLength": 255},
                  "per_server": {"type": "object", "maxProperties": 1000,
                                 "additionalProperties": _policy}}}}}
update = {"type": "object", "required": ["operation"], "additionalProperties": False,
          "properties": {"operation": {
              "type": "object", "required": ["status"], "additionalProperties": False,
              "properties": {"status": {"type": "string", "enum": ["paused"]}}}}}


def _operation(req: Request, s: Session) -> Any:
    number = int_id(req.path_params["operation_id"])
    if number is None:
        raise NotFound(f"Host operation {req.path_params['operation_id']} could not be "
                       "found.")
    return host_operations.get(s, number)


@router.get("/v2.1/gureum-host-operations", tx=True)
def list_operations(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "list")
    reject_unknown(req, ("host",), since=None)
    found = host_operations.list_operations(s, req.arg("host"))
    return json_response({"operations": [
        views.operation(op, host_operations.described(s, op, with_items=False))
        for op in found]})


@router.get("/v2.1/gureum-host-operations/{operation_id}", tx=True)
def show_operation(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "show")
    op = _operation(req, s)
    return json_response({"operation": views.operation(op, host_operations.described(s, op))})


@router.post("/v2.1/gureum-host-operations", tx=True)
def create_operation(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _RULE + "create")
    body = validate(create, req.json())["operation"]
    if body["kind"] == "drain":
        op = host_operations.start_drain(
            s, ctx, body["host"], body.get("policy"), body.get("per_server"),
            body.get("target"), body.get("reason"))
    else:
        extra = sorted(set(body) - {"host", "kind"})
        if extra:
            raise InvalidInput(f"A restore takes no {extra[0]}.", field=extra[0])
        op = host_operations.start_restore(s, ctx, body["host"])
    return json_response({"operation": views.operation(
        op, host_operations.described(s, op))}, status=202)


@router.put("/v2.1/gureum-host-operations/{operation_id}", tx=True)
def update_operation(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "update")
    validate(update, req.json())
    op = _operation(req, s)
    host_operations.pause(s, op)
    return json_response({"operation": views.operation(op, host_operations.described(s, op))})
