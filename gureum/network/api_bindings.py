"""/v2.0/ports/{port_id}/bindings: a port's bindings per host (``binding-extended``).

Nova moves a port with these: it creates an INACTIVE binding on a live
migration's destination, activates it at cut-over and deletes the source's (or
deletes the destination's on rollback). gureum's own workflows do the same
through ``gureum.network.bindings``; these routes let an operator (admin only,
as Neutron's policy has it) see and drive them. Every binding's ``vif_type`` and
``vif_details`` are computed for its host (S5).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.network import bindings, policy, resources, schemas, views
from gureum.network import errors as e
from gureum.network import models as m

router = Router()

_profile = {"type": ["object", "null"]}
_vnic = {"type": "string", "enum": list(schemas.VNIC_TYPES)}
create_schema = schemas._obj({"host": schemas._str(255, 1), "profile": _profile,
                              "vnic_type": _vnic, "project_id": schemas._str(64),
                              "tenant_id": schemas._str(64)}, ("host",))
update_schema = schemas._obj({"profile": _profile, "vnic_type": _vnic})
FILTERS = ("host", "vif_type", "vnic_type", "status")


def _port(req: Request, s: Session, rule: str) -> m.Port:
    ctx = policy.admin(req.context, rule)
    return resources.get_port(s, ctx, req.path_params["port_id"])


def _body(req: Request, schema: dict[str, Any]) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict) or set(body) != {"binding"} or \
            not isinstance(body["binding"], dict):
        raise e.bad_request("Resource body required: expected an object 'binding'.")
    item: dict[str, Any] = schemas.check(schema, body["binding"], "binding")
    return item


def list_bindings(req: Request, s: Session) -> Response:
    port = _port(req, s, "get_port_binding")
    rows = [views.binding(b) for b in sorted(port.bindings, key=lambda b: b.host) if b.host]
    for name in FILTERS:
        wanted = req.query.get(name)
        if wanted:
            rows = [r for r in rows if r[name] in wanted]
    fields = [f for v in req.query.get("fields", []) for f in v.split(",") if f] or None
    return json_response({"bindings": [views.only_fields(r, fields) for r in rows]})


def show_binding(req: Request, s: Session) -> Response:
    port = _port(req, s, "get_port_binding")
    binding = bindings.binding_for(port, req.path_params["host"])
    if binding is None or not binding.host:
        raise e.typed_not_found("PortBindingNotFound", f"Binding for port {port.id} for "
                                f"host {req.path_params['host']} could not be found.")
    return json_response({"binding": views.binding(binding)})


def create_binding(req: Request, s: Session) -> Response:
    port = _port(req, s, "create_port_binding")
    body = _body(req, create_schema)
    binding = bindings.create_binding(port, body["host"], body.get("profile"),
                                      body.get("vnic_type"))
    resources.touch(port)
    s.flush()
    return json_response({"binding": views.binding(binding)}, 201)


def update_binding(req: Request, s: Session) -> Response:
    port = _port(req, s, "update_port_binding")
    body = _body(req, update_schema)
    binding = bindings.update_binding(port, req.path_params["host"], body.get("profile"),
                                      body.get("vnic_type"))
    resources.touch(port)
    s.flush()
    return json_response({"binding": views.binding(binding)})


def activate_binding(req: Request, s: Session) -> Response:
    port = _port(req, s, "activate")
    binding = bindings.activate(port, req.path_params["host"])
    resources.touch(port)
    s.flush()
    return json_response({"binding": views.binding(binding)})


def delete_binding(req: Request, s: Session) -> Response:
    port = _port(req, s, "delete_port_binding")
    bindings.delete_binding(port, req.path_params["host"])
    resources.touch(port)
    s.flush()
    return empty()


_collection = "/v2.0/ports/{port_id}/bindings"
_item = _collection + "/{host}"
router.add("GET", _collection, list_bindings, tx=True)
router.add("POST", _collection, create_binding, tx=True)
router.add("GET", _item, show_binding, tx=True)
router.add("PUT", _item, update_binding, tx=True)
router.add("DELETE", _item, delete_binding, tx=True)
router.add("PUT", _item + "/activate", activate_binding, tx=True)
