"""/v3/backups: create (from a volume or its snapshot), list, show, update (3.9),
delete, restore, and the admin's reset_status and force_delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, empty, json_response
from gureum.db import utcnow
from gureum.volume import backups, policy, schemas, views
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume.api import route
from gureum.volume.api_common import admin_status_action

STATUSES = ("creating", "available", "deleting", "error", "restoring", "error_restoring",
            "error_deleting")


def _links(req: Request, b: m.Backup) -> list[dict[str, str]]:
    return views.links(req, "backups", b.id, b.project_id)


def _view(req: Request, s: Session, b: m.Backup) -> dict[str, Any]:
    dependent = s.scalar(select(m.Backup.id).where(m.Backup.parent_id == b.id).limit(1))
    out: dict[str, Any] = {
        "id": b.id, "name": b.name, "description": b.description, "status": b.status,
        "availability_zone": m.ZONE, "container": b.container or "backups",
        "created_at": views.iso(b.created_at), "updated_at": views.iso(b.updated_at),
        "size": b.size, "object_count": 1 if b.location else 0, "volume_id": b.volume_id,
        "snapshot_id": b.snapshot_id, "is_incremental": b.is_incremental,
        "has_dependent_backups": dependent is not None, "fail_reason": b.fail_reason,
        "data_timestamp": views.iso(b.data_timestamp or b.created_at),
        "links": _links(req, b)}
    if at_least(req, "3.18"):
        out["os-backup-project-attr:project_id"] = b.project_id
    if at_least(req, "3.43"):
        out["metadata"] = dict(b.metadata_ or {})
    if at_least(req, "3.56"):
        out["user_id"] = b.user_id
    return out


@route("POST", "/backups")
def create(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "backup:create")
    body = schemas.body_of(req.json(), "backup")
    b = backups.create_backup(s, ctx, body)
    return json_response({"backup": {"id": b.id, "name": b.name, "links": _links(req, b)}},
                         202)


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = policy.reader(req.context, "backup:get_all")
    stmt = select(m.Backup).order_by(m.Backup.created_at.desc(), m.Backup.id.desc())
    all_projects = schemas.boolean(req.arg("all_tenants") or "0", "all_tenants")
    if not (ctx.is_admin and all_projects):
        stmt = stmt.where(m.Backup.project_id == (ctx.project_id or ""))
    rows = list(s.scalars(stmt))
    for key in ("name", "status", "volume_id"):
        want = req.arg(key)
        if want is not None:
            rows = [b for b in rows if getattr(b, key) == want]
    limit = req.arg("limit")
    if limit is not None and schemas.is_uint(limit):
        rows = rows[:int(limit)]
    if detail:
        shaped = [_view(req, s, b) for b in rows]
    else:
        shaped = [{"id": b.id, "name": b.name, "links": _links(req, b)} for b in rows]
    return json_response({"backups": shaped})


@route("GET", "/backups")
def list_backups(req: Request, s: Session) -> Response:
    return _list(req, s, False)


@route("GET", "/backups/detail")
def list_detail(req: Request, s: Session) -> Response:
    return _list(req, s, True)


@route("GET", "/backups/{backup_id}")
def show(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "backup:get")
    return json_response({"backup": _view(req, s, backups.get_backup(
        s, ctx, req.path_params["backup_id"]))})


@route("PUT", "/backups/{backup_id}")
def update(req: Request, s: Session) -> Response:
    raw = req.json()  # a malformed body is reported as such at every microversion
    if not at_least(req, "3.9"):
        raise e.bad_request("Updating a backup needs microversion 3.9 or later.")
    ctx = policy.writer(req.context, "backup:update")
    b = backups.get_backup(s, ctx, req.path_params["backup_id"])
    body = schemas.body_of(raw, "backup")
    if "name" in body:
        b.name = schemas.text(body["name"], "name")
    if "description" in body:
        b.description = schemas.text(body["description"], "description")
    if "metadata" in body and at_least(req, "3.43"):
        b.metadata_ = schemas.metadata(body["metadata"])
    b.updated_at = utcnow()
    s.flush()
    return json_response({"backup": _view(req, s, b)})


@route("DELETE", "/backups/{backup_id}")
def delete(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "backup:delete")
    backups.delete_backup(s, ctx, req.path_params["backup_id"])
    return empty(202)


@route("POST", "/backups/{backup_id}/restore")
def restore(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "backup:restore")
    body = schemas.body_of(req.json(), "restore")
    backup_id = req.path_params["backup_id"]
    v = backups.restore_backup(s, ctx, backup_id, body)
    return json_response({"restore": {"backup_id": backup_id, "volume_id": v.id,
                                      "volume_name": v.name}}, 202)


@route("POST", "/backups/{backup_id}/action")
def backup_action(req: Request, s: Session) -> Response:
    return admin_status_action(req, s, "backup", backups.get_backup, backups.delete_backup,
                               STATUSES)
