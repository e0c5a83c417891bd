"""The volume services, backends and zones: ``/os-services`` (cinder-scheduler and
cinder-volume rows the conductor's volume manager keeps alive),
``/scheduler-stats/get_pools``, ``/capabilities/{host}``, ``/os-availability-zone``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, json_response
from gureum.db import utcnow
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, schemas, views
from gureum.volume.api import route


def _up(req: Request, row: m.VolumeService) -> bool:
    down_time = req.app_state.settings.compute.service_down_time
    return (utcnow() - row.updated_at) <= dt.timedelta(seconds=down_time)


def _service(req: Request, row: m.VolumeService) -> dict[str, Any]:
    out: dict[str, Any] = {
        "binary": row.binary, "host": row.host, "zone": row.zone,
        "status": "disabled" if row.disabled else "enabled",
        "state": "up" if _up(req, row) else "down", "updated_at": views.iso(row.updated_at),
        "disabled_reason": row.disabled_reason}
    if row.binary == "cinder-volume":
        out.update({"replication_status": "disabled", "active_backend_id": None,
                    "frozen": row.frozen})
    if at_least(req, "3.7"):
        out["cluster"] = None
    if at_least(req, "3.49") and row.binary == "cinder-volume":
        out["backend_state"] = "up" if _up(req, row) else "down"
    return out


@route("GET", "/os-services")
def list_services(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:services:index")
    stmt = select(m.VolumeService).order_by(m.VolumeService.binary, m.VolumeService.host)
    rows = [r for r in s.scalars(stmt)
            if (not req.arg("host") or r.host == req.arg("host"))
            and (not req.arg("binary") or r.binary == req.arg("binary"))]
    return json_response({"services": [_service(req, r) for r in rows]})


def _set_service(req: Request, s: Session, disabled: bool, with_reason: bool) -> Response:
    policy.admin(req.context, "volume_extension:services:update")
    body = req.json()
    if not isinstance(body, dict):
        raise e.bad_request("Malformed request body.")
    host, binary = body.get("host"), body.get("binary") or "cinder-volume"
    if not isinstance(binary, str):
        raise e.bad_request("Invalid input for field/attribute binary.", "binary")
    if not isinstance(host, str) or not host:
        raise e.bad_request("Missing required element 'host' in request body.", "host")
    row = s.scalar(select(m.VolumeService).where(m.VolumeService.host == host,
                                                 m.VolumeService.binary == binary))
    if row is None:
        raise e.not_found("host", host)
    row.disabled = disabled
    reason = schemas.text(body.get("disabled_reason"), "disabled_reason") if with_reason \
        else None
    row.disabled_reason = reason
    out: dict[str, Any] = {"host": host, "binary": binary,
                           "status": "disabled" if disabled else "enabled",
                           "disabled": disabled}
    if with_reason:
        out["disabled_reason"] = reason
    return json_response(out)


@route("PUT", "/os-services/enable")
def enable(req: Request, s: Session) -> Response:
    return _set_service(req, s, False, False)


@route("PUT", "/os-services/disable")
def disable(req: Request, s: Session) -> Response:
    return _set_service(req, s, True, False)


@route("PUT", "/os-services/disable-log-reason")
def disable_reason(req: Request, s: Session) -> Response:
    return _set_service(req, s, True, True)


def _freeze(req: Request, s: Session, frozen: bool) -> Response:
    """``openstack volume host set --disable`` (freeze) / ``--enable`` (thaw): a frozen
    backend takes no management changes (Cinder's replication freeze)."""
    policy.admin(req.context, "volume_extension:services:update")
    body = req.json()
    host = body.get("host") if isinstance(body, dict) else None
    if not isinstance(host, str) or not host:
        raise e.bad_request("Missing required element 'host' in request body.", "host")
    rows = [r for r in _volume_services(s) if r.host == host or r.host.split("@")[0] == host]
    if not rows:
        raise e.not_found("host", host)
    for row in rows:
        row.frozen = frozen
    return json_response({}, 200)


@route("PUT", "/os-services/freeze")
def freeze(req: Request, s: Session) -> Response:
    return _freeze(req, s, True)


@route("PUT", "/os-services/thaw")
def thaw(req: Request, s: Session) -> Response:
    return _freeze(req, s, False)


def _volume_services(s: Session) -> list[m.VolumeService]:
    return list(s.scalars(select(m.VolumeService).where(
        m.VolumeService.binary == "cinder-volume").order_by(m.VolumeService.host)))


@route("GET", "/scheduler-stats/get_pools")
def get_pools(req: Request, s: Session) -> Response:
    policy.admin(req.context, "scheduler_extension:scheduler_stats:get_pools")
    detail = schemas.boolean(req.arg("detail") or "false", "detail")
    pools = []
    for row in _volume_services(s):
        for pool in (row.capabilities or {}).get("pools", []):
            entry: dict[str, Any] = {"name": pool["name"]}
            if detail:
                entry["capabilities"] = {k: v for k, v in pool.items() if k != "name"}
            pools.append(entry)
    return json_response({"pools": pools})


@route("GET", "/capabilities/{hostname}")
def capabilities(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:capabilities")
    host = req.path_params["hostname"]
    row = next((r for r in _volume_services(s) if r.host == host
                or r.host.split("@")[0] == host), None)
    if row is None:
        raise e.not_found("host", host)
    caps = row.capabilities or {}
    pool = (caps.get("pools") or [{}])[0]
    props = {k: {"title": k, "description": k, "type": type(v).__name__}
             for k, v in pool.items() if k in ("thin_provisioning_support",
                                               "thick_provisioning_support", "QoS_support",
                                               "multiattach")}
    return json_response({
        "namespace": f"OS::Storage::Capabilities::{row.host}",
        "vendor_name": caps.get("vendor_name"),
        "volume_backend_name": caps.get("volume_backend_name"), "pool_name": None,
        "driver_version": caps.get("driver_version"),
        "storage_protocol": caps.get("storage_protocol"), "display_name": None,
        "description": None, "visibility": None, "replication_targets": [],
        "properties": props})


@route("GET", "/os-availability-zone")
def zones(req: Request, s: Session) -> Response:
    policy.reader(req.context, "volume_extension:availability_zone_list")
    return json_response({"availabilityZoneInfo": [
        {"zoneName": m.ZONE, "zoneState": {"available": True}}]})
