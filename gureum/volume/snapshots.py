"""Snapshots: create (``force`` for an in-use volume), list, show, update, delete.

As for volumes, the API writes the row (``creating`` / ``deleting``) and an
outbox row; the conductor's volume manager copies or removes the data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db import compare_and_swap, utcnow
from gureum.volume import errors as e
from gureum.volume import listing, policy, quotas, schemas, volumes
from gureum.volume import models as m


def get_snapshot(s: Session, ctx: RequestContext, snapshot_id: str) -> m.Snapshot:
    snap = s.get(m.Snapshot, snapshot_id)
    if snap is None or not policy.owns(ctx, snap.project_id):
        raise e.not_found("snapshot", snapshot_id)
    return snap


def create_snapshot(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.Snapshot:
    volume_id = body.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise e.bad_request("Invalid input for field/attribute volume_id. Value: None.",
                            "volume_id")
    v = volumes.get_volume(s, ctx, volume_id)
    force = schemas.boolean(body.get("force", False), "force")
    allowed = ("available", "in-use") if force else ("available",)
    if v.status not in allowed:
        if v.status == "in-use":
            raise e.invalid_volume(f"Volume {v.id} status must be available, but current "
                                   "status is: in-use (use --force to snapshot an in-use "
                                   "volume).")
        raise e.invalid_volume(f"Volume {v.id} status must be available or in-use, but "
                               f"current status is: {v.status}.")
    quotas.check(s, v.project_id, v.volume_type.name, snapshots=1, gigabytes=v.size)
    snap = m.Snapshot(volume_id=v.id, project_id=v.project_id, user_id=ctx.user_id,
                      name=schemas.text(body.get("name", body.get("display_name")), "name"),
                      description=schemas.text(body.get("description",
                                                        body.get("display_description")),
                                               "description"),
                      size=v.size, status="creating", progress="0%",
                      metadata_=schemas.metadata(body.get("metadata")), created_at=utcnow())
    s.add(snap)
    s.flush()
    volumes.hand_over(s, "snapshot", snap.id, ctx.request_id)
    return snap


FILTERS = ("name", "status", "volume_id", "project_id", "display_name", "metadata")


def list_snapshots(s: Session, ctx: RequestContext, query: dict[str, list[str]]
                   ) -> list[m.Snapshot]:
    def arg(name: str) -> str | None:
        return listing.last_arg(query, name)

    all_projects = schemas.boolean(arg("all_tenants") or arg("all_projects") or "0",
                                   "all_tenants")
    stmt = select(m.Snapshot).order_by(m.Snapshot.created_at.desc(), m.Snapshot.id.desc())
    if not (ctx.is_admin and (all_projects or arg("project_id"))):
        stmt = stmt.where(m.Snapshot.project_id == (ctx.project_id or ""))
    rows = list(s.scalars(stmt))
    for key in FILTERS:
        want = arg(key)
        if want is None:
            continue
        if key in ("name", "display_name"):
            rows = [r for r in rows if (r.name or "") == want]
        elif key == "metadata":
            wanted = volumes._parse_dict(want, key)
            rows = [r for r in rows
                    if all((r.metadata_ or {}).get(k) == v for k, v in wanted.items())]
        else:
            rows = [r for r in rows if getattr(r, key) == want]
    return listing.page(rows, query, "snapshot")


def update_snapshot(s: Session, ctx: RequestContext, snapshot_id: str, body: dict[str, Any]
                    ) -> m.Snapshot:
    snap = get_snapshot(s, ctx, snapshot_id)
    volumes.update_described(s, snap, body, "snapshot")
    return snap


def delete_snapshot(s: Session, ctx: RequestContext, snapshot_id: str, force: bool = False
                    ) -> None:
    snap = get_snapshot(s, ctx, snapshot_id)
    allowed = [st for st in ("available", "error", "error_deleting", "creating")
               if force or st in ("available", "error")]
    if snap.status not in allowed or not compare_and_swap(
            s, m.Snapshot, snap.id, {"status": allowed},
            {"status": "deleting", "updated_at": utcnow()}):
        raise e.invalid_snapshot(f"Snapshot status must be available or error and must not "
                                 f"be part of a group, but current status is: {snap.status}.")
    # A volume made from it keeps its data: volumes are full copies.
    volumes.hand_over(s, "snapshot", snap.id, ctx.request_id)
