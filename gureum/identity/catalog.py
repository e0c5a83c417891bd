"""Regions, services and endpoints: the service catalog."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.errors import Conflict, Forbidden, InvalidInput
from gureum.identity import models as m
from gureum.identity.core import Identity
from gureum.identity.endpoint_filter import filter_catalog, load_project_filter
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


# -- the catalog a token carries -----------------------------------------------------

# Keystone fills these into endpoint URLs, in either $(name)s or %(name)s form
# (e.g. an object-store endpoint http://host/v1/AUTH_$(project_id)s).
_URL_VARIABLE = re.compile(r"[$%]\((\w+)\)s")


def fill_url(url: str, values: dict[str, str | None]) -> str | None:
    """The URL with its variables filled in; None when one has no value here."""
    if "(" not in url:
        return url
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = values.get(match.group(1))
        if found is None:
            missing = True
            return ""
        return found

    filled = _URL_VARIABLE.sub(value, url)
    return None if missing else filled


def catalog_for(ident: Identity, user_id: str, project_id: str | None, s: Session | None
                ) -> list[dict[str, Any]]:
    """The catalog of a token: OS-EP-FILTER applied, URL variables filled.

    An endpoint whose URL needs a value the token does not have (a project id
    in a domain-scoped token) is left out, as Keystone does. Without URL
    variables every token of a project gets the same (cached) catalog object.
    With ``s`` None only the identity cache is used and CacheMiss may be raised.
    """
    catalog, templated = ident.cache.get("project_catalog", project_id,
                                         lambda sess, key: _project_catalog(ident, sess, key), s)
    if not templated:
        return catalog
    values = {"user_id": user_id, "project_id": project_id, "tenant_id": project_id}
    out = []
    for svc in catalog:
        endpoints = []
        for e in svc["endpoints"]:
            url = fill_url(e["url"], values)
            if url is not None:
                endpoints.append(e if url == e["url"] else {**e, "url": url})
        out.append({**svc, "endpoints": endpoints})
    return out


def _project_catalog(ident: Identity, s: Session, project_id: str | None
                     ) -> tuple[list[dict[str, Any]], bool]:
    """(the catalog as filtered for this project, whether any URL has variables)."""
    catalog = ident.catalog(s)
    if project_id is not None:
        catalog = filter_catalog(catalog, load_project_filter(s, project_id))
    templated = any(_URL_VARIABLE.search(e["url"]) for svc in catalog
                    for e in svc["endpoints"])
    return catalog, templated
