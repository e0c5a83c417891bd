"""The attachments API (3.27+): how Nova attaches volumes since Queens.

``POST /attachments`` reserves the volume for a server (no connector: the
attachment is ``reserved``) or also connects it (a connector: ``attaching``, with
the connection info); ``PUT`` gives the connector later; ``os-complete`` marks it
attached (the volume in-use); ``DELETE`` detaches. The state machine is the one
of ``gureum/volume/attach.py``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, empty, json_response
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.errors import NotAcceptable
from gureum.volume import attach as att
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, schemas, views, volumes
from gureum.volume.api import route


def _min_version(req: Request) -> None:
    if not at_least(req, "3.27"):
        raise NotAcceptable("Version 3.27 or later is required for the attachments API.")


def _get(s: Session, ctx: RequestContext, attachment_id: str) -> m.VolumeAttachment:
    a = s.get(m.VolumeAttachment, attachment_id)
    if a is None or a.attach_status == "detached" or not policy.owns(ctx, a.volume.project_id):
        raise e.not_found("attachment", attachment_id)
    return a


def _connect(a: m.VolumeAttachment, connector: Any) -> None:
    if not isinstance(connector, dict):
        raise e.bad_request("Invalid input for field/attribute connector: an object is "
                            "expected.", "connector")
    a.connector = dict(connector)
    info = att.connection_info(a.volume, str(connector.get("host") or ""))
    info["data"]["access_mode"] = a.attach_mode
    info["attachment_id"] = a.id
    a.connection_info = info
    a.attached_host = schemas.text(connector.get("host"), "connector.host") or \
        a.attached_host
    a.mountpoint = schemas.text(connector.get("mountpoint"), "connector.mountpoint") or \
        a.mountpoint
    if a.attach_status == "reserved":
        a.attach_status = "attaching"
    a.updated_at = utcnow()


@route("POST", "/attachments")
def create(req: Request, s: Session) -> Response:
    _min_version(req)
    ctx = policy.writer(req.context, "volume:attachment_create")
    body = schemas.body_of(req.json(), "attachment")
    volume_id = body.get("volume_uuid")
    if not isinstance(volume_id, str) or not volume_id:
        raise e.bad_request("Invalid input for field/attribute volume_uuid.", "volume_uuid")
    instance = body.get("instance_uuid")
    if instance is not None and (not isinstance(instance, str) or len(instance) > 36):
        raise e.bad_request("Invalid input for field/attribute instance_uuid.",
                            "instance_uuid")
    mode = schemas.one_of(body.get("mode") or "rw", "mode", ("rw", "ro"))
    v = volumes.get_volume(s, ctx, volume_id)
    a = att.reserve(s, v, instance)
    a.attach_mode = mode
    if v.status == "attaching":
        volumes.change_status(s, v, "attaching", {"status": "reserved"})
    if body.get("connector"):
        _connect(a, body["connector"])
        if v.status == "reserved":
            volumes.change_status(s, v, "reserved", {"status": "attaching"})
    s.flush()
    return json_response({"attachment": views.attachment(req, a)})


@route("GET", "/attachments")
def list_summary(req: Request, s: Session) -> Response:
    return _list(req, s, False)


@route("GET", "/attachments/detail")
def list_detail(req: Request, s: Session) -> Response:
    return _list(req, s, True)


def _list(req: Request, s: Session, detail: bool) -> Response:
    _min_version(req)
    ctx = policy.reader(req.context, "volume:attachment_get_all")
    stmt = select(m.VolumeAttachment).join(m.Volume).where(
        m.VolumeAttachment.attach_status != "detached").order_by(m.VolumeAttachment.created_at)
    all_projects = schemas.boolean(req.arg("all_tenants") or "0", "all_tenants")
    if not (ctx.is_admin and all_projects):
        stmt = stmt.where(m.Volume.project_id == (ctx.project_id or ""))
    rows = list(s.scalars(stmt))
    for key, column in (("volume_id", "volume_id"), ("instance_id", "instance_id"),
                        ("status", "attach_status")):
        want = req.arg(key)
        if want:
            rows = [a for a in rows if getattr(a, column) == want]
    shaped = [views.attachment(req, a) for a in rows]
    if not detail:
        shaped = [{k: d[k] for k in ("id", "status", "instance", "volume_id")} for d in shaped]
    return json_response({"attachments": shaped})


@route("GET", "/attachments/{attachment_id}")
def show(req: Request, s: Session) -> Response:
    _min_version(req)
    ctx = policy.reader(req.context, "volume:attachment_get")
    return json_response({"attachment": views.attachment(
        req, _get(s, ctx, req.path_params["attachment_id"]))})


@route("PUT", "/attachments/{attachment_id}")
def update(req: Request, s: Session) -> Response:
    _min_version(req)
    ctx = policy.writer(req.context, "volume:attachment_update")
    a = _get(s, ctx, req.path_params["attachment_id"])
    body = schemas.body_of(req.json(), "attachment")
    if "connector" not in body:
        raise e.bad_request("Missing required element 'connector' in request body.",
                            "connector")
    _connect(a, body["connector"])
    v = a.volume
    if v.status == "reserved":
        volumes.change_status(s, v, "reserved", {"status": "attaching"})
    s.flush()
    return json_response({"attachment": views.attachment(req, a)})


@route("POST", "/attachments/{attachment_id}/action")
def attachment_action(req: Request, s: Session) -> Response:
    _min_version(req)
    ctx = policy.writer(req.context, "volume:attachment_complete")
    body = req.json()
    if not isinstance(body, dict) or "os-complete" not in body:
        raise e.bad_request("There is no such action.", "os-complete")
    if not at_least(req, "3.44"):
        raise NotAcceptable("Version 3.44 or later is required for os-complete.")
    a = _get(s, ctx, req.path_params["attachment_id"])
    att.attach(s, a.volume, a.instance_id, a.attached_host, a.mountpoint, a.attach_mode,
               attachment=a)
    return empty(204)


@route("DELETE", "/attachments/{attachment_id}")
def delete(req: Request, s: Session) -> Response:
    _min_version(req)
    ctx = policy.writer(req.context, "volume:attachment_delete")
    a = _get(s, ctx, req.path_params["attachment_id"])
    v = a.volume
    if a.attach_status in ("reserved", "attaching"):
        att.unreserve(s, v, a)
    else:
        att.detach(s, v, a.id)
    remaining = [views.attachment(req, x) for x in v.attachments
                 if x.attach_status != "detached"]
    return json_response({"attachments": remaining})
