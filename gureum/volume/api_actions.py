"""POST /v3/volumes/{id}/action: Cinder's volume actions, one handler per action name.

The body names one action (``{"os-extend": {"new_size": 2}}``); its handler
checks the caller, the arguments and the volume's state, and answers as
Cinder does (202 for most, 200 with a body for the ones that return data).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, empty, json_response
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.volume import attach as att
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, quotas, schemas, types, uploads, volumes
from gureum.volume.api import route
from gureum.volume.api_common import one_action
from gureum.volume.backends import current_backend

Action = Callable[[Request, Session, RequestContext, m.Volume, Any], Response]
ACTIONS: dict[str, Action] = {}
ADMIN_ACTIONS = ("os-reset_status", "os-force_delete", "os-force_detach",
                 "os-migrate_volume", "os-migrate_volume_completion")


def action(name: str) -> Callable[[Action], Action]:
    def deco(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn
    return deco


def _args(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise e.bad_request(f"Invalid input for field/attribute {name}. Value: {value}. "
                            f"{value!r} is not of type 'object'", name)
    return value


@route("POST", "/volumes/{volume_id}/action")
def volume_action(req: Request, s: Session) -> Response:
    name, args = one_action(req.json())
    fn = ACTIONS.get(name)
    if fn is None:
        raise e.bad_request(f"There is no such action: {name}", name)
    rule = f"volume_extension:volume_admin_actions:{name[3:]}" if name in ADMIN_ACTIONS \
        else f"volume:{name}"
    ctx = policy.writer(req.context, rule)
    if name in ADMIN_ACTIONS:
        policy.admin(ctx, rule)
    v = volumes.get_volume(s, ctx, req.path_params["volume_id"])
    return fn(req, s, ctx, v, args)


# -- size and type ------------------------------------------------------------------------

@action("os-extend")
def extend(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any) -> Response:
    args = _args(args, "os-extend")
    new_size = schemas.size(args.get("new_size"), "new_size")
    assert new_size is not None
    from gureum.api.microversion import at_least

    # 3.42: an attached volume grows too (its host's hypervisor grows the disk).
    allowed = ("available", "in-use") if at_least(req, "3.42") else ("available",)
    if v.status not in allowed:
        raise e.invalid_volume(f"Volume status must be {' or '.join(allowed)} to extend, "
                               f"but current status is: {v.status}.")
    if new_size <= v.size:
        raise e.bad_request(f"New size for extend must be greater than current size. "
                            f"(current: {v.size}, extended: {new_size}).", "new_size")
    quotas.check(s, v.project_id, v.volume_type.name, gigabytes=new_size - v.size,
                 volume_size=new_size)
    volumes.change_status(s, v, allowed, {"status": "extending", "task": {
        "op": "extend", "new_size": new_size, "previous_status": v.status}})
    volumes.hand_over(s, "volume", v.id, ctx.request_id)
    return empty(202)


@action("os-retype")
def retype(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any) -> Response:
    args = _args(args, "os-retype")
    ref = args.get("new_type")
    if not isinstance(ref, str) or not ref:
        raise e.bad_request("New volume type must be specified.", "new_type")
    policy_name = args.get("migration_policy", "never")
    schemas.one_of(policy_name, "migration_policy", ("never", "on-demand"))
    new = types.find(s, ctx, ref, "new_type")
    if new.id == v.volume_type_id:
        raise e.invalid_volume("Retype requires a different volume type.")
    if v.status not in ("available", "in-use"):
        raise e.invalid_volume(f"Volume status must be available or in-use to retype, but "
                               f"current status is: {v.status}.")
    wanted = (new.extra_specs or {}).get("volume_backend_name")
    if wanted and wanted != current_backend().name:
        if policy_name == "never":
            raise e.bad_request(f"Retype to {new.name} needs a migration to backend {wanted} "
                                "and the migration policy is 'never'.", "migration_policy")
        raise e.bad_request(f"No valid backend was found. No backend is named {wanted}.",
                            "new_type")
    quotas.check(s, v.project_id, new.name, volumes=1, gigabytes=v.size)
    # The type's backend is this one: a retype changes the type, never the data.
    volumes.change_status(s, v, v.status, {"volume_type_id": new.id})
    return empty(202)


@action("revert")
def revert(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any) -> Response:
    """3.40: the volume goes back to its latest snapshot."""
    from sqlalchemy import select

    from gureum.api.microversion import at_least

    if not at_least(req, "3.40"):
        raise e.bad_request("There is no such action: revert (3.40 or later).", "revert")
    args = _args(args, "revert")
    snap_id = args.get("snapshot_id")
    if not isinstance(snap_id, str) or not snap_id:
        raise e.bad_request("Must specify 'snapshot_id'.", "snapshot_id")
    snap = s.get(m.Snapshot, snap_id)
    if snap is None or snap.volume_id != v.id:
        raise e.not_found("snapshot", snap_id)
    latest = s.scalar(select(m.Snapshot).where(m.Snapshot.volume_id == v.id)
                      .order_by(m.Snapshot.created_at.desc(), m.Snapshot.id.desc()).limit(1))
    if latest is None or latest.id != snap.id:
        raise e.invalid_volume(f"Volume {v.id} can only be reverted to its latest snapshot.")
    if snap.status != "available":
        raise e.invalid_snapshot(f"Snapshot {snap.id} status must be available, but is "
                                 f"{snap.status}.")
    if snap.size != v.size:
        raise e.invalid_volume(f"Volume {v.id} size {v.size}GB differs from snapshot "
                               f"{snap.id} size {snap.size}GB.")
    volumes.change_status(s, v, "available", {"status": "reverting", "task": {
        "op": "revert", "snapshot_id": snap.id}})
    snap.status = "restoring"
    volumes.hand_over(s, "volume", v.id, ctx.request_id)
    return empty(202)


# -- flags and image metadata ---------------------------------------------------------------

@action("os-set_bootable")
def set_bootable(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                 ) -> Response:
    args = _args(args, "os-set_bootable")
    if "bootable" not in args:
        raise e.bad_request("Must specify bootable in request.", "bootable")
    v.bootable = schemas.boolean(args["bootable"], "bootable")
    v.updated_at = utcnow()
    return empty(200)


@action("os-update_readonly_flag")
def readonly(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
             ) -> Response:
    args = _args(args, "os-update_readonly_flag")
    if "readonly" not in args:
        raise e.bad_request("Must specify readonly in request.", "readonly")
    flag = schemas.boolean(args["readonly"], "readonly")
    if v.status in ("deleting", "error_deleting"):
        raise e.invalid_volume(f"Volume status must not be {v.status} to update its "
                               "readonly flag.")
    v.admin_metadata = {**(v.admin_metadata or {}), "readonly": str(flag)}
    v.updated_at = utcnow()
    return empty(202)


@action("os-set_image_metadata")
def set_image_metadata(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                       ) -> Response:
    args = _args(args, "os-set_image_metadata")
    new = schemas.metadata(args.get("metadata"))
    v.image_metadata = {**(v.image_metadata or {}), **new}
    v.updated_at = utcnow()
    return json_response({"metadata": dict(v.image_metadata)})


@action("os-unset_image_metadata")
def unset_image_metadata(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                         ) -> Response:
    args = _args(args, "os-unset_image_metadata")
    key = args.get("key")
    meta = dict(v.image_metadata or {})
    if not isinstance(key, str) or key not in meta:
        from gureum.errors import NotFound

        raise NotFound(f"Glance metadata for volume {v.id} with key {key} could not be "
                       "found.")
    del meta[key]
    v.image_metadata = meta
    v.updated_at = utcnow()
    return empty(200)


@action("os-show_image_metadata")
def show_image_metadata(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                        ) -> Response:
    return json_response({"metadata": dict(v.image_metadata or {})})


@action("os-volume_upload_image")
def upload_image(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                 ) -> Response:
    result = uploads.start_upload(s, ctx, v, _args(args, "os-volume_upload_image"))
    return json_response({"os-volume_upload_image": result}, 202)


# -- admin -----------------------------------------------------------------------------------

@action("os-reset_status")
def reset_status(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                 ) -> Response:
    args = _args(args, "os-reset_status")
    values: dict[str, Any] = {}
    if "status" in args:
        values["status"] = schemas.one_of(args["status"], "status", volumes.STATUSES)
    if "attach_status" in args:
        values["attach_status"] = schemas.one_of(args["attach_status"], "attach_status",
                                                 ("attached", "detached"))
        if values["attach_status"] == "detached":
            for a in list(v.attachments):
                s.delete(a)
    if "migration_status" in args:
        values["migration_status"] = schemas.text(args["migration_status"],
                                                  "migration_status", 32) or None
    if not values:
        raise e.bad_request("Must specify 'status', 'attach_status' or 'migration_status' "
                            "for update.", "status")
    values["task"] = {}
    volumes.change_status(s, v, v.status, values)
    return empty(202)


@action("os-force_delete")
def force_delete(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                 ) -> Response:
    volumes.delete_volume(s, ctx, v.id, cascade=True, force=True)
    return empty(202)


@action("os-force_detach")
def force_detach(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                 ) -> Response:
    args = _args(args, "os-force_detach")
    att.detach(s, v, args.get("attachment_id"))
    return empty(202)


# -- attach (Cinder's legacy attach actions, as Nova used them) -------------------------------

@action("os-reserve")
def reserve(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any) -> Response:
    att.reserve(s, v, None)
    return empty(202)


@action("os-unreserve")
def unreserve(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
              ) -> Response:
    att.unreserve(s, v)
    return empty(202)


@action("os-attach")
def attach(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any) -> Response:
    args = _args(args, "os-attach")
    instance = schemas.text(args.get("instance_uuid"), "instance_uuid", 36)
    host = schemas.text(args.get("host_name"), "host_name")
    if not instance and not host:
        raise e.bad_request("Invalid request to attach volume to an invalid target",
                            "instance_uuid")
    mountpoint = schemas.text(args.get("mountpoint"), "mountpoint")
    mode = schemas.one_of(args.get("mode", "rw"), "mode", ("rw", "ro"))
    if (v.admin_metadata or {}).get("readonly") == "True" and mode != "ro":
        raise e.invalid_volume("Volume is read-only: attach it with mode 'ro'.")
    att.attach(s, v, instance, host, mountpoint, mode)
    return empty(202)


@action("os-begin_detaching")
def begin_detaching(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                    ) -> Response:
    att.begin_detaching(s, v)
    return empty(202)


@action("os-roll_detaching")
def roll_detaching(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any
                   ) -> Response:
    att.roll_detaching(s, v)
    return empty(202)


@action("os-detach")
def detach(req: Request, s: Session, ctx: RequestContext, v: m.Volume, args: Any) -> Response:
    args = _args(args, "os-detach")
    att.detach(s, v, args.get("attachment_id"))
    return empty(202)


@action("os-initialize_connection")
def initialize_connection(req: Request, s: Session, ctx: RequestContext, v: m.Volume,
                          args: Any) -> Response:
    args = _args(args, "os-initialize_connection")
    connector = args.get("connector")
    if not isinstance(connector, dict):
        raise e.bad_request("Must specify 'connector'", "connector")
    info = att.connection_info(v, str(connector.get("host") or ""))
    return json_response({"connection_info": info})


@action("os-terminate_connection")
def terminate_connection(req: Request, s: Session, ctx: RequestContext, v: m.Volume,
                         args: Any) -> Response:
    args = _args(args, "os-terminate_connection")
    if not isinstance(args.get("connector"), dict):
        raise e.bad_request("Must specify 'connector'", "connector")
    return empty(202)
