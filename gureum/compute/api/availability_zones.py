"""/v2.1/os-availability-zone: the zones, and (admin) which hosts and services are in them.

A zone is available while at least one enabled service is in it; a zone whose
services are all disabled is listed as not available. The "internal" zone of
the conductor is shown only in the detailed list, as Nova does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import zones
from gureum.compute.api.common import ctx_of, require_admin, settings_of
from gureum.compute.api.params import reject_unknown
from gureum.compute.models import ComputeService
from gureum.compute.views.services import updated_at

router = Router()


def _zones(s: Session, req: Request) -> tuple[list[ComputeService], dict[int, str],
                                              list[str], list[str]]:
    """Services, each service's zone, available zones and not-available zones."""
    settings = settings_of(req)
    host_zones = zones.host_zones(s)
    services = list(s.scalars(select(ComputeService).order_by(ComputeService.id)))
    zone_of = {svc.id: zones.zone_of_service(svc, host_zones, settings) for svc in services}
    available = sorted({zone_of[svc.id] for svc in services if not svc.disabled})
    not_available = sorted({zone_of[svc.id] for svc in services if svc.disabled}
                           - set(available))
    return services, zone_of, available, not_available


@router.get("/v2.1/os-availability-zone", tx=True)
def list_zones(req: Request, s: Session) -> Response:
    ctx_of(req)
    reject_unknown(req, (), since="2.102")
    _, _, available, not_available = _zones(s, req)
    info = [{"zoneName": z, "zoneState": {"available": True}, "hosts": None}
            for z in available if z != zones.INTERNAL_ZONE]
    info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None}
             for z in not_available if z != zones.INTERNAL_ZONE]
    return json_response({"availabilityZoneInfo": info})


@router.get("/v2.1/os-availability-zone/detail", tx=True)
def detail_zones(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-availability-zone:detail")
    services, zone_of, available, not_available = _zones(s, req)
    settings = settings_of(req)
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for svc in services:
        if svc.disabled:
            continue
        entry = hosts.setdefault(zone_of[svc.id], {}).setdefault(svc.host, {})
        entry[zones.api_binary(svc.binary)] = {
            "available": zones.is_up(svc, settings), "active": not svc.disabled,
            "updated_at": updated_at(svc)}
    info: list[dict[str, Any]] = [
        {"zoneName": z, "zoneState": {"available": True}, "hosts": hosts.get(z, {})}
        for z in available]
    info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None}
             for z in not_available]
    return json_response({"availabilityZoneInfo": info})
