"""Volume transfers: a project offers a volume (``auth_key`` shown once), another
project accepts it with the key and becomes its owner.

Served at ``/volume-transfers`` (3.55+) and the older ``/os-volume-transfer``.
The volume is ``awaiting-transfer`` while offered; accepting moves it (and,
unless ``no_snapshots``, its snapshots) to the accepting project, within that
project's quota.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, empty, json_response
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, quotas, schemas, views, volumes
from gureum.volume.api import route


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


def _get(s: Session, ctx: RequestContext, transfer_id: str) -> m.Transfer:
    t = s.get(m.Transfer, transfer_id)
    if t is None or not policy.owns(ctx, t.project_id):
        raise e.not_found("transfer", transfer_id)
    return t


def create(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "volume:create_transfer")
    body = schemas.body_of(req.json(), "transfer")
    volume_id = body.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise e.bad_request("Incorrect request body format: volume_id is required.",
                            "volume_id")
    v = volumes.get_volume(s, ctx, volume_id)
    no_snapshots = schemas.boolean(body.get("no_snapshots", False), "no_snapshots")
    volumes.change_status(s, v, "available", {"status": "awaiting-transfer"},
                          reason=f"Volume {v.id} status must be available to transfer, but "
                          f"current status is: {v.status}.")
    key = secrets.token_hex(8)
    salt = secrets.token_hex(8)
    t = m.Transfer(volume_id=v.id, project_id=v.project_id,
                   name=schemas.text(body.get("name"), "name"), salt=salt,
                   crypt_hash=_hash(salt, key), no_snapshots=no_snapshots,
                   created_at=utcnow())
    s.add(t)
    s.flush()
    return json_response({"transfer": views.transfer(req, t, auth_key=key)}, 202)


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = policy.reader(req.context, "volume:get_all_transfers")
    stmt = select(m.Transfer).order_by(m.Transfer.created_at.desc())
    all_projects = schemas.boolean(req.arg("all_tenants") or "0", "all_tenants")
    if not (ctx.is_admin and all_projects):
        stmt = stmt.where(m.Transfer.project_id == (ctx.project_id or ""))
    rows = list(s.scalars(stmt))
    return json_response({"transfers": [views.transfer(req, t, detail=detail) for t in rows]})


def list_summary(req: Request, s: Session) -> Response:
    return _list(req, s, False)


def list_detail(req: Request, s: Session) -> Response:
    return _list(req, s, True)


def show(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "volume:get_transfer")
    return json_response({"transfer": views.transfer(
        req, _get(s, ctx, req.path_params["transfer_id"]))})


def delete(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "volume:delete_transfer")
    t = _get(s, ctx, req.path_params["transfer_id"])
    v = s.get(m.Volume, t.volume_id)
    if v is not None and v.status == "awaiting-transfer":
        volumes.change_status(s, v, "awaiting-transfer", {"status": "available"})
    s.delete(t)
    return empty(202)


def accept(req: Request, s: Session) -> Response:
    ctx = policy.writer(req.context, "volume:accept_transfer")
    project_id = policy.project_of(ctx)
    body = schemas.body_of(req.json(), "accept")
    key = body.get("auth_key")
    if not isinstance(key, str) or not key:
        raise e.bad_request("Incorrect request body format: auth_key is required.",
                            "auth_key")
    transfer_id = req.path_params["transfer_id"]
    t = s.get(m.Transfer, transfer_id)
    if t is None:
        raise e.not_found("transfer", transfer_id)
    if not hmac.compare_digest(t.crypt_hash, _hash(t.salt, key)):
        raise e.bad_request(f"Invalid auth key: Attempt to transfer {t.id} with invalid auth "
                            "key.", "auth_key")
    v = s.get(m.Volume, t.volume_id)
    if v is None or v.status != "awaiting-transfer":
        raise e.invalid_volume("Volume is not awaiting a transfer.")
    snaps = [] if t.no_snapshots else list(s.scalars(
        select(m.Snapshot).where(m.Snapshot.volume_id == v.id)))
    quotas.check(s, project_id, v.volume_type.name, volumes=1, snapshots=len(snaps),
                 gigabytes=v.size + sum(sn.size for sn in snaps), volume_size=v.size)
    volumes.change_status(s, v, "awaiting-transfer", {
        "status": "available", "project_id": project_id, "user_id": ctx.user_id})
    for snap in snaps:
        snap.project_id = project_id
        snap.user_id = ctx.user_id
    out: dict[str, Any] = {"id": t.id, "name": t.name, "volume_id": v.id,
                           "links": views.transfer(req, t)["links"]}
    s.delete(t)
    return json_response({"transfer": out}, 202)


for _base in ("/volume-transfers", "/os-volume-transfer"):
    route("POST", _base)(create)
    route("GET", _base)(list_summary)
    route("GET", f"{_base}/detail")(list_detail)
    route("GET", f"{_base}/{{transfer_id}}")(show)
    route("DELETE", f"{_base}/{{transfer_id}}")(delete)
    route("POST", f"{_base}/{{transfer_id}}/accept")(accept)
