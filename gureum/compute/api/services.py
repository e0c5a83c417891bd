"""/v2.1/os-services: list, enable/disable/force down, delete (admin only).

Before 2.53 a service is named by (host, binary) in the body of
``PUT /os-services/{disable|disable-log-reason|enable|force-down}``; from 2.53
on by its uuid in ``PUT /os-services/{uuid}``. Compute services are shown as
``nova-compute`` and ``nova-compute`` is accepted wherever a binary is named.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import zones
from gureum.compute.api.common import ctx_of, require_admin, settings_of
from gureum.compute.api.params import int_id, is_uuid, reject_unknown
from gureum.compute.models import (
    AggregateHost,
    ComputeNode,
    ComputeService,
    Instance,
    Migration,
)
from gureum.compute.schemas import boolean as _boolean
from gureum.compute.schemas import to_bool
from gureum.compute.views import services as views
from gureum.errors import Conflict, InvalidInput, NotFound

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

# Migrations that still hold resources on their hosts (Nova's "in progress").
IN_PROGRESS = ("queued", "pre-migrating", "migrating", "post-migrating", "preparing",
               "running", "finished", "confirming", "reverting", "accepted")


def _view(req: Request, s: Session, svc: ComputeService) -> dict[str, Any]:
    settings = settings_of(req)
    zone = zones.zone_of_service(svc, zones.host_zones(s), settings)
    return views.service(req, svc, zone, zones.is_up(svc, settings))


@router.get("/v2.1/os-services", tx=True)
def list_services(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-services:list")
    reject_unknown(req, ("host", "binary"))
    stmt = select(ComputeService).order_by(ComputeService.id)
    host = req.arg("host")
    if host:
        stmt = stmt.where(ComputeService.host == host)
    binary = req.arg("binary")
    if binary:
        stmt = stmt.where(ComputeService.binary == zones.internal_binary(binary))
    settings = settings_of(req)
    host_zones = zones.host_zones(s)
    items = [views.service(req, svc, zones.zone_of_service(svc, host_zones, settings),
                           zones.is_up(svc, settings)) for svc in s.scalars(stmt)]
    return json_response({"services": items})


def _not_compute(binary: str) -> InvalidInput:
    return InvalidInput(f"Updating a {binary} service is not supported. Only nova-compute "
                        "services can be updated.", field="binary")


def _check_no_done_evacuations(s: Session, host: str) -> None:
    """Forcing a host up while evacuations from it await its restart would lose them."""
    found = s.scalar(select(Migration.id).where(
        Migration.source_compute == host, Migration.status == "done",
        Migration.migration_type == "evacuation").limit(1))
    if found is not None:
        raise InvalidInput(f"Unable to force up host {host} as `done` evacuation migration "
                           "records remain associated with the host. Ensure the compute "
                           "service has been restarted, allowing these records to move to "
                           "`completed` before retrying this request.")


@router.put("/v2.1/os-services/{service_id}", tx=True)
def update_service(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-services:update")
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
    if not zones.is_compute(zones.internal_binary(binary)):
        raise _not_compute(binary)
    svc = s.scalar(select(ComputeService).where(
        ComputeService.host == host,
        ComputeService.binary == zones.internal_binary(binary)))
    out: dict[str, Any] = {"host": host, "binary": binary}
    if action == "force-down":
        if "forced_down" not in body:
            raise InvalidInput("Missing forced_down field", field="forced_down")
        forced = to_bool(body["forced_down"])
        if svc is None:
            raise NotFound(f"Could not find binary {binary} on host {host}.")
        if not forced:
            _check_no_done_evacuations(s, host)
        svc.forced_down = forced
        out["forced_down"] = forced
        return json_response({"service": out})
    reason = None
    if action == "disable-log-reason":
        if "disabled_reason" not in body:
            raise InvalidInput("Missing disabled reason field", field="disabled_reason")
        reason = body["disabled_reason"]
    if svc is None:
        raise NotFound(f"Could not find binary {binary} on host {host}.")
    svc.disabled = action != "enable"
    svc.disabled_reason = reason
    out["status"] = "enabled" if action == "enable" else "disabled"
    if reason:
        out["disabled_reason"] = reason
    return json_response({"service": out})


def _update_v253(req: Request, s: Session, service_id: str) -> Response:
    if not is_uuid(service_id):
        raise InvalidInput(f"Invalid uuid {service_id}")
    body = validate(update_v253, req.json())
    svc = s.scalar(select(ComputeService).where(ComputeService.uuid == service_id))
    if svc is None:
        raise NotFound(f"Service {service_id} could not be found.")
    if not zones.is_compute(svc.binary):
        raise _not_compute(zones.api_binary(svc.binary))
    if "status" not in body and "forced_down" not in body:
        raise InvalidInput("No updates were requested. Fields 'status' or 'forced_down' "
                           "should be specified.")
    if body.get("status") == "enabled":
        if body.get("disabled_reason"):
            raise InvalidInput("Specifying 'disabled_reason' with status 'enabled' is "
                               "invalid.", field="disabled_reason")
        svc.disabled, svc.disabled_reason = False, None
    elif body.get("status") == "disabled":
        svc.disabled, svc.disabled_reason = True, body.get("disabled_reason")
    if "forced_down" in body:
        forced = to_bool(body["forced_down"])
        if not forced:
            _check_no_done_evacuations(s, svc.host)
        svc.forced_down = forced
    s.flush()
    return json_response({"service": _view(req, s, svc)})


@router.delete("/v2.1/os-services/{service_id}", tx=True)
def delete_service(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-services:delete")
    service_id = req.path_params["service_id"]
    if at_least(req, "2.53"):
        if not is_uuid(service_id):
            raise InvalidInput(f"Invalid uuid {service_id}")
        svc = s.scalar(select(ComputeService).where(ComputeService.uuid == service_id))
    else:
        number = int_id(service_id)
        if number is None:
            raise InvalidInput(f"Invalid input received: id must be an integer: "
                               f"{service_id}", field="id")
        svc = s.get(ComputeService, number)
    if svc is None:
        raise NotFound(f"Service {service_id} not found.")
    if zones.is_compute(svc.binary):
        _check_host_is_empty(s, svc.host)
        for agg_host in s.scalars(select(AggregateHost).where(AggregateHost.host == svc.host)):
            s.delete(agg_host)
        for node in s.scalars(select(ComputeNode).where(ComputeNode.host == svc.host)):
            s.delete(node)
    s.delete(svc)
    return empty(204)


def _check_host_is_empty(s: Session, host: str) -> None:
    count = s.scalar(select(func.count(Instance.id)).where(
        Instance.host == host, Instance.deleted.is_(False))) or 0
    if count:
        raise Conflict("Unable to delete compute service that is hosting instances. Migrate "
                       "or delete the instances first.")
    moving = s.scalar(select(func.count(Migration.id)).where(
        or_(Migration.source_compute == host, Migration.dest_compute == host),
        Migration.status.in_(IN_PROGRESS))) or 0
    if moving:
        raise Conflict("Unable to delete compute service that has in-progress migrations. "
                       "Complete the migrations or delete the instances first.")
