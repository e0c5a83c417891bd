"""Regions, services and endpoints: the service catalog."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.errors import Conflict, Forbidden, InvalidInput
from gureum.identity import models as m
from gureum.identity.core import Identity
from gureum.identity.limits import delete_for_service_or_region
from gureum.identity.service import changed, get_or_404


def create_region(ident: Identity, s: Session, body: dict[str, Any],
                  region_id: str | None = None) -> m.Region:
    rid = region_id or body.get("id")
    if rid and s.get(m.Region, rid) is not None:
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {rid}.")
    parent = body.get("parent_region_id")
    if parent:
        get_or_404(s, m.Region, parent, "region")
    extra = {k: v for k, v in body.items()
             if k not in ("id", "description", "parent_region_id")}
    r = m.Region(description=body.get("description") or "", parent_region_id=parent,
                 extra=extra)
    if rid:
        r.id = rid
    s.add(r)
    s.flush()
    changed(ident, s)
    return r


def update_region(ident: Identity, s: Session, region_id: str, body: dict[str, Any]
                  ) -> m.Region:
    r = get_or_404(s, m.Region, region_id, "region")
    if "id" in body and body["id"] != r.id:
        raise InvalidInput("The id of a region cannot change.", field="region.id")
    if "description" in body:
        r.description = body["description"] or ""
    if "parent_region_id" in body:
        parent = body["parent_region_id"]
        if parent:
            get_or_404(s, m.Region, parent, "region")
            if parent == r.id:
                raise InvalidInput("A region cannot be its own parent.",
                                   field="region.parent_region_id")
        r.parent_region_id = parent
    changed(ident, s)
    return r


def delete_region(ident: Identity, s: Session, region_id: str) -> None:
    r = get_or_404(s, m.Region, region_id, "region")
    if s.scalar(select(m.Region.id).where(m.Region.parent_region_id == r.id).limit(1)):
        raise Forbidden(f"Cannot delete region {r.id}: it has child regions.")
    s.execute(delete(m.Endpoint).where(m.Endpoint.region_id == r.id))
    delete_for_service_or_region(s, region_id=r.id)
    s.delete(r)
    changed(ident, s)


def create_service(ident: Identity, s: Session, body: dict[str, Any]) -> m.Service:
    extra = {k: v for k, v in body.items()
             if k not in ("id", "type", "name", "description", "enabled")}
    svc = m.Service(type=body["type"], name=body.get("name") or "",
                    description=body.get("description") or "",
                    enabled=body.get("enabled", True), extra=extra)
    s.add(svc)
    s.flush()
    changed(ident, s)
    return svc


def update_service(ident: Identity, s: Session, service_id: str, body: dict[str, Any]
                   ) -> m.Service:
    svc = get_or_404(s, m.Service, service_id, "service")
    for key in ("type", "name", "enabled"):
        if key in body:
            setattr(svc, key, body[key])
    if "description" in body:
        svc.description = body["description"] or ""
    changed(ident, s)
    return svc


def delete_service(ident: Identity, s: Session, service_id: str) -> None:
    svc = get_or_404(s, m.Service, service_id, "service")
    s.execute(delete(m.Endpoint).where(m.Endpoint.service_id == svc.id))
    delete_for_service_or_region(s, service_id=svc.id)
    s.delete(svc)
    changed(ident, s)


def create_endpoint(ident: Identity, s: Session, body: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> m.Endpoint:
    get_or_404(s, m.Service, body["service_id"], "service")
    region = body.get("region_id") or body.get("region")
    if region and s.get(m.Region, region) is None:
        # Keystone creates a missing region on the fly for the legacy 'region' field.
        s.add(m.Region(id=region))
    e = m.Endpoint(service_id=body["service_id"], interface=body["interface"],
                   url=body["url"], region_id=region, enabled=body.get("enabled", True),
                   extra=dict(extra or {}))
    s.add(e)
    s.flush()
    changed(ident, s)
    return e


def update_endpoint(ident: Identity, s: Session, endpoint_id: str, body: dict[str, Any]
                    ) -> m.Endpoint:
    e = get_or_404(s, m.Endpoint, endpoint_id, "endpoint")
    if "service_id" in body:
        get_or_404(s, m.Service, body["service_id"], "service")
        e.service_id = body["service_id"]
    region = body.get("region_id", body.get("region", e.region_id))
    if region != e.region_id:
        if region:
            get_or_404(s, m.Region, region, "region")
        e.region_id = region
    for key in ("interface", "url", "enabled"):
        if key in body:
            setattr(e, key, body[key])
    changed(ident, s)
    return e


def delete_endpoint(ident: Identity, s: Session, endpoint_id: str) -> None:
    e = get_or_404(s, m.Endpoint, endpoint_id, "endpoint")
    s.delete(e)
    changed(ident, s)
