"""/v2.1/flavors, extra specs and flavor access.

Who sees which flavor, and the rules of creating and changing them, are
compute/flavors.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import flavors, policy, schemas
from gureum.compute.api.common import ctx_of, int_arg
from gureum.compute.api.params import limit_marker, reject_unknown
from gureum.compute.views import flavors as views
from gureum.compute.views.common import next_link
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound
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


def _query(req: Request, ctx: RequestContext) -> flavors.FlavorQuery:
    reject_unknown(req, _LIST_QUERY)
    limit, marker = limit_marker(req)
    return flavors.FlavorQuery(
        is_public=_is_public_filter(req.arg("is_public")) if ctx.is_admin else True,
        min_ram=int_arg(req, "minRam"), min_disk=int_arg(req, "minDisk"),
        sort_key=req.arg("sort_key") or "flavorid", sort_dir=req.arg("sort_dir") or "asc",
        limit=limit, marker=marker)


_LIST_QUERY = ("limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir")


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
    ctx = policy.authorize(ctx_of(req), "os_compute_api:flavors:index")
    query = _query(req, ctx)
    items = [views.flavor(req, f, detail=detail)
             for f in flavors.list_flavors(s, ctx, query)]
    body: dict[str, Any] = {"flavors": items}
    links = next_link(req, "flavors/detail" if detail else "flavors", items, query.limit)
    if links:
        body["flavors_links"] = links
    return json_response(body)


@router.get("/v2.1/flavors", tx=True)
def list_flavors(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/flavors/detail", tx=True)
def list_flavors_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


def _flavor_id(req: Request) -> str:
    return req.path_params["flavor_id"]


@router.get("/v2.1/flavors/{flavor_id}", tx=True)
def show_flavor(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:flavors:show")
    return json_response({"flavor": views.flavor(req, flavors.visible(s, ctx,
                                                                      _flavor_id(req)))})


@router.post("/v2.1/flavors", tx=True)
def create_flavor(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-flavor-manage:create")
    body = validate(flavor_create, req.json())["flavor"]
    if "description" in body and not at_least(req, "2.55"):
        raise InvalidInput("Additional properties are not allowed ('description' was "
                           "unexpected)", field="flavor.description")
    public = schemas.to_bool(body.get("os-flavor-access:is_public", True))
    return json_response({"flavor": views.flavor(req, flavors.create(s, body, public))})


@router.put("/v2.1/flavors/{flavor_id}", tx=True)
def update_flavor(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-flavor-manage:update")
    if not at_least(req, "2.55"):
        raise NotFound("The resource could not be found.")
    body = validate(flavor_update, req.json())["flavor"]
    f = flavors.set_description(s, ctx, _flavor_id(req), body["description"])
    return json_response({"flavor": views.flavor(req, f)})


@router.delete("/v2.1/flavors/{flavor_id}", tx=True)
def delete_flavor(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-flavor-manage:delete")
    flavors.delete(s, ctx, _flavor_id(req))
    return empty(202)


# -- extra specs -----------------------------------------------------------------------

_SPECS = "os_compute_api:os-flavor-extra-specs:"


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs", tx=True)
def list_specs(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _SPECS + "index")
    return json_response({"extra_specs": flavors.extra_specs(s, ctx, _flavor_id(req))})


@router.post("/v2.1/flavors/{flavor_id}/os-extra_specs", tx=True)
def create_specs(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _SPECS + "create")
    body = validate(extra_specs_create, req.json())
    specs = flavors.set_extra_specs(s, ctx, _flavor_id(req), body["extra_specs"])
    return json_response({"extra_specs": specs})


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tx=True)
def show_spec(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _SPECS + "show")
    key = req.path_params["key"]
    return json_response({key: flavors.extra_spec(s, ctx, _flavor_id(req), key)})


@router.put("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tx=True)
def update_spec(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _SPECS + "update")
    key = req.path_params["key"]
    body = req.json()
    if not isinstance(body, dict) or len(body) != 1 or key not in body:
        raise InvalidInput("Request body and URI mismatch", field=key)
    validate({"type": "object", "properties": {key: _spec_value}}, body)
    return json_response(flavors.set_extra_specs(s, ctx, _flavor_id(req), body))


@router.delete("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tx=True)
def delete_spec(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), _SPECS + "delete")
    flavors.delete_extra_spec(s, ctx, _flavor_id(req), req.path_params["key"])
    return empty(200)


# -- access -------------------------------------------------------------------------------

def _access(s: Session, f: Any) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": f.id, "tenant_id": a.project_id}
                              for a in flavors.access_list(s, f)]}


@router.get("/v2.1/flavors/{flavor_id}/os-flavor-access", tx=True)
def list_access(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-flavor-access")
    return json_response(_access(s, flavors.private(s, ctx, _flavor_id(req))))


@router.post("/v2.1/flavors/{flavor_id}/action", tx=True)
def flavor_action(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-flavor-access:add_tenant_access")
    body = validate(access_action, req.json())
    add = "addTenantAccess" in body
    tenant = body["addTenantAccess" if add else "removeTenantAccess"]["tenant"]
    f = flavors.change_access(s, ctx, _flavor_id(req), tenant, add)
    return json_response(_access(s, f))
