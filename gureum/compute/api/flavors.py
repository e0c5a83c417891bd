"""/v2.1/flavors, extra specs and flavor access."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import schemas
from gureum.compute.api.common import ctx_of, int_arg, require_admin
from gureum.compute.api.params import limit_marker, page, reject_unknown
from gureum.compute.models import Flavor, FlavorAccess
from gureum.compute.views import flavors as views
from gureum.compute.views.common import next_link
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, NotFound
from gureum.paging import SortKey
from gureum.query import parse_bool

router = Router()

_spec_key = {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": r"^[a-zA-Z0-9-_:. ]{1,255}$"}
_spec_value = {"type": ["string", "integer", "number", "boolean"]}
_description = {**schemas.description, "maxLength": 65535}  # a TEXT column

flavor_create = {
    "type": "object", "required": ["flavor"], "additionalProperties": False,
    "properties": {"flavor": {
        "type": "object", "required": ["name", "ram", "vcpus", "disk"],
        "additionalProperties": False,
        "properties": {
            "name": schemas.name,
            "id": {"type": ["string", "integer", "null"], "minLength": 1, "maxLength": 255,
                   "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
            "ram": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
            "vcpus": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
            "disk": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
            "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"],
                                          "pattern": "^[0-9]*$", "minimum": 0},
            "swap": {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0},
            "rxtx_factor": {"type": ["number", "string"],
                            "exclusiveMinimum": 0},
            "os-flavor-access:is_public": schemas.boolean,
            "description": _description,
        },
    }},
}
flavor_update = {"type": "object", "required": ["flavor"], "additionalProperties": False,
                 "properties": {"flavor": {
                     "type": "object", "required": ["description"],
                     "additionalProperties": False,
                     "properties": {"description": _description}}}}
extra_specs_create = {"type": "object", "required": ["extra_specs"],
                      "additionalProperties": False,
                      "properties": {"extra_specs": {
                          "type": "object",
                          "patternProperties": {r"^[a-zA-Z0-9-_:. ]{1,255}$": _spec_value},
                          "additionalProperties": False}}}
access_action = {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "properties": {
                     "addTenantAccess": {"type": "object", "required": ["tenant"],
                                         "properties": {"tenant": {"type": "string",
                                                                   "minLength": 1}}},
                     "removeTenantAccess": {"type": "object", "required": ["tenant"],
                                            "properties": {"tenant": {"type": "string",
                                                                      "minLength": 1}}}},
                 "additionalProperties": False}


def visible(s: Session, ctx: RequestContext, flavor_id: str) -> Flavor:
    f = s.get(Flavor, flavor_id)
    if f is not None and not f.is_public and not ctx.is_admin and \
            s.get(FlavorAccess, (f.id, ctx.project_id or "")) is None:
        f = None
    if f is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.", kind="flavor")
    return f


_LIST_QUERY = ("limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir")
_SORT_COLUMNS = {"flavorid": Flavor.id, "id": Flavor.id, "name": Flavor.name,
                 "memory_mb": Flavor.ram, "ram": Flavor.ram, "vcpus": Flavor.vcpus,
                 "root_gb": Flavor.disk, "disk": Flavor.disk, "created_at": Flavor.created_at}


def _is_public_filter(value: str | None) -> bool | None:
    """Nova's is_public query: absent → public only, "none" → all, else a strict boolean."""
    if value is None:
        return True
    if value.lower() == "none":
        return None
    parsed = parse_bool(value)
    if parsed is None:
        raise InvalidInput(f"Invalid is_public filter [{value}]", field="is_public")
    return parsed


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = ctx_of(req)
    reject_unknown(req, _LIST_QUERY)
    visible: list[ColumnElement[bool]] = [Flavor.disabled.is_(False)]
    if ctx.is_admin:
        # Only admins choose; a member's is_public is ignored, as with Nova.
        is_public = _is_public_filter(req.arg("is_public"))
        if is_public is not None:
            visible.append(Flavor.is_public.is_(is_public))
    else:
        granted = select(FlavorAccess.flavor_id).where(
            FlavorAccess.project_id == ctx.project_id)
        visible.append(Flavor.is_public.is_(True) | Flavor.id.in_(granted))
    stmt = select(Flavor).where(*visible)
    min_ram = int_arg(req, "minRam")
    if min_ram is not None:
        stmt = stmt.where(Flavor.ram >= min_ram)
    min_disk = int_arg(req, "minDisk")
    if min_disk is not None:
        stmt = stmt.where(Flavor.disk >= min_disk)
    sort_key = req.arg("sort_key") or "flavorid"
    if sort_key not in _SORT_COLUMNS:
        raise InvalidInput(f"Invalid input for query parameters sort_key. Value: {sort_key}.",
                           field="sort_key")
    sort_dir = req.arg("sort_dir") or "asc"
    if sort_dir not in ("asc", "desc"):
        raise InvalidInput(f"Invalid input for query parameters sort_dir. Value: {sort_dir}.",
                           field="sort_dir")
    keys = [SortKey(_SORT_COLUMNS[sort_key], sort_dir == "asc"), SortKey(Flavor.id)]
    limit, marker = limit_marker(req)
    # The marker is looked up among the flavors the caller sees, not the filtered ones.
    rows = page(s, stmt, keys, limit, marker, Flavor.id == marker, *visible,
                not_found="marker [{marker}] not found")
    items = [views.flavor(req, f, detail=detail) for f in rows]
    body: dict[str, Any] = {"flavors": items}
    links = next_link(req, "flavors/detail" if detail else "flavors", items, limit)
    if links:
        body["flavors_links"] = links
    return json_response(body)


@router.get("/v2.1/flavors", tx=True)
def list_flavors(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/flavors/detail", tx=True)
def list_flavors_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


@router.get("/v2.1/flavors/{flavor_id}", tx=True)
def show_flavor(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    return json_response({"flavor": views.flavor(req, visible(s, ctx, req.path_params[
        "flavor_id"]))})


@router.post("/v2.1/flavors", tx=True)
def create_flavor(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-manage:create")
    body = validate(flavor_create, req.json())["flavor"]
    if "description" in body and not at_least(req, "2.55"):
        raise InvalidInput("Additional properties are not allowed ('description' was "
                           "unexpected)", field="flavor.description")
    flavor_id = str(body.get("id") or uuid.uuid4())
    if s.get(Flavor, flavor_id) is not None:
        raise Conflict(f"Flavor with ID {flavor_id} already exists.")
    if s.scalar(select(Flavor.id).where(Flavor.name == body["name"])):
        raise Conflict(f"Flavor with name {body['name']} already exists.")
    public = schemas.to_bool(body.get("os-flavor-access:is_public", True))
    try:
        f = Flavor(id=flavor_id, name=body["name"], ram=int(body["ram"]),
                   vcpus=int(body["vcpus"]), disk=int(body["disk"]),
                   ephemeral=int(body.get("OS-FLV-EXT-DATA:ephemeral") or 0),
                   swap=int(body.get("swap") or 0),
                   rxtx_factor=float(body.get("rxtx_factor") or 1.0), is_public=public,
                   description=body.get("description"))
    except ValueError as exc:
        raise InvalidInput(f"Invalid flavor: {exc}") from None
    if f.ram < 1 or f.vcpus < 1 or f.ram > 2**31 - 1 or f.vcpus > 2**31 - 1 or \
            f.disk > 2**31 - 1 or f.rxtx_factor <= 0:
        raise InvalidInput("Invalid flavor: ram and vcpus must be at least 1 and sizes "
                           "must fit a 32-bit integer.", field="flavor")
    s.add(f)
    s.flush()
    return json_response({"flavor": views.flavor(req, f)})


@router.put("/v2.1/flavors/{flavor_id}", tx=True)
def update_flavor(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-manage:update")
    if not at_least(req, "2.55"):
        raise NotFound("The resource could not be found.")
    body = validate(flavor_update, req.json())["flavor"]
    f = visible(s, ctx, req.path_params["flavor_id"])
    f.description = body["description"]
    return json_response({"flavor": views.flavor(req, f)})


@router.delete("/v2.1/flavors/{flavor_id}", tx=True)
def delete_flavor(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-manage:delete")
    f = visible(s, ctx, req.path_params["flavor_id"])
    s.delete(f)
    return empty(202)


# -- extra specs -----------------------------------------------------------------------

def _specs_out(specs: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) if not isinstance(v, str) else v for k, v in specs.items()}


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs", tx=True)
def list_specs(req: Request, s: Session) -> Response:
    f = visible(s, ctx_of(req), req.path_params["flavor_id"])
    return json_response({"extra_specs": dict(f.extra_specs or {})})


@router.post("/v2.1/flavors/{flavor_id}/os-extra_specs", tx=True)
def create_specs(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-extra-specs:create")
    body = validate(extra_specs_create, req.json())
    f = visible(s, ctx, req.path_params["flavor_id"])
    specs = _specs_out(body["extra_specs"])
    f.extra_specs = {**(f.extra_specs or {}), **specs}
    return json_response({"extra_specs": specs})


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tx=True)
def show_spec(req: Request, s: Session) -> Response:
    f = visible(s, ctx_of(req), req.path_params["flavor_id"])
    key = req.path_params["key"]
    if key not in (f.extra_specs or {}):
        raise NotFound(f"Flavor {f.id} has no extra specs with key {key}.")
    return json_response({key: f.extra_specs[key]})


@router.put("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tx=True)
def update_spec(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-extra-specs:update")
    key = req.path_params["key"]
    body = req.json()
    if not isinstance(body, dict) or len(body) != 1 or key not in body:
        raise InvalidInput("Request body and URI mismatch", field=key)
    validate({"type": "object", "properties": {key: _spec_value}}, body)
    f = visible(s, ctx, req.path_params["flavor_id"])
    specs = _specs_out(body)
    f.extra_specs = {**(f.extra_specs or {}), **specs}
    return json_response(specs)


@router.delete("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tx=True)
def delete_spec(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-extra-specs:delete")
    f = visible(s, ctx, req.path_params["flavor_id"])
    key = req.path_params["key"]
    if key not in (f.extra_specs or {}):
        raise NotFound(f"Flavor {f.id} has no extra specs with key {key}.")
    f.extra_specs = {k: v for k, v in f.extra_specs.items() if k != key}
    return empty(200)


# -- access -------------------------------------------------------------------------------

def _access(s: Session, f: Flavor) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": f.id, "tenant_id": a.project_id} for a in
                              s.scalars(select(FlavorAccess).where(
                                  FlavorAccess.flavor_id == f.id))]}


@router.get("/v2.1/flavors/{flavor_id}/os-flavor-access", tx=True)
def list_access(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-access")
    f = visible(s, ctx, req.path_params["flavor_id"])
    if f.is_public:
        raise NotFound("Access list not available for public flavors.")
    return json_response(_access(s, f))


@router.post("/v2.1/flavors/{flavor_id}/action", tx=True)
def flavor_action(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-flavor-access:add_tenant_access")
    body = validate(access_action, req.json())
    f = visible(s, ctx, req.path_params["flavor_id"])
    if f.is_public:
        raise Conflict("Can not add access to a public flavor.")
    if "addTenantAccess" in body:
        tenant = body["addTenantAccess"]["tenant"]
        if s.get(FlavorAccess, (f.id, tenant)) is not None:
            raise Conflict(f"Flavor access already exists for flavor {f.id} and project "
                           f"{tenant} combination.")
        s.add(FlavorAccess(flavor_id=f.id, project_id=tenant))
    else:
        tenant = body["removeTenantAccess"]["tenant"]
        row = s.get(FlavorAccess, (f.id, tenant))
        if row is None:
            raise NotFound(f"Flavor access not found for {f.id} / {tenant} combination.")
        s.delete(row)
    s.flush()
    return json_response(_access(s, f))


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
