"""/v2.1/servers/{id}/os-volume_attachments: a server's volumes (Nova's shapes).

List and show give ``device``, ``serverId``, ``volumeId``; ``id`` (the volume
id) until 2.89, ``tag`` from 2.70, ``delete_on_termination`` from 2.79, and
``attachment_id`` / ``bdm_uuid`` from 2.89. Attaching (``tag`` accepted from
2.49, ``delete_on_termination`` from 2.79) answers 200 with the device the
volume gets; the plugging itself happens after (the volume turns in-use).
Detaching answers 202. PUT changes ``delete_on_termination`` (2.85+) of an
attachment; naming another volume is Nova's swap, an admin's call (202: the
host copies the disk onto the new volume and switches the guest to it; the old
volume becomes available, the new one in-use on the same device). The rules are
compute/volumes.py.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import actions, instances, policy
from gureum.compute import volumes as vols
from gureum.compute.api.common import ctx_of
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput

router = Router()

_UUID = {"type": "string", "minLength": 1, "maxLength": 255}


def _create_schema(req: Request) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": _UUID,
                             "device": {"type": ["string", "null"], "maxLength": 255}}
    if at_least(req, "2.49"):
        props["tag"] = {"type": "string", "minLength": 1, "maxLength": 60,
                        "pattern": "^[^,/]*$"}
    if at_least(req, "2.79"):
        props["delete_on_termination"] = {"type": "boolean"}
    return {"type": "object", "required": ["volumeAttachment"], "additionalProperties": False,
            "properties": {"volumeAttachment": {
                "type": "object", "required": ["volumeId"], "additionalProperties": False,
                "properties": props}}}


def _update_schema(req: Request) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": _UUID}
    if at_least(req, "2.85"):
        props.update({"id": _UUID, "serverId": _UUID, "device": {"type": ["string", "null"]},
                      "tag": {"type": ["string", "null"]},
                      "delete_on_termination": {"type": "boolean"}})
    return {"type": "object", "required": ["volumeAttachment"], "additionalProperties": False,
            "properties": {"volumeAttachment": {
                "type": "object", "required": ["volumeId"], "additionalProperties": False,
                "properties": props}}}


def view(req: Request, b: Any) -> dict[str, Any]:
    """A block device mapping (compute/volumes.py) as Nova shows it."""
    out: dict[str, Any] = {}
    if not at_least(req, "2.89"):
        out["id"] = b.volume_id
    out.update({"volumeId": b.volume_id, "serverId": b.instance_id})
    if b.device_name:
        out["device"] = b.device_name
    if at_least(req, "2.70"):
        out["tag"] = b.tag
    if at_least(req, "2.79"):
        out["delete_on_termination"] = bool(b.delete_on_termination)
    if at_least(req, "2.89"):
        out["attachment_id"] = b.attachment_id
        out["bdm_uuid"] = b.uuid
    return out


def _ctx(req: Request, rule: str) -> RequestContext:
    return policy.authorize(ctx_of(req), f"os_compute_api:os-volumes-attachments:{rule}")


@router.get("/v2.1/servers/{server_id}/os-volume_attachments", tx=True)
def list_attachments(req: Request, s: Session) -> Response:
    ctx = _ctx(req, "index")
    inst = instances.visible(s, ctx, req.path_params["server_id"])
    found = [b for b in vols.mappings(s, inst.id) if b.status != "swap_target"]
    try:
        offset = int(req.arg("offset") or 0)
        limit = int(req.arg("limit") or "") if req.arg("limit") else None
    except ValueError:
        raise InvalidInput("limit and offset must be integers.", field="limit") from None
    if offset < 0 or (limit is not None and limit < 0):
        raise InvalidInput("limit and offset must not be negative.", field="limit")
    page = found[offset:] if limit is None else found[offset:offset + limit]
    return json_response({"volumeAttachments": [view(req, b) for b in page]})


@router.get("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", tx=True)
def show_attachment(req: Request, s: Session) -> Response:
    ctx = _ctx(req, "show")
    inst = instances.visible(s, ctx, req.path_params["server_id"])
    b = vols.attached(s, inst, req.path_params["volume_id"])
    return json_response({"volumeAttachment": view(req, b)})


@router.post("/v2.1/servers/{server_id}/os-volume_attachments", tx=True)
def attach(req: Request, s: Session) -> Response:
    ctx = _ctx(req, "create")
    body = validate(_create_schema(req), req.json())["volumeAttachment"]
    inst = actions.changeable(s, ctx, req.path_params["server_id"])
    b = vols.attach(s, ctx, inst, body["volumeId"], device=body.get("device"),
                    tag=body.get("tag"),
                    delete_on_termination=bool(body.get("delete_on_termination", False)))
    out: dict[str, Any] = {"id": b.volume_id, "serverId": inst.id, "volumeId": b.volume_id,
                           "device": b.device_name}
    if at_least(req, "2.70"):
        out["tag"] = b.tag
    if at_least(req, "2.79"):
        out["delete_on_termination"] = bool(b.delete_on_termination)
    return json_response({"volumeAttachment": out})


@router.put("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", tx=True)
def update_attachment(req: Request, s: Session) -> Response:
    volume_id = req.path_params["volume_id"]
    body = validate(_update_schema(req), req.json())["volumeAttachment"]
    swap = body["volumeId"] != volume_id
    ctx = _ctx(req, "swap" if swap else "update")
    if not swap and not at_least(req, "2.85"):
        raise InvalidInput("The volumeId of the new volume must differ from the attached "
                           "one (changing an attachment needs microversion 2.85).",
                           field="volumeId")
    inst = actions.changeable(s, ctx, req.path_params["server_id"])
    if swap:
        vols.swap(s, ctx, inst, volume_id, body["volumeId"])
        return empty(202)
    b = vols.attached(s, inst, volume_id)
    for name, current in (("id", b.volume_id), ("serverId", inst.id),
                          ("device", b.device_name), ("tag", b.tag)):
        if name in body and body[name] != current:
            raise InvalidInput(f"Changing the {name} of an attachment is not supported.",
                               field=name)
    if "delete_on_termination" in body:
        vols.set_delete_on_termination(s, inst, volume_id, body["delete_on_termination"])
    return empty(202)


@router.delete("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", tx=True)
def detach(req: Request, s: Session) -> Response:
    ctx = _ctx(req, "delete")
    inst = actions.changeable(s, ctx, req.path_params["server_id"])
    vols.detach(s, ctx, inst, req.path_params["volume_id"])
    return empty(202)
