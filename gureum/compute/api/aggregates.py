"""/v2.1/os-aggregates: host aggregates and their zones (admin only).

The rules (a host in one zone only, guests never change zone) are
compute/aggregates.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import aggregates, policy, schemas
from gureum.compute.api.common import ctx_of
from gureum.compute.api.params import int_id, reject_unknown
from gureum.compute.views import aggregates as views
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_name = schemas.name
_name_spaces = schemas.name_with_spaces
_zone = {"oneOf": [schemas.az_name, {"type": "null"}]}
_host = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
_metadata = {"type": "object", "additionalProperties": False, "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"], "maxLength": 255}}}

aggregate_create = {"type": "object", "required": ["aggregate"], "additionalProperties": False,
                    "properties": {"aggregate": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"name": _name, "availability_zone": _zone}}}}
aggregate_update = {"type": "object", "required": ["aggregate"], "additionalProperties": False,
                    "properties": {"aggregate": {
                        "type": "object", "additionalProperties": False,
                        "anyOf": [{"required": ["name"]}, {"required": ["availability_zone"]}],
                        "properties": {"name": _name_spaces, "availability_zone": _zone}}}}


def _host_action(name: str) -> dict[str, Any]:
    return {"type": "object", "required": [name], "additionalProperties": False,
            "properties": {name: {"type": "object", "required": ["host"],
                                  "additionalProperties": False,
                                  "properties": {"host": _host}}}}


aggregate_action = {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
    "add_host": _host_action("add_host")["properties"]["add_host"],
    "remove_host": _host_action("remove_host")["properties"]["remove_host"],
    "set_metadata": {"type": "object", "required": ["metadata"],
                     "additionalProperties": False, "properties": {"metadata": _metadata}}},
    "additionalProperties": False}
cache_images = {"type": "object", "required": ["cache"], "additionalProperties": False,
                "properties": {"cache": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["id"], "additionalProperties": False,
                    "properties": {"id": {"type": "string", "minLength": 1,
                                          "maxLength": 255}}}}}}


def _find(req: Request, s: Session) -> Any:
    raw = req.path_params["aggregate_id"]
    number = int_id(raw)
    if number is None:
        raise InvalidInput(f"Invalid input received: id must be an integer: {raw}",
                           field="id")
    return aggregates.get(s, number)


def _full(req: Request, s: Session, agg: Any) -> Response:
    return json_response({"aggregate": views.aggregate(req, agg,
                                                       aggregates.hosts_of(s, agg.id))})


@router.get("/v2.1/os-aggregates", tx=True)
def list_aggregates(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-aggregates:index")
    reject_unknown(req, (), since="2.102")
    items = [views.aggregate(req, a, aggregates.hosts_of(s, a.id))
             for a in aggregates.list_all(s)]
    return json_response({"aggregates": items})


@router.post("/v2.1/os-aggregates", tx=True)
def create_aggregate(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-aggregates:create")
    body = validate(aggregate_create, req.json())["aggregate"]
    agg = aggregates.create(s, body["name"].strip(),
                            (body.get("availability_zone") or "").strip() or None)
    return json_response({"aggregate": views.aggregate(req, agg, None)})


@router.get("/v2.1/os-aggregates/{aggregate_id}", tx=True)
def show_aggregate(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-aggregates:show")
    return _full(req, s, _find(req, s))


@router.put("/v2.1/os-aggregates/{aggregate_id}", tx=True)
def update_aggregate(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-aggregates:update")
    body = validate(aggregate_update, req.json())["aggregate"]
    agg = _find(req, s)
    name = body["name"].strip() if "name" in body else None
    if name == "":
        raise InvalidInput("Aggregate name can not be empty.", field="aggregate.name")
    values = {"availability_zone": body["availability_zone"]} \
        if "availability_zone" in body else {}
    aggregates.update(s, agg, name, values)
    return _full(req, s, agg)


@router.delete("/v2.1/os-aggregates/{aggregate_id}", tx=True)
def delete_aggregate(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-aggregates:delete")
    aggregates.delete(s, _find(req, s))
    return empty(200)


@router.post("/v2.1/os-aggregates/{aggregate_id}/action", tx=True)
def aggregate_action_(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    raw = req.json()
    named = next(iter(raw), "") if isinstance(raw, dict) and len(raw) == 1 else ""
    rule = named if named in ("add_host", "remove_host", "set_metadata") else "action"
    policy.authorize(ctx, f"os_compute_api:os-aggregates:{rule}")
    body = validate(aggregate_action, raw)
    action, args = next(iter(body.items()))
    agg = _find(req, s)
    if action == "add_host":
        aggregates.add_host(s, agg, args["host"])
    elif action == "remove_host":
        aggregates.remove_host(s, agg, args["host"])
    else:
        aggregates.set_metadata(s, agg, args["metadata"])
    return _full(req, s, agg)


@router.post("/v2.1/os-aggregates/{aggregate_id}/images", tx=True)
def cache_images_(req: Request, s: Session) -> Response:
    """2.81: accepted and checked; images are cached on each host at first boot anyway."""
    policy.authorize(ctx_of(req), "compute:aggregates:images")
    if not at_least(req, "2.81"):
        raise NotFound("The resource could not be found.")
    body = validate(cache_images, req.json())
    ids = [item["id"] for item in body["cache"]]
    if len(ids) != len(set(ids)):
        raise InvalidInput("Duplicate images in request", field="cache")
    aggregates.check_images(s, _find(req, s), ids)
    return empty(202)
