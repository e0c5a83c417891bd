"""/v2.1/os-availability-zone: the zones, and (admin) which hosts and services are in them.

A zone is available while at least one enabled service is in it; a zone whose
services are all disabled is listed as not available (compute/zones.py). The
"internal" zone of the conductor is shown only in the detailed list, as Nova
does.
"""

from __future__ import annotations

from typing import Any

from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import policy, zones
from gureum.compute.api.common import ctx_of, settings_of
from gureum.compute.api.params import reject_unknown
from gureum.compute.views.services import updated_at
from gureum.db import Session

router = Router()


@router.get("/v2.1/os-availability-zone", tx=True)
def list_zones(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-availability-zone:list")
    reject_unknown(req, (), since="2.102")
    found = zones.summary(s, settings_of(req))
    info = [{"zoneName": z, "zoneState": {"available": True}, "hosts": None}
            for z in found.available if z != zones.INTERNAL_ZONE]
    info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None}
             for z in found.not_available if z != zones.INTERNAL_ZONE]
    return json_response({"availabilityZoneInfo": info})


@router.get("/v2.1/os-availability-zone/detail", tx=True)
def detail_zones(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-availability-zone:detail")
    settings = settings_of(req)
    found = zones.summary(s, settings)
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for svc in found.services:
        if svc.disabled:
            continue
        entry = hosts.setdefault(found.zone_of[svc.id], {}).setdefault(svc.host, {})
        entry[zones.api_binary(svc.binary)] = {
            "available": zones.is_up(svc, settings), "active": not svc.disabled,
            "updated_at": updated_at(svc)}
    info: list[dict[str, Any]] = [
        {"zoneName": z, "zoneState": {"available": True}, "hosts": hosts.get(z, {})}
        for z in found.available]
    info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None}
             for z in found.not_available]
    return json_response({"availabilityZoneInfo": info})
