"""POST /v2.1/os-server-external-events: events other services send about servers
(admin only; the rules are compute/external_events.py)."""

from __future__ import annotations

from gureum.api.transaction import WRITE
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import external_events, policy
from gureum.compute.api.common import ctx_of
from gureum.db import Session

router = Router()

_create = {
    "type": "object", "additionalProperties": False, "required": ["events"],
    "properties": {"events": {
        "type": "array", "minItems": 1,
        "items": {
            "type": "object", "additionalProperties": False,
            "required": ["server_uuid", "name"],
            "properties": {
                "server_uuid": {"type": "string", "format": "uuid"},
                "name": {"type": "string", "enum": list(external_events.NETWORK_EVENTS)},
                "status": {"type": "string", "enum": list(external_events.STATUSES)},
                "tag": {"type": "string", "maxLength": 255},
            }}}},
}


@router.post("/v2.1/os-server-external-events", tx=WRITE)
def create_events(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-server-external-events:create")
    body = validate(_create, req.json())
    events, code = external_events.dispatch(s, body["events"])
    return json_response({"events": events}, status=code)
