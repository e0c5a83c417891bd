"""/v3/volumes: create, list (summary and detail), show, update, delete, summary, and
the volume's metadata routes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, empty, json_response
from gureum.db import utcnow
from gureum.volume import errors as e
from gureum.volume import policy, schemas, views, volumes
from gureum.volume.api import route
from gureum.volume.api_common import next_links


def _ctx(req: Request, write: bool, rule: str) -> Any:
    return policy.writer(req.context, rule) if write else policy.reader(req.context, rule)


@route("POST", "/volumes")
def create(req: Request, s: Session) -> Response:
    ctx = _ctx(req, True, "volume:create")
    body = schemas.body_of(req.json(), "volume")
    v = volumes.create_volume(s, ctx, body)
    return json_response({"volume": views.volume(req, v)}, 202)


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = _ctx(req, False, "volume:get_all")
    rows = volumes.list_volumes(s, ctx, req.query)
    shape = views.volume if detail else views.volume_summary
    body: dict[str, Any] = {"volumes": [shape(req, v) for v in rows]}
    links = next_links(req, rows, req.arg("limit"))
    if links:
        body["volumes_links"] = links
    if at_least(req, "3.34") and req.arg("with_count"):
        body["count"] = len(rows)
    return json_response(body)


@route("GET", "/volumes")
def list_volumes(req: Request, s: Session) -> Response:
    return _list(req, s, False)


@route("GET", "/volumes/detail")
def list_detail(req: Request, s: Session) -> Response:
    return _list(req, s, True)


@route("GET", "/volumes/summary")
def summary(req: Request, s: Session) -> Response:
    ctx = _ctx(req, False, "volume:get_volume_summary")
    query = {k: v for k, v in req.query.items() if k in ("all_tenants", "project_id")}
    rows = volumes.list_volumes(s, ctx, query)
    out: dict[str, Any] = {"total_size": sum(v.size for v in rows), "total_count": len(rows)}
    if at_least(req, "3.36"):
        meta: dict[str, list[str]] = {}
        for v in rows:
            for k, val in (v.metadata_ or {}).items():
                meta.setdefault(k, [])
                if val not in meta[k]:
                    meta[k].append(val)
        out["metadata"] = meta
    return json_response({"volume-summary": out})


@route("GET", "/volumes/{volume_id}")
def show(req: Request, s: Session) -> Response:
    ctx = _ctx(req, False, "volume:get")
    v = volumes.get_volume(s, ctx, req.path_params["volume_id"])
    return json_response({"volume": views.volume(req, v)})


@route("PUT", "/volumes/{volume_id}")
def update(req: Request, s: Session) -> Response:
    ctx = _ctx(req, True, "volume:update")
    body = schemas.body_of(req.json(), "volume")
    v = volumes.update_volume(s, ctx, req.path_params["volume_id"], body)
    return json_response({"volume": views.volume(req, v)})


@route("DELETE", "/volumes/{volume_id}")
def delete(req: Request, s: Session) -> Response:
    ctx = _ctx(req, True, "volume:delete")
    cascade = schemas.boolean(req.arg("cascade") or "false", "cascade")
    force = schemas.boolean(req.arg("force") or "false", "force")
    if force:
        policy.admin(ctx, "volume:force_delete")
    volumes.delete_volume(s, ctx, req.path_params["volume_id"], cascade=cascade, force=force)
    return empty(202)


# -- metadata ----------------------------------------------------------------------------

def _meta_volume(req: Request, s: Session, write: bool) -> Any:
    ctx = _ctx(req, write, "volume:update_volume_metadata" if write
               else "volume:get_volume_metadata")
    v = volumes.get_volume(s, ctx, req.path_params["volume_id"])
    if write and v.status in ("maintenance", "uploading") and not ctx.is_admin:
        raise e.invalid_volume(f"Volume status must be available or in-use, but current "
                               f"status is: {v.status}.")
    return v


@route("GET", "/volumes/{volume_id}/metadata")
def show_metadata(req: Request, s: Session) -> Response:
    v = _meta_volume(req, s, False)
    return json_response({"metadata": dict(v.metadata_ or {})})


@route("POST", "/volumes/{volume_id}/metadata")
def add_metadata(req: Request, s: Session) -> Response:
    v = _meta_volume(req, s, True)
    new = schemas.metadata(_metadata_body(req))
    v.metadata_ = {**(v.metadata_ or {}), **new}
    v.updated_at = utcnow()
    return json_response({"metadata": dict(v.metadata_)})


@route("PUT", "/volumes/{volume_id}/metadata")
def replace_metadata(req: Request, s: Session) -> Response:
    v = _meta_volume(req, s, True)
    v.metadata_ = schemas.metadata(_metadata_body(req))
    v.updated_at = utcnow()
    return json_response({"metadata": dict(v.metadata_)})


def _metadata_body(req: Request) -> Any:
    body = req.json()
    if not isinstance(body, dict) or "metadata" not in body:
        raise e.bad_request("Malformed request body: 'metadata' is required.", "metadata")
    return body["metadata"]


@route("GET", "/volumes/{volume_id}/metadata/{key}")
def show_metadata_item(req: Request, s: Session) -> Response:
    v = _meta_volume(req, s, False)
    key = req.path_params["key"]
    if key not in (v.metadata_ or {}):
        raise _meta_missing(v.id, key)
    return json_response({"meta": {key: v.metadata_[key]}})


def _meta_missing(volume_id: str, key: str) -> Exception:
    from gureum.errors import NotFound

    return NotFound(f"Volume {volume_id} has no metadata with key {key}.")


@route("PUT", "/volumes/{volume_id}/metadata/{key}")
def update_metadata_item(req: Request, s: Session) -> Response:
    v = _meta_volume(req, s, True)
    key = req.path_params["key"]
    body = req.json()
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict) or len(meta) != 1:
        raise e.bad_request("Request body must have exactly one item under 'meta'.", "meta")
    if key not in meta:
        raise e.bad_request("Request body and URI mismatch", "meta")
    item = schemas.metadata(meta, "meta")
    v.metadata_ = {**(v.metadata_ or {}), **item}
    v.updated_at = utcnow()
    return json_response({"meta": item})


@route("DELETE", "/volumes/{volume_id}/metadata/{key}")
def delete_metadata_item(req: Request, s: Session) -> Response:
    v = _meta_volume(req, s, True)
    key = req.path_params["key"]
    meta = dict(v.metadata_ or {})
    if key not in meta:
        raise _meta_missing(v.id, key)
    del meta[key]
    v.metadata_ = meta
    v.updated_at = utcnow()
    return empty(200)
