"""Flavors: who sees which, creating and removing them, extra specs and access lists.

A public flavor is seen by everyone, a private one by admins and the projects
on its access list; a disabled flavor is never listed. Ids and names are
unique, sizes must fit Nova's 32-bit columns, and a public flavor has no
access list. An instance keeps a snapshot of its flavor (compute/servers.py),
so changing or deleting a flavor never changes a running server. The caller
owns the session and has checked the policy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from gureum.compute.listing import page
from gureum.compute.models import Flavor, FlavorAccess
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, NotFound
from gureum.paging import SortKey

SORT_COLUMNS = {"flavorid": Flavor.id, "id": Flavor.id, "name": Flavor.name,
                "memory_mb": Flavor.ram, "ram": Flavor.ram, "vcpus": Flavor.vcpus,
                "root_gb": Flavor.disk, "disk": Flavor.disk, "created_at": Flavor.created_at}
_MAX = 2**31 - 1


def visible(s: Session, ctx: RequestContext, flavor_id: str) -> Flavor:
    f = s.get(Flavor, flavor_id)
    if f is not None and not f.is_public and not ctx.is_admin and \
            s.get(FlavorAccess, (f.id, ctx.project_id or "")) is None:
        f = None
    if f is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.", kind="flavor")
    return f


@dataclass
class FlavorQuery:
    is_public: bool | None = True  # admins only: None for all; others see what they may
    min_ram: int | None = None
    min_disk: int | None = None
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int | None = None
    marker: str | None = None


def list_flavors(s: Session, ctx: RequestContext, q: FlavorQuery) -> list[Flavor]:
    seen: list[ColumnElement[bool]] = [Flavor.disabled.is_(False)]
    if ctx.is_admin:
        # Only admins choose; a member's is_public is ignored, as with Nova.
        if q.is_public is not None:
            seen.append(Flavor.is_public.is_(q.is_public))
    else:
        granted = select(FlavorAccess.flavor_id).where(
            FlavorAccess.project_id == ctx.project_id)
        seen.append(Flavor.is_public.is_(True) | Flavor.id.in_(granted))
    stmt = select(Flavor).where(*seen)
    if q.min_ram is not None:
        stmt = stmt.where(Flavor.ram >= q.min_ram)
    if q.min_disk is not None:
        stmt = stmt.where(Flavor.disk >= q.min_disk)
    if q.sort_key not in SORT_COLUMNS:
        raise InvalidInput(f"Invalid input for query parameters sort_key. Value: "
                           f"{q.sort_key}.", field="sort_key")
    if q.sort_dir not in ("asc", "desc"):
        raise InvalidInput(f"Invalid input for query parameters sort_dir. Value: "
                           f"{q.sort_dir}.", field="sort_dir")
    keys = [SortKey(SORT_COLUMNS[q.sort_key], q.sort_dir == "asc"), SortKey(Flavor.id)]
    # The marker is looked up among the flavors the caller sees, not the filtered ones.
    return page(s, stmt, keys, q.limit, q.marker, Flavor.id == q.marker, *seen,
                not_found="marker [{marker}] not found")


def create(s: Session, body: dict[str, Any], is_public: bool) -> Flavor:
    """A new flavor from a (validated) create body."""
    flavor_id = str(body.get("id") or uuid.uuid4())
    if s.get(Flavor, flavor_id) is not None:
        raise Conflict(f"Flavor with ID {flavor_id} already exists.")
    if s.scalar(select(Flavor.id).where(Flavor.name == body["name"])):
        raise Conflict(f"Flavor with name {body['name']} already exists.")
    try:
        f = Flavor(id=flavor_id, name=body["name"], ram=int(body["ram"]),
                   vcpus=int(body["vcpus"]), disk=int(body["disk"]),
                   ephemeral=int(body.get("OS-FLV-EXT-DATA:ephemeral") or 0),
                   swap=int(body.get("swap") or 0),
                   rxtx_factor=float(body.get("rxtx_factor") or 1.0), is_public=is_public,
                   description=body.get("description"))
    except ValueError as exc:
        raise InvalidInput(f"Invalid flavor: {exc}") from None
    if f.ram < 1 or f.vcpus < 1 or f.ram > _MAX or f.vcpus > _MAX or f.disk > _MAX or \
            f.rxtx_factor <= 0:
        raise InvalidInput("Invalid flavor: ram and vcpus must be at least 1 and sizes "
                           "must fit a 32-bit integer.", field="flavor")
    s.add(f)
    s.flush()
    return f


def set_description(s: Session, ctx: RequestContext, flavor_id: str,
                    description: str | None) -> Flavor:
    f = visible(s, ctx, flavor_id)
    f.description = description
    return f


def delete(s: Session, ctx: RequestContext, flavor_id: str) -> None:
    s.delete(visible(s, ctx, flavor_id))


# -- extra specs -----------------------------------------------------------------------

def _as_text(specs: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) if not isinstance(v, str) else v for k, v in specs.items()}


def extra_specs(s: Session, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
    return dict(visible(s, ctx, flavor_id).extra_specs or {})


def extra_spec(s: Session, ctx: RequestContext, flavor_id: str, key: str) -> Any:
    f = visible(s, ctx, flavor_id)
    if key not in (f.extra_specs or {}):
        raise NotFound(f"Flavor {f.id} has no extra specs with key {key}.")
    return f.extra_specs[key]


def set_extra_specs(s: Session, ctx: RequestContext, flavor_id: str,
                    specs: dict[str, Any]) -> dict[str, str]:
    """Merge specs (values stored as text, as Nova does); the specs given."""
    f = visible(s, ctx, flavor_id)
    text = _as_text(specs)
    f.extra_specs = {**(f.extra_specs or {}), **text}
    return text


def delete_extra_spec(s: Session, ctx: RequestContext, flavor_id: str, key: str) -> None:
    f = visible(s, ctx, flavor_id)
    if key not in (f.extra_specs or {}):
        raise NotFound(f"Flavor {f.id} has no extra specs with key {key}.")
    f.extra_specs = {k: v for k, v in f.extra_specs.items() if k != key}


# -- access ------------------------------------------------------------------------------

def access_list(s: Session, f: Flavor) -> list[FlavorAccess]:
    return list(s.scalars(select(FlavorAccess).where(FlavorAccess.flavor_id == f.id)))


def private(s: Session, ctx: RequestContext, flavor_id: str) -> Flavor:
    """A flavor with an access list: public flavors have none (404)."""
    f = visible(s, ctx, flavor_id)
    if f.is_public:
        raise NotFound("Access list not available for public flavors.")
    return f


def change_access(s: Session, ctx: RequestContext, flavor_id: str, project_id: str,
                  add: bool) -> Flavor:
    """Grant or withdraw a project's access to a private flavor."""
    f = visible(s, ctx, flavor_id)
    if f.is_public:
        raise Conflict("Can not add access to a public flavor.")
    row = s.get(FlavorAccess, (f.id, project_id))
    if add:
        if row is not None:
            raise Conflict(f"Flavor access already exists for flavor {f.id} and project "
                           f"{project_id} combination.")
        s.add(FlavorAccess(flavor_id=f.id, project_id=project_id))
    else:
        if row is None:
            raise NotFound(f"Flavor access not found for {f.id} / {project_id} combination.")
        s.delete(row)
    s.flush()
    return f


DEFAULT_FLAVORS = [  # devstack's set, with its ids
    ("1", "m1.tiny", 512, 1, 1), ("2", "m1.small", 2048, 20, 1),
    ("3", "m1.medium", 4096, 40, 2), ("4", "m1.large", 8192, 80, 4),
    ("5", "m1.xlarge", 16384, 160, 8), ("42", "m1.nano", 128, 1, 1),
    ("84", "m1.micro", 192, 1, 1),
]


def create_default_flavors(s: Session) -> int:
    made = 0
    for flavor_id, name, ram, disk, vcpus in DEFAULT_FLAVORS:
        if s.get(Flavor, flavor_id) is None:
            s.add(Flavor(id=flavor_id, name=name, ram=ram, disk=disk, vcpus=vcpus))
            made += 1
    return made
