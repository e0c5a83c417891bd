"""Generic volume groups (3.11+ group types, 3.13+ groups, 3.14+ group snapshots).

A group is bookkeeping over volumes of the types it allows: volumes created in
it, snapshotted together (one snapshot per volume, made by the volume manager
as any other), deleted together with ``delete-volumes``. The file backend needs
nothing more of a group, so a group is ``available`` as soon as it exists; a
group snapshot's status is its snapshots' (creating until all are available,
error if one failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, empty, json_response
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.errors import Conflict, NotAcceptable, NotFound, OverQuota
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, quotas, schemas, snapshots, types, views, volumes
from gureum.volume.api import route
from gureum.volume.api_common import one_action


def _need(req: Request, version: str) -> None:
    if not at_least(req, version):
        raise NotAcceptable(f"Version {version} or later is required.")


# -- group types -------------------------------------------------------------------------

def _group_type_view(t: m.GroupType) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "description": t.description,
            "is_public": t.is_public, "group_specs": dict(t.group_specs or {})}


def _get_group_type(s: Session, ctx: RequestContext, ref: str) -> m.GroupType:
    t = s.get(m.GroupType, ref) or s.scalar(select(m.GroupType).where(m.GroupType.name == ref))
    if t is None or (not t.is_public and not ctx.is_admin):
        raise NotFound(f"Group type with name {ref} could not be found.")
    return t


@route("GET", "/group_types")
def list_group_types(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.reader(req.context, "group:group_types:get_all")
    stmt = select(m.GroupType).order_by(m.GroupType.name)
    if not ctx.is_admin:
        stmt = stmt.where(m.GroupType.is_public.is_(True))
    return json_response({"group_types": [_group_type_view(t) for t in s.scalars(stmt)]})


@route("GET", "/group_types/{type_id}")
def show_group_type(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.reader(req.context, "group:group_types:get")
    return json_response({"group_type": _group_type_view(
        _get_group_type(s, ctx, req.path_params["type_id"]))})


@route("POST", "/group_types", tx="write")
def create_group_type(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    policy.admin(req.context, "group:group_types:create")
    body = schemas.body_of(req.json(), "group_type")
    name = (schemas.text(body.get("name"), "name", allow_none=False) or "").strip()
    if not name:
        raise e.bad_request("Group type name can not be empty.", "name")
    t = m.GroupType(name=name, description=schemas.text(body.get("description"),
                                                        "description"),
                    is_public=schemas.boolean(body.get("is_public", True), "is_public"),
                    group_specs=schemas.metadata(body.get("group_specs"), "group_specs"),
                    created_at=utcnow())
    try:
        with s.begin_nested():
            s.add(t)
            s.flush()
    except IntegrityError:
        raise Conflict(f"Group Type {name} already exists.") from None
    return json_response({"group_type": _group_type_view(t)})


@route("PUT", "/group_types/{type_id}")
def update_group_type(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.admin(req.context, "group:group_types:update")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    body = schemas.body_of(req.json(), "group_type")
    if "name" in body:
        name = (schemas.text(body["name"], "name", allow_none=False) or "").strip()
        if not name:
            raise e.bad_request("Group type name can not be empty.", "name")
        t.name = name
    if "description" in body:
        t.description = schemas.text(body["description"], "description")
    if "is_public" in body:
        t.is_public = schemas.boolean(body["is_public"], "is_public")
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:
        raise Conflict(f"Group Type {t.name} already exists.") from None
    return json_response({"group_type": _group_type_view(t)})


@route("DELETE", "/group_types/{type_id}")
def delete_group_type(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.admin(req.context, "group:group_types:delete")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    if s.scalar(select(m.Group.id).where(m.Group.group_type_id == t.id).limit(1)):
        raise e.bad_request(f"Group Type {t.id} deletion is not allowed with groups using "
                            "this type.")
    s.delete(t)
    return empty(202)


@route("GET", "/group_types/{type_id}/group_specs")
def list_group_specs(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.reader(req.context, "group:group_types_specs")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    return json_response({"group_specs": dict(t.group_specs or {})})


@route("POST", "/group_types/{type_id}/group_specs")
def create_group_specs(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.admin(req.context, "group:group_types_specs")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    body = req.json()
    specs = schemas.metadata(body.get("group_specs") if isinstance(body, dict) else None,
                             "group_specs")
    t.group_specs = {**(t.group_specs or {}), **specs}
    return json_response({"group_specs": specs})


@route("GET", "/group_types/{type_id}/group_specs/{key}")
def show_group_spec(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.reader(req.context, "group:group_types_specs")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    key = req.path_params["key"]
    if key not in (t.group_specs or {}):
        raise NotFound(f"Group Type {t.id} has no specs with key {key}.")
    return json_response({key: t.group_specs[key]})


@route("PUT", "/group_types/{type_id}/group_specs/{key}")
def update_group_spec(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.admin(req.context, "group:group_types_specs")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    key = req.path_params["key"]
    body = schemas.metadata(req.json(), "group_specs")
    if key not in body or len(body) != 1:
        raise e.bad_request("Request body and URI mismatch", key)
    t.group_specs = {**(t.group_specs or {}), **body}
    return json_response(body)


@route("DELETE", "/group_types/{type_id}/group_specs/{key}")
def delete_group_spec(req: Request, s: Session) -> Response:
    _need(req, "3.11")
    ctx = policy.admin(req.context, "group:group_types_specs")
    t = _get_group_type(s, ctx, req.path_params["type_id"])
    key = req.path_params["key"]
    specs = dict(t.group_specs or {})
    if key not in specs:
        raise NotFound(f"Group Type {t.id} has no specs with key {key}.")
    del specs[key]
    t.group_specs = specs
    return empty(202)


# -- groups --------------------------------------------------------------------------------

def _group_view(req: Request, s: Session, g: m.Group) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": g.id, "name": g.name, "description": g.description, "status": g.status,
        "availability_zone": g.availability_zone, "created_at": views.iso(g.created_at),
        "group_type": g.group_type_id, "volume_types": list(g.volume_type_ids or []),
        "group_snapshot_id": None, "source_group_id": None}
    if at_least(req, "3.25"):
        out["volumes"] = list(s.scalars(select(m.Volume.id).where(m.Volume.group_id == g.id)))
    if at_least(req, "3.38"):
        out["replication_status"] = "disabled"
    if at_least(req, "3.58"):
        out["project_id"] = g.project_id
    return out


def _get_group(s: Session, ctx: RequestContext, group_id: str) -> m.Group:
    g = s.get(m.Group, group_id)
    if g is None or not policy.owns(ctx, g.project_id):
        raise NotFound(f"Group {group_id} could not be found.")
    return g


@route("POST", "/groups")
def create_group(req: Request, s: Session) -> Response:
    _need(req, "3.13")
    ctx = policy.writer(req.context, "group:create")
    project_id = policy.project_of(ctx)
    body = schemas.body_of(req.json(), "group")
    gt_ref = body.get("group_type")
    if not isinstance(gt_ref, str) or not gt_ref:
        raise e.bad_request("group_type must be provided to create group.", "group_type")
    gt = _get_group_type(s, ctx, gt_ref)
    refs = body.get("volume_types")
    if not isinstance(refs, list) or not refs:
        raise e.bad_request("volume_types must be provided to create group.", "volume_types")
    type_ids = [types.find(s, ctx, str(r), "volume_types").id for r in refs]
    zone = body.get("availability_zone")
    if zone is not None and zone != m.ZONE:
        raise e.bad_request(f"Availability zone '{zone}' is invalid.", "availability_zone")
    limit = quotas.limits(s, project_id).get("groups", -1)
    used = quotas.locked_usage(s, project_id)["groups"]
    if limit >= 0 and used + 1 > limit:
        raise OverQuota(f"GroupLimitExceeded: Maximum number of groups allowed ({limit}) "
                        "exceeded")
    g = m.Group(project_id=project_id, user_id=ctx.user_id,
                name=schemas.text(body.get("name"), "name"),
                description=schemas.text(body.get("description"), "description"),
                group_type_id=gt.id, volume_type_ids=type_ids, status="available",
                created_at=utcnow())
    s.add(g)
    s.flush()
    return json_response({"group": _group_view(req, s, g)}, 202)


@route("GET", "/groups")
def list_groups(req: Request, s: Session) -> Response:
    return _list_groups(req, s, False)


@route("GET", "/groups/detail")
def list_groups_detail(req: Request, s: Session) -> Response:
    return _list_groups(req, s, True)


def _list_groups(req: Request, s: Session, detail: bool) -> Response:
    _need(req, "3.13")
    return _listing(req, s, detail, m.Group, "groups", "group:get_all", _group_view)


# A group or a group snapshot: both list the same way.
Owned = TypeVar("Owned", m.Group, m.GroupSnapshot)


def _listing(req: Request, s: Session, detail: bool, model: type[Owned], key: str, rule: str,
             view: Callable[[Request, Session, Owned], dict[str, Any]]) -> Response:
    """The caller's project's rows of ``model`` (every project's for admin with
    ``all_tenants``), newest first: in full (``detail``) or their ids and names."""
    ctx = policy.reader(req.context, rule)
    stmt = select(model).order_by(model.created_at.desc())
    if not (ctx.is_admin and schemas.boolean(req.arg("all_tenants") or "0", "all_tenants")):
        stmt = stmt.where(model.project_id == (ctx.project_id or ""))
    rows = list(s.scalars(stmt))
    if detail:
        return json_response({key: [view(req, s, r) for r in rows]})
    return json_response({key: [{"id": r.id, "name": r.name} for r in rows]})


@route("GET", "/groups/{group_id}")
def show_group(req: Request, s: Session) -> Response:
    _need(req, "3.13")
    ctx = policy.reader(req.context, "group:get")
    return json_response({"group": _group_view(req, s, _get_group(
        s, ctx, req.path_params["group_id"]))})


@route("PUT", "/groups/{group_id}")
def update_group(req: Request, s: Session) -> Response:
    _need(req, "3.13")
    ctx = policy.writer(req.context, "group:update")
    g = _get_group(s, ctx, req.path_params["group_id"])
    body = schemas.body_of(req.json(), "group")
    if "name" in body:
        g.name = schemas.text(body["name"], "name")
    if "description" in body:
        g.description = schemas.text(body["description"], "description")
    for vid in _ids(body.get("add_volumes"), "add_volumes"):
        v = volumes.get_volume(s, ctx, vid)
        if v.volume_type_id not in (g.volume_type_ids or []) or v.group_id:
            raise e.bad_request(f"Invalid volume: volume {v.id} cannot be added to group "
                                f"{g.id}.", "add_volumes")
        v.group_id = g.id
    for vid in _ids(body.get("remove_volumes"), "remove_volumes"):
        v = volumes.get_volume(s, ctx, vid)
        if v.group_id != g.id:
            raise e.bad_request(f"Invalid volume: volume {v.id} is not in group {g.id}.",
                                "remove_volumes")
        v.group_id = None
    return empty(202)


def _dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise e.bad_request("The action's argument must be an object.")
    return value


def _ids(value: Any, field: str) -> list[str]:
    if not value:
        return []
    if not isinstance(value, str):
        raise e.bad_request(f"{field} must be a comma-separated list of volume ids.", field)
    return [x.strip() for x in value.split(",") if x.strip()]


@route("POST", "/groups/{group_id}/action")
def group_action(req: Request, s: Session) -> Response:
    _need(req, "3.13")
    ctx = policy.writer(req.context, "group:delete")
    g = _get_group(s, ctx, req.path_params["group_id"])
    name, args = one_action(req.json())
    if name == "reset_status":
        policy.admin(ctx, "group:reset_status")
        g.status = schemas.one_of(_dict(args).get("status"), "status",
                                  ("available", "error", "creating", "deleting"))
        return empty(202)
    if name != "delete":
        raise e.bad_request(f"There is no such action: {name}", name)
    delete_volumes = schemas.boolean(_dict(args).get("delete-volumes", False),
                                     "delete-volumes")
    members = list(s.scalars(select(m.Volume).where(m.Volume.group_id == g.id)))
    if members and not delete_volumes:
        raise e.bad_request(f"Invalid group: group {g.id} still contains volumes; the "
                            "delete-volumes flag is required to delete it.")
    if s.scalar(select(m.GroupSnapshot.id).where(m.GroupSnapshot.group_id == g.id).limit(1)):
        raise e.bad_request(f"Invalid group: group {g.id} has group snapshots.")
    for v in members:
        volumes.delete_volume(s, ctx, v.id, cascade=True)
        v.group_id = None
    s.delete(g)
    return empty(202)


# -- group snapshots --------------------------------------------------------------------------

def _group_snapshot_status(s: Session, gs: m.GroupSnapshot) -> str:
    states = set(s.scalars(select(m.Snapshot.status).where(
        m.Snapshot.group_snapshot_id == gs.id)))
    if "error" in states:
        return "error"
    if "deleting" in states:
        return "deleting"
    if "creating" in states:
        return "creating"
    return "available"


def _group_snapshot_view(req: Request, s: Session, gs: m.GroupSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {"id": gs.id, "name": gs.name, "description": gs.description,
                           "status": _group_snapshot_status(s, gs), "group_id": gs.group_id,
                           "group_type_id": gs.group_type_id,
                           "created_at": views.iso(gs.created_at)}
    if at_least(req, "3.58"):
        out["project_id"] = gs.project_id
    return out


def _get_group_snapshot(s: Session, ctx: RequestContext, ident: str) -> m.GroupSnapshot:
    gs = s.get(m.GroupSnapshot, ident)
    if gs is None or not policy.owns(ctx, gs.project_id):
        raise NotFound(f"GroupSnapshot {ident} could not be found.")
    return gs


@route("POST", "/group_snapshots")
def create_group_snapshot(req: Request, s: Session) -> Response:
    _need(req, "3.14")
    ctx = policy.writer(req.context, "group:create_group_snapshot")
    body = schemas.body_of(req.json(), "group_snapshot")
    group_id = body.get("group_id")
    if not isinstance(group_id, str) or not group_id:
        raise e.bad_request("Group ID must be provided to create a group snapshot.",
                            "group_id")
    g = _get_group(s, ctx, group_id)
    members = list(s.scalars(select(m.Volume).where(m.Volume.group_id == g.id)))
    if not members:
        raise e.bad_request(f"Invalid group: group {g.id} has no volumes.", "group_id")
    gs = m.GroupSnapshot(group_id=g.id, project_id=g.project_id,
                         name=schemas.text(body.get("name"), "name"),
                         description=schemas.text(body.get("description"), "description"),
                         group_type_id=g.group_type_id, created_at=utcnow())
    s.add(gs)
    s.flush()
    for v in members:
        snap = snapshots.create_snapshot(s, ctx, {"volume_id": v.id, "force": True,
                                                  "name": f"snapshot-{gs.id}"})
        snap.group_snapshot_id = gs.id
    s.flush()
    return json_response({"group_snapshot": _group_snapshot_view(req, s, gs)}, 202)


@route("GET", "/group_snapshots")
def list_group_snapshots(req: Request, s: Session) -> Response:
    return _list_group_snapshots(req, s, False)


@route("GET", "/group_snapshots/detail")
def list_group_snapshots_detail(req: Request, s: Session) -> Response:
    return _list_group_snapshots(req, s, True)


def _list_group_snapshots(req: Request, s: Session, detail: bool) -> Response:
    _need(req, "3.14")
    return _listing(req, s, detail, m.GroupSnapshot, "group_snapshots",
                    "group:get_all_group_snapshots", _group_snapshot_view)


@route("GET", "/group_snapshots/{group_snapshot_id}")
def show_group_snapshot(req: Request, s: Session) -> Response:
    _need(req, "3.14")
    ctx = policy.reader(req.context, "group:get_group_snapshot")
    gs = _get_group_snapshot(s, ctx, req.path_params["group_snapshot_id"])
    return json_response({"group_snapshot": _group_snapshot_view(req, s, gs)})


@route("DELETE", "/group_snapshots/{group_snapshot_id}")
def delete_group_snapshot(req: Request, s: Session) -> Response:
    _need(req, "3.14")
    ctx = policy.writer(req.context, "group:delete_group_snapshot")
    gs = _get_group_snapshot(s, ctx, req.path_params["group_snapshot_id"])
    for snap in s.scalars(select(m.Snapshot).where(m.Snapshot.group_snapshot_id == gs.id)):
        snapshots.delete_snapshot(s, ctx, snap.id, force=True)
        snap.group_snapshot_id = None
    s.delete(gs)
    return empty(202)
