"""First start: the Default domain, projects, roles, users and the service catalog.

Bootstrapping runs once (when the Default domain does not exist yet). Every
later start only points the catalog's managed endpoints at the current public
URL, so a cloud restarted on another port keeps working.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.identity import assignments, catalog, service
from gureum.identity import models as m
from gureum.identity.core import Identity

# (type, name, path under the public URL)
SERVICES = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("block-storage", "cinder", "/volume/v3"),
    # devstack registers Block Storage under both types; older clients ask for volumev3.
    ("volumev3", "cinderv3", "/volume/v3"),
]
INTERFACES = ("public", "internal", "admin")
DEFAULT_ROLES = ("reader", "member", "manager", "admin", "service")
IMPLIED_ROLES = (("member", "reader"), ("manager", "member"), ("admin", "manager"))


@dataclass(frozen=True)
class Credentials:
    admin_password: str
    demo_password: str


def new_password() -> str:
    return secrets.token_urlsafe(18)


def is_bootstrapped(ident: Identity) -> bool:
    with ident.db.session(write=False) as s:
        return s.get(m.Domain, service.DEFAULT_DOMAIN_ID) is not None


def bootstrap(ident: Identity, public_url: str, region: str,
              admin_password: str | None = None, demo_password: str | None = None
              ) -> Credentials:
    """Create the initial records. Call only when ``is_bootstrapped`` is False."""
    creds = Credentials(admin_password or new_password(), demo_password or new_password())
    admin_hash = service.hash_password(ident, creds.admin_password)
    demo_hash = service.hash_password(ident, creds.demo_password)
    with ident.db.session() as s:
        service.create_domain(ident, s, {"name": "Default",
                                         "description": "The default domain"},
                              domain_id=service.DEFAULT_DOMAIN_ID)
        projects = {name: service.create_project(ident, s, {
            "name": name, "description": f"Bootstrap project {name}"})
            for name in ("admin", "demo", "service")}
        roles = ensure_default_roles(ident, s)
        admin = service.create_user(ident, s, {
            "name": "admin", "default_project_id": projects["admin"].id,
            "options": {"ignore_lockout_failure_attempts": False}}, admin_hash)
        demo = service.create_user(ident, s, {
            "name": "demo", "default_project_id": projects["demo"].id}, demo_hash)
        for grant in (
            assignments.Grant(m.USER_PROJECT, admin.id, projects["admin"].id, roles["admin"].id),
            assignments.Grant(m.USER_SYSTEM, admin.id, m.SYSTEM_TARGET, roles["admin"].id),
            assignments.Grant(m.USER_DOMAIN, admin.id, service.DEFAULT_DOMAIN_ID,
                              roles["admin"].id),
            assignments.Grant(m.USER_PROJECT, demo.id, projects["demo"].id, roles["member"].id),
        ):
            assignments.add_grant(ident, s, grant)
        catalog.create_region(ident, s, {"description": "The gureum region"}, region_id=region)
        for type_, name, path in SERVICES:
            svc = catalog.create_service(ident, s, {"type": type_, "name": name,
                                                    "description": f"gureum {type_}"})
            for interface in INTERFACES:
                catalog.create_endpoint(ident, s, {
                    "service_id": svc.id, "interface": interface,
                    "url": public_url + path, "region_id": region},
                    extra={"gureum_path": path})
    return creds


def ensure_default_roles(ident: Identity, s: Session) -> dict[str, m.Role]:
    """Keystone's default roles, created when missing (also in clouds bootstrapped
    before they existed): admin implies manager implies member implies reader, and
    service stands alone. New ones are immutable, as ``keystone-manage bootstrap``
    makes them; the old direct admin → member inference is replaced."""
    roles: dict[str, m.Role] = {}
    for name in DEFAULT_ROLES:
        role = s.scalar(select(m.Role).where(m.Role.name == name, m.Role.domain_id == ""))
        if role is None:
            role = assignments.create_role(ident, s, {"name": name,
                                                      "options": {"immutable": True}})
        roles[name] = role
    for prior, implied in IMPLIED_ROLES:
        assignments.add_implied_role(ident, s, roles[prior].id, roles[implied].id)
    stale = s.get(m.ImpliedRole, (roles["admin"].id, roles["member"].id))
    if stale is not None:
        s.delete(stale)
        service.changed(ident, s)
    return roles


def reconcile_roles(ident: Identity) -> None:
    with ident.db.session() as s:
        ensure_default_roles(ident, s)


def reconcile_endpoints(ident: Identity, public_url: str) -> int:
    """Point managed endpoints at the current public URL; return how many changed."""
    changed = 0
    with ident.db.session() as s:
        for e in s.scalars(select(m.Endpoint)):
            path = (e.extra or {}).get("gureum_path")
            if path is None:
                continue
            url = public_url + path
            if e.url != url:
                e.url = url
                changed += 1
        if changed:
            service.changed(ident, s)
    return changed
