"""/v3/snapshots: create, list (summary and detail), show, update, delete, metadata,
and the snapshot actions (admin's reset_status and force_delete)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, empty, json_response
from gureum.errors import NotFound
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, schemas, snapshots, views
from gureum.volume.api import route
from gureum.volume.api_common import admin_status_action, next_links

STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "unmanaging",
            "backing-up", "restoring")


@route("POST", "/snapshots")
def create(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "volume:create_snapshot")
    body = schemas.body_of(req.json(), "snapshot")
    snap = snapshots.create_snapshot(s, ctx, body)
    return json_response({"snapshot": views.snapshot(req, snap)}, 202)


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = policy.reader(req.context, "volume:get_all_snapshots")
    rows = snapshots.list_snapshots(s, ctx, req.query)
    shaped = [views.snapshot(req, r) for r in rows]
    if not detail:
        shaped = [{k: v for k, v in d.items()
                   if not k.startswith("os-extended-snapshot-attributes")} for d in shaped]
    body: dict[str, Any] = {"snapshots": shaped}
    links = next_links(req, rows, req.arg("limit"))
    if links:
        body["snapshots_links"] = links
    return json_response(body)


@route("GET", "/snapshots")
def list_snapshots(req: Request, s: Session) -> Response:
    return _list(req, s, False)


@route("GET", "/snapshots/detail")
def list_detail(req: Request, s: Session) -> Response:
    return _list(req, s, True)


@route("GET", "/snapshots/{snapshot_id}")
def show(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "volume:get_snapshot")
    snap = snapshots.get_snapshot(s, ctx, req.path_params["snapshot_id"])
    return json_response({"snapshot": views.snapshot(req, snap)})


@route("PUT", "/snapshots/{snapshot_id}")
def update(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "volume:update_snapshot")
    body = schemas.body_of(req.json(), "snapshot")
    snap = snapshots.update_snapshot(s, ctx, req.path_params["snapshot_id"], body)
    return json_response({"snapshot": views.snapshot(req, snap)})


@route("DELETE", "/snapshots/{snapshot_id}")
def delete(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "volume:delete_snapshot")
    snapshots.delete_snapshot(s, ctx, req.path_params["snapshot_id"])
    return empty(202)


@route("POST", "/snapshots/{snapshot_id}/action")
def snapshot_action(req: Request, s: Session) -> Response:
    return admin_status_action(req, s, "snapshot", snapshots.get_snapshot,
                               snapshots.delete_snapshot, STATUSES)


# -- metadata ------------------------------------------------------------------------------

def _snap(req: Request, s: Session, write: bool) -> m.Snapshot:
    ctx = policy.writer(req.context, "volume:update_snapshot_metadata") if write else \
        policy.reader(req.context, "volume:get_snapshot_metadata")
    return snapshots.get_snapshot(s, ctx, req.path_params["snapshot_id"])


def _meta_body(req: Request) -> Any:
    body = req.json()
    if not isinstance(body, dict) or "metadata" not in body:
        raise e.bad_request("Malformed request body: 'metadata' is required.", "metadata")
    return body["metadata"]


@route("GET", "/snapshots/{snapshot_id}/metadata")
def show_metadata(req: Request, s: Session) -> Response:
    return json_response({"metadata": dict(_snap(req, s, False).metadata_ or {})})


@route("POST", "/snapshots/{snapshot_id}/metadata")
def add_metadata(req: Request, s: Session) -> Response:
    snap = _snap(req, s, True)
    snap.metadata_ = {**(snap.metadata_ or {}), **schemas.metadata(_meta_body(req))}
    return json_response({"metadata": dict(snap.metadata_)})


@route("PUT", "/snapshots/{snapshot_id}/metadata")
def replace_metadata(req: Request, s: Session) -> Response:
    snap = _snap(req, s, True)
    snap.metadata_ = schemas.metadata(_meta_body(req))
    return json_response({"metadata": dict(snap.metadata_)})


@route("GET", "/snapshots/{snapshot_id}/metadata/{key}")
def show_metadata_item(req: Request, s: Session) -> Response:
    snap = _snap(req, s, False)
    key = req.path_params["key"]
    if key not in (snap.metadata_ or {}):
        raise NotFound(f"Snapshot {snap.id} has no metadata with key {key}.")
    return json_response({"meta": {key: snap.metadata_[key]}})


@route("PUT", "/snapshots/{snapshot_id}/metadata/{key}")
def update_metadata_item(req: Request, s: Session) -> Response:
    snap = _snap(req, s, True)
    key = req.path_params["key"]
    body = req.json()
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict) or len(meta) != 1 or key not in meta:
        raise e.bad_request("Request body and URI mismatch", "meta")
    item = schemas.metadata(meta, "meta")
    snap.metadata_ = {**(snap.metadata_ or {}), **item}
    return json_response({"meta": item})


@route("DELETE", "/snapshots/{snapshot_id}/metadata/{key}")
def delete_metadata_item(req: Request, s: Session) -> Response:
    snap = _snap(req, s, True)
    key = req.path_params["key"]
    meta = dict(snap.metadata_ or {})
    if key not in meta:
        raise NotFound(f"Snapshot {snap.id} has no metadata with key {key}.")
    del meta[key]
    snap.metadata_ = meta
    return empty(200)
