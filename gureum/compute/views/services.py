"""os-services wire shapes: one service, per microversion."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute import zones
from gureum.compute.models import ComputeService
from gureum.compute.views.common import usg_time


def updated_at(svc: ComputeService) -> str | None:
    """When the service last changed or reported, whichever is later (Nova's DB driver)."""
    times = [t for t in (svc.updated_at, svc.last_seen_up) if t is not None]
    return usg_time(max(times)) if times else None


def service(req: Request, svc: ComputeService, zone: str, up: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": svc.uuid if at_least(req, "2.53") else svc.id,
        "binary": zones.api_binary(svc.binary), "host": svc.host, "zone": zone,
        "status": "disabled" if svc.disabled else "enabled",
        "state": "up" if up else "down", "updated_at": updated_at(svc),
        "disabled_reason": svc.disabled_reason,
    }
    if at_least(req, "2.11"):
        out["forced_down"] = bool(svc.forced_down)
    return out
