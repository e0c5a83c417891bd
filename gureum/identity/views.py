"""Wire shapes of identity resources (Keystone v3), one function per resource."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gureum.identity import models as m


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(base: str, collection: str, ident: str) -> dict[str, str]:
    return {"self": f"{base}/v3/{collection}/{ident}"}


def collection(base: str, path: str, name: str, items: list[dict[str, Any]]
               ) -> dict[str, Any]:
    return {name: items, "links": {"self": f"{base}/v3/{path}", "previous": None,
                                   "next": None}}


def domain(d: m.Domain, base: str) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "tags": list(d.tags or []), "options": dict(d.options or {}),
            "links": links(base, "domains", d.id)}


def project(p: m.Project, base: str) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "domain_id": p.domain_id,
            "description": p.description, "enabled": p.enabled,
            # Keystone reports the domain as the parent of a top-level project.
            "parent_id": p.parent_id or p.domain_id, "is_domain": False,
            "tags": list(p.tags or []), "options": dict(p.options or {}),
            **dict(p.extra or {}), "links": links(base, "projects", p.id)}


def domain_project(d: m.Domain, base: str) -> dict[str, Any]:
    """A domain seen through the projects API (a project acting as a domain)."""
    return {"id": d.id, "name": d.name, "domain_id": None, "description": d.description,
            "enabled": d.enabled, "parent_id": None, "is_domain": True,
            "tags": list(d.tags or []), "options": dict(d.options or {}),
            "links": links(base, "projects", d.id)}


def user(u: m.User, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        **dict(u.extra or {}),
        "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
        "password_expires_at": None, "options": dict(u.options or {}),
        "links": links(base, "users", u.id),
    }
    if u.default_project_id:
        out["default_project_id"] = u.default_project_id
    if u.description:
        out["description"] = u.description
    return out


def group(g: m.Group, base: str) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "domain_id": g.domain_id,
            "description": g.description, "links": links(base, "groups", g.id)}


def role(r: m.Role, base: str) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "domain_id": r.domain_id or None,
            "description": r.description, "options": dict(r.options or {}),
            "links": links(base, "roles", r.id)}


def role_ref(r: m.Role, base: str) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": links(base, "roles", r.id)}


def region(r: m.Region, base: str) -> dict[str, Any]:
    return {"id": r.id, "description": r.description,
            "parent_region_id": r.parent_region_id, **dict(r.extra or {}),
            "links": links(base, "regions", r.id)}


def service(svc: m.Service, base: str) -> dict[str, Any]:
    return {**dict(svc.extra or {}), "id": svc.id, "type": svc.type, "name": svc.name,
            "description": svc.description, "enabled": svc.enabled,
            "links": links(base, "services", svc.id)}


def endpoint(e: m.Endpoint, base: str) -> dict[str, Any]:
    extra = {k: v for k, v in (e.extra or {}).items() if not k.startswith("gureum_")}
    return {**extra, "id": e.id, "interface": e.interface, "region_id": e.region_id,
            "region": e.region_id, "url": e.url, "service_id": e.service_id,
            "enabled": e.enabled, "links": links(base, "endpoints", e.id)}


def app_cred(c: m.ApplicationCredential, roles: list[m.Role], base: str,
             secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id, "name": c.name, "description": c.description or None,
        "expires_at": iso(c.expires_at), "project_id": c.project_id,
        "user_id": c.user_id,
        "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id or None}
                  for r in roles],
        "unrestricted": c.unrestricted,
        "access_rules": [{k: v for k, v in r.items() if k in ("id", "service", "path", "method")}
                         for r in c.access_rules or []],
        "links": {"self": f"{base}/v3/users/{c.user_id}/application_credentials/{c.id}"},
    }
    if secret is not None:
        out["secret"] = secret
    return out


def access_rule(r: m.AccessRule | dict[str, Any], base: str, user_id: str) -> dict[str, Any]:
    """An access rule, from its row or from a credential's copy of it."""
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k)
    return {"id": get("id"), "service": get("service"), "path": get("path"),
            "method": get("method"),
            "links": {"self": f"{base}/v3/users/{user_id}/access_rules/{get('id')}"}}


def registered_limit(r: m.RegisteredLimit, base: str) -> dict[str, Any]:
    return {"id": r.id, "service_id": r.service_id, "region_id": r.region_id or None,
            "resource_name": r.resource_name, "default_limit": r.default_limit,
            "description": r.description, "links": links(base, "registered_limits", r.id)}


def limit(x: m.Limit, reg: m.RegisteredLimit, base: str) -> dict[str, Any]:
    return {"id": x.id, "project_id": x.project_id or None, "domain_id": x.domain_id or None,
            "service_id": reg.service_id, "region_id": reg.region_id or None,
            "resource_name": reg.resource_name, "resource_limit": x.resource_limit,
            "description": x.description, "links": links(base, "limits", x.id)}


def endpoint_group(g: m.EndpointGroup, base: str) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "description": g.description,
            "filters": dict(g.filters or {}),
            "links": {"self": f"{base}/v3/OS-EP-FILTER/endpoint_groups/{g.id}"}}


def credential(c: m.Credential, blob: str, base: str) -> dict[str, Any]:
    return {**dict(c.extra or {}), "id": c.id, "user_id": c.user_id,
            "project_id": c.project_id, "type": c.type, "blob": blob,
            "links": links(base, "credentials", c.id)}


def ec2_credential(c: m.Credential, blob: dict[str, Any], base: str) -> dict[str, Any]:
    """The OS-EC2 shape (``tenant_id``, ``access``, ``secret``) of an ec2 credential."""
    access = blob.get("access")
    return {"user_id": c.user_id, "tenant_id": c.project_id, "access": access,
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"),
            "links": {"self": f"{base}/v3/users/{c.user_id}/credentials/OS-EC2/{access}"}}


def policy(p: m.Policy, base: str) -> dict[str, Any]:
    return {**dict(p.extra or {}), "id": p.id, "type": p.type, "blob": p.blob,
            "links": links(base, "policies", p.id)}


def consumer(c: m.OAuth1Consumer, base: str) -> dict[str, Any]:
    """A consumer without its secret (shown once, when it is created)."""
    return {**dict(c.extra or {}), "id": c.id, "description": c.description,
            "links": links(base, "OS-OAUTH1/consumers", c.id)}
