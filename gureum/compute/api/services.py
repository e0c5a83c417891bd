"""/v2.1/os-services: list, enable/disable/force down, delete (admin only).

Before 2.53 a service is named by (host, binary) in the body of
``PUT /os-services/{disable|disable-log-reason|enable|force-down}``; from 2.53
on by its uuid in ``PUT /os-services/{uuid}``. Compute services are shown as
``nova-compute`` and ``nova-compute`` is accepted wherever a binary is named.
The rules (what may be updated, forcing a host up, deleting only an empty
host) are compute/services.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import policy, services, zones
from gureum.compute.api.common import ctx_of, settings_of
from gureum.compute.api.params import int_id, is_uuid, reject_unknown
from gureum.compute.schemas import boolean as _boolean
from gureum.compute.schemas import to_bool
from gureum.compute.views import services as views
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_host = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
_reason = {"type": "string", "minLength": 1, "maxLength": 255}
_binary = {"type": "string", "minLength": 1, "maxLength": 255}

_legacy_fields: dict[str, Any] = {"host": _host, "binary": _binary, "disabled_reason": _reason}
legacy_update = {"type": "object", "required": ["host", "binary"],
                 "additionalProperties": False, "properties": _legacy_fields}
legacy_update_v211 = {**legacy_update,
                      "properties": {**_legacy_fields, "forced_down": _boolean}}
update_v253 = {"type": "object", "additionalProperties": False, "properties": {
    "status": {"type": "string", "enum": ["enabled", "disabled"]},
    "disabled_reason": _reason, "forced_down": _boolean}}


def _view(req: Request, listed: services.Listed) -> dict[str, Any]:
    return views.service(req, listed.service, listed.zone, listed.up)


@router.get("/v2.1/os-services", tx=True)
def list_services(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-services:list")
    reject_unknown(req, ("host", "binary"))
    found = services.list_services(s, settings_of(req), req.arg("host"), req.arg("binary"))
    return json_response({"services": [_view(req, listed) for listed in found]})


@router.put("/v2.1/os-services/{service_id}", tx=True)
def update_service(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-services:update")
    if at_least(req, "2.53"):
        return _update_v253(req, s, req.path_params["service_id"])
    return _update_legacy(req, s, req.path_params["service_id"])


def _update_legacy(req: Request, s: Session, action: str) -> Response:
    actions = {"enable", "disable", "disable-log-reason"}
    if at_least(req, "2.11"):
        actions.add("force-down")
    if action not in actions:
        raise NotFound("Unknown action")
    body = validate(legacy_update_v211 if at_least(req, "2.11") else legacy_update,
                    req.json())
    host, binary = body["host"], body["binary"]
    services.check_updatable(binary, binary)
    out: dict[str, Any] = {"host": host, "binary": binary}
    if action == "force-down":
        if "forced_down" not in body:
            raise InvalidInput("Missing forced_down field", field="forced_down")
        forced = to_bool(body["forced_down"])
        services.set_forced_down(s, services.by_host(s, host, binary), forced)
        out["forced_down"] = forced
        return json_response({"service": out})
    reason = None
    if action == "disable-log-reason":
        if "disabled_reason" not in body:
            raise InvalidInput("Missing disabled reason field", field="disabled_reason")
        reason = body["disabled_reason"]
    services.set_status(services.by_host(s, host, binary), action != "enable", reason)
    out["status"] = "enabled" if action == "enable" else "disabled"
    if reason:
        out["disabled_reason"] = reason
    return json_response({"service": out})


def _update_v253(req: Request, s: Session, service_id: str) -> Response:
    if not is_uuid(service_id):
        raise InvalidInput(f"Invalid uuid {service_id}")
    body = validate(update_v253, req.json())
    svc = services.by_uuid(s, service_id)
    services.check_updatable(svc.binary, zones.api_binary(svc.binary))
    if "status" not in body and "forced_down" not in body:
        raise InvalidInput("No updates were requested. Fields 'status' or 'forced_down' "
                           "should be specified.")
    if body.get("status") == "enabled":
        if body.get("disabled_reason"):
            raise InvalidInput("Specifying 'disabled_reason' with status 'enabled' is "
                               "invalid.", field="disabled_reason")
        services.set_status(svc, False, None)
    elif body.get("status") == "disabled":
        services.set_status(svc, True, body.get("disabled_reason"))
    if "forced_down" in body:
        services.set_forced_down(s, svc, to_bool(body["forced_down"]))
    return json_response({"service": _view(req, services.refreshed(s, svc,
                                                                   settings_of(req)))})


@router.delete("/v2.1/os-services/{service_id}", tx=True)
def delete_service(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-services:delete")
    service_id = req.path_params["service_id"]
    if at_least(req, "2.53"):
        if not is_uuid(service_id):
            raise InvalidInput(f"Invalid uuid {service_id}")
        svc = services.by_uuid(s, service_id, "Service {id} not found.")
    else:
        number = int_id(service_id)
        if number is None:
            raise InvalidInput(f"Invalid input received: id must be an integer: "
                               f"{service_id}", field="id")
        svc = services.by_id(s, number, service_id)
    services.delete(s, svc)
    return empty(204)
