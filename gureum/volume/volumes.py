"""Volumes: create (empty, from an image, a snapshot or another volume), show, list,
update, delete, and the state every change starts from.

The API only writes rows: a new or changing volume gets its transitional status
(creating, deleting, extending, uploading) and an outbox row naming it, in one
transaction; the conductor's volume manager (``gureum/volume/manager.py``) does
the storage work once that commits and writes the outcome. The status and the
row's source columns (``snapshot_id``, ``source_volid``, ``image_id``) and
``task`` say what is left to do, so a conductor restarted mid-copy finds it.

Every status change is a compare-and-swap on the status the request saw; of two
racing requests one wins and the other gets Cinder's 400 (invalid volume).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.context import RequestContext
from gureum.db import compare_and_swap, utcnow
from gureum.volume import errors as e
from gureum.volume import listing, policy, quotas, schemas, types
from gureum.volume import models as m

GiB = 1 << 30

# Statuses from which a volume may be deleted (Cinder's delete rules).
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
TRANSITIONAL = ("creating", "deleting", "extending", "uploading", "downloading",
                "reverting")
STATUSES = ("creating", "available", "reserved", "attaching", "detaching", "in-use",
            "maintenance", "deleting", "awaiting-transfer", "error", "error_deleting",
            "backing-up", "restoring-backup", "error_backing-up", "error_restoring",
            "error_extending", "downloading", "uploading", "retyping", "extending",
            "reverting")


def visible(ctx: RequestContext, all_projects: bool = False) -> ColumnElement[bool] | None:
    """The WHERE clause of the volumes a listing shows (None: every volume)."""
    if ctx.is_admin and all_projects:
        return None
    if not ctx.project_id:
        return false()
    return m.Volume.project_id == ctx.project_id


def get_volume(s: Session, ctx: RequestContext, volume_id: str) -> m.Volume:
    """The volume if ctx may see it; 404 otherwise (another project's too)."""
    v = s.get(m.Volume, volume_id) if isinstance(volume_id, str) else None
    if v is None or not policy.owns(ctx, v.project_id):
        raise e.not_found("volume", volume_id)
    return v


def hand_over(s: Session, kind: str, ident: str, request_id: str) -> None:
    """Ask the conductor's volume manager to do what the row's status says."""
    outbox.add(s, "volume_work", {"kind": kind, "ident": ident, "request_id": request_id})


def change_status(s: Session, v: m.Volume, expected: tuple[str, ...] | str,
                  values: dict[str, Any], reason: str | None = None) -> None:
    """CAS the volume from one of ``expected``; 400 (Cinder's InvalidVolume) if it moved."""
    allowed = (expected,) if isinstance(expected, str) else expected
    if v.status not in allowed or not compare_and_swap(
            s, m.Volume, v.id, {"status": list(allowed)}, {**values, "updated_at": utcnow()}):
        s.refresh(v)
        raise e.invalid_volume(reason or (
            f"Volume status must be {' or '.join(allowed)}, but current status is: "
            f"{v.status}."))
    s.refresh(v)


# -- create --------------------------------------------------------------------------

def _image_source(s: Session, ctx: RequestContext, image_ref: str) -> tuple[Any, int]:
    """The image to copy and its size in GiB (at least its minDisk)."""
    from gureum.image import models as im
    from gureum.image import service as images

    image = images.get_visible(s, ctx, str(image_ref))
    if image.status != im.ACTIVE:
        raise e.bad_request(f"Invalid image identifier or unable to access requested image: "
                            f"image {image.id} is not active.", "imageRef")
    size_bytes = image.virtual_size or image.size or 0
    return image, max(1, math.ceil(size_bytes / GiB), image.min_disk or 0)


def image_metadata_of(image: Any) -> dict[str, str]:
    """What Cinder copies from an image into the volume's image metadata."""
    meta = {"image_id": image.id, "image_name": image.name or "",
            "checksum": image.checksum or "", "container_format": image.container_format or "",
            "disk_format": image.disk_format or "", "min_disk": str(image.min_disk or 0),
            "min_ram": str(image.min_ram or 0), "size": str(image.size or 0)}
    for prop in image.properties:
        meta[prop.name] = prop.value
    return meta


def create_volume(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.Volume:
    project_id = policy.project_of(ctx)
    name = schemas.text(body.get("name", body.get("display_name")), "name")
    description = schemas.text(body.get("description", body.get("display_description")),
                               "description")
    metadata = schemas.metadata(body.get("metadata"))
    zone = body.get("availability_zone")
    if zone is not None and zone != m.ZONE:
        raise e.bad_request(f"Availability zone '{zone}' is invalid.", "availability_zone")
    if body.get("backup_id"):
        raise e.not_found("backup", str(body["backup_id"]))
    if body.get("consistencygroup_id"):
        raise e.not_found("group", str(body["consistencygroup_id"]))
    group = None
    if body.get("group_id"):
        group = s.get(m.Group, str(body["group_id"]))
        if group is None or not policy.owns(ctx, group.project_id):
            raise e.not_found("group", str(body["group_id"]))
        if group.status != "available":
            raise e.bad_request(f"Invalid group: group {group.id} status must be available.",
                                "group_id")
    multiattach = schemas.boolean(body.get("multiattach", False), "multiattach")
    size = schemas.size(body.get("size"), allow_none=True)
    sources = [k for k in ("snapshot_id", "source_volid", "imageRef", "image_id")
               if body.get(k)]
    if len(sources) > 1 and set(sources) != {"imageRef", "image_id"}:
        raise e.bad_request("Only one of snapshot_id, source_volid and imageRef may be "
                            "given.", sources[1])
    vtype = None
    if body.get("volume_type"):
        vtype = types.find(s, ctx, str(body["volume_type"]))
    snapshot_id = source_volid = None
    image = None
    min_size = 1
    bootable = False
    image_meta: dict[str, str] = {}
    if body.get("snapshot_id"):
        snap = s.get(m.Snapshot, str(body["snapshot_id"]))
        if snap is None or not policy.owns(ctx, snap.project_id):
            raise e.not_found("snapshot", str(body["snapshot_id"]))
        if snap.status != "available":
            raise e.invalid_snapshot("Originating snapshot status must be one of 'available' "
                                     "values")
        src = s.get(m.Volume, snap.volume_id)
        snapshot_id, min_size = snap.id, snap.size
        if size is not None and size < snap.size:
            raise e.bad_request(f"Volume size '{size}'GB cannot be smaller than the snapshot "
                                f"size {snap.size}GB. They must be >= original snapshot "
                                "size.", "size")
        if src is not None:
            vtype = vtype or src.volume_type
            bootable = src.bootable
            image_meta = dict(src.image_metadata or {})
    elif body.get("source_volid"):
        src = s.get(m.Volume, str(body["source_volid"]))
        if src is None or not policy.owns(ctx, src.project_id):
            raise e.not_found("volume", str(body["source_volid"]))
        if src.status not in ("available", "in-use"):
            raise e.invalid_volume(f"Source volume status must be available or in-use, but "
                                   f"current status is: {src.status}.")
        source_volid, min_size = src.id, src.size
        if size is not None and size < src.size:
            raise e.bad_request(f"Volume size '{size}'GB cannot be smaller than original "
                                f"volume size {src.size}GB. They must be >= original volume "
                                "size.", "size")
        vtype = vtype or src.volume_type
        bootable = src.bootable
        image_meta = dict(src.image_metadata or {})
    elif body.get("imageRef") or body.get("image_id"):
        image, min_size = _image_source(s, ctx, str(body.get("imageRef") or body["image_id"]))
        if size is not None and size < min_size:
            if image.min_disk and size < image.min_disk:
                raise e.bad_request(f"Volume size {size}GB cannot be smaller than the image "
                                    f"minDisk size {image.min_disk}GB.", "size")
            raise e.bad_request(f"Size of specified image {min_size}GB is larger than volume "
                                f"size {size}GB.", "size")
        bootable = True
        image_meta = image_metadata_of(image)
    if size is None:
        if not (snapshot_id or source_volid or image is not None):
            raise e.bad_request("Invalid input for field/attribute size. Value: None. None "
                                "is not of type 'integer'", "size")
        size = min_size
    vtype = vtype or types.default_for(s, project_id)
    # A type whose extra specs say multiattach makes multiattach volumes (Cinder 3.50).
    multiattach = multiattach or (vtype.extra_specs or {}).get("multiattach", "").lower() \
        in ("<is> true", "true")
    if group is not None and vtype.id not in (group.volume_type_ids or []):
        raise e.bad_request(f"Invalid volume: volume type {vtype.id} is not supported by "
                            f"group {group.id}.", "volume_type")
    quotas.check(s, project_id, vtype.name, volumes=1, gigabytes=size, volume_size=size)
    v = m.Volume(project_id=project_id, user_id=ctx.user_id, name=name,
                 description=description, size=size, status="creating",
                 availability_zone=m.ZONE, volume_type_id=vtype.id, snapshot_id=snapshot_id,
                 source_volid=source_volid, group_id=group.id if group else None,
                 image_id=image.id if image is not None else None,
                 bootable=bootable, multiattach=multiattach, metadata_=metadata,
                 image_metadata=image_meta, admin_metadata={}, task={}, created_at=utcnow())
    s.add(v)
    s.flush()
    hand_over(s, "volume", v.id, ctx.request_id)
    return v


# -- list ------------------------------------------------------------------------------

FILTERS = ("name", "status", "bootable", "metadata", "availability_zone", "project_id",
           "volume_type", "volume_type_id", "size", "multiattach", "image_metadata",
           "display_name", "snapshot_id", "source_volid", "created_at", "group_id")


def _parse_dict(text: str, field: str) -> dict[str, str]:
    import ast
    import json

    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except Exception:  # any text that is not a literal dict is a 400
            continue
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    raise e.bad_request(f"Invalid filter {field}: {text!r} is not a dictionary.", field)


def _has_items(current: dict[str, str] | None, want: str, key: str) -> bool:
    have = current or {}
    return all(have.get(k) == val for k, val in _parse_dict(want, key).items())


# A listing filter: does volume v pass the value the client gave for this key?
MATCHERS: dict[str, Callable[[m.Volume, str], bool]] = {
    "name": lambda v, want: (v.name or "") == want,
    "display_name": lambda v, want: (v.name or "") == want,
    "status": lambda v, want: v.status == want,
    "bootable": lambda v, want: v.bootable == schemas.boolean(want, "bootable"),
    "multiattach": lambda v, want: v.multiattach == schemas.boolean(want, "multiattach"),
    "metadata": lambda v, want: _has_items(v.metadata_, want, "metadata"),
    "image_metadata": lambda v, want: _has_items(v.image_metadata, want, "image_metadata"),
    "availability_zone": lambda v, want: v.availability_zone == want,
    "project_id": lambda v, want: v.project_id == want,
    "volume_type": lambda v, want: want in (v.volume_type_id, v.volume_type.name),
    "volume_type_id": lambda v, want: want in (v.volume_type_id, v.volume_type.name),
    "size": lambda v, want: str(v.size) == want,
    "snapshot_id": lambda v, want: v.snapshot_id == want,
    "source_volid": lambda v, want: v.source_volid == want,
    "group_id": lambda v, want: v.group_id == want,
}


def matches(v: m.Volume, filters: dict[str, str]) -> bool:
    return all(MATCHERS[key](v, want) for key, want in filters.items() if key in MATCHERS)


def list_volumes(s: Session, ctx: RequestContext, query: dict[str, list[str]]
                 ) -> list[m.Volume]:
    def arg(name: str) -> str | None:
        return listing.last_arg(query, name)

    all_projects = schemas.boolean(arg("all_tenants") or arg("all_projects") or "0",
                                   "all_tenants")
    filters = {k: v[-1] for k, v in query.items() if k in FILTERS}
    if "project_id" in filters and ctx.is_admin:
        all_projects = True
    stmt = select(m.Volume)
    clause = visible(ctx, all_projects)
    if clause is not None:
        stmt = stmt.where(clause)
    sort = arg("sort") or ""
    key, _, direction = (sort.split(",")[0] if sort else (arg("sort_key") or "created_at")
                         ).partition(":")
    direction = direction or arg("sort_dir") or "desc"
    column = {"created_at": m.Volume.created_at, "name": m.Volume.name,
              "size": m.Volume.size, "status": m.Volume.status, "id": m.Volume.id,
              "updated_at": m.Volume.updated_at}.get(key)
    if column is None:
        raise e.bad_request(f"Invalid sort key {key}.", "sort")
    order = column.asc() if direction == "asc" else column.desc()
    stmt = stmt.order_by(order, m.Volume.id.desc() if direction != "asc" else m.Volume.id)
    return listing.page([v for v in s.scalars(stmt) if matches(v, filters)], query, "volume")


# -- update and delete -----------------------------------------------------------------

def update_volume(s: Session, ctx: RequestContext, volume_id: str, body: dict[str, Any]
                  ) -> m.Volume:
    v = get_volume(s, ctx, volume_id)
    update_described(s, v, body, "volume")
    return v


def update_described(s: Session, row: m.Volume | m.Snapshot, body: dict[str, Any],
                     kind: str) -> None:
    """Set a volume's or snapshot's name, description and metadata from an update's
    ``body`` (the object under ``kind``, which must not be empty); the name and the
    description may also come under their v1 ``display_*`` names."""
    if not body:
        raise e.bad_request(f"Missing request body element '{kind}'.", kind)
    for key in ("name", "display_name"):
        if key in body:
            row.name = schemas.text(body[key], "name")
    for key in ("description", "display_description"):
        if key in body:
            row.description = schemas.text(body[key], "description")
    if "metadata" in body:
        row.metadata_ = schemas.metadata(body["metadata"])
    row.updated_at = utcnow()
    s.flush()


def delete_volume(s: Session, ctx: RequestContext, volume_id: str, cascade: bool = False,
                  force: bool = False) -> None:
    v = get_volume(s, ctx, volume_id)
    if v.status == "deleting":
        raise e.invalid_volume("Volume status must be available or error or error_restoring "
                               "or error_extending or error_managing and must not be "
                               "migrating, attached, belong to a group, have snapshots, "
                               "awaiting a transfer, or be disassociated from snapshots after "
                               f"volume transfer, but current status is: {v.status}.")
    attached = [a for a in v.attachments if a.attach_status != "detached"]
    if attached and not force:
        raise e.invalid_volume("Volume cannot be deleted while in attached state")
    allowed: tuple[str, ...] = m_statuses_any() if force else DELETABLE
    snaps = list(s.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == v.id)))
    if v.status in ("backing-up", "restoring-backup"):
        raise e.invalid_volume(f"Volume status must be available or error, but current "
                               f"status is: {v.status}.")
    if snaps and not cascade:
        raise e.invalid_volume("Volume has snapshots, so cannot be deleted; delete them "
                               "first or use --cascade.")
    for snap in snaps:
        if snap.status not in ("available", "error", "deleting"):
            raise e.invalid_snapshot(f"Snapshot {snap.id} status must be available or error, "
                                     f"but is {snap.status}.")
    change_status(s, v, allowed, {"status": "deleting", "task": {"op": "delete"}},
                  reason="Volume status must be available or error or error_restoring or "
                  "error_extending or error_managing and must not be migrating, attached, "
                  "belong to a group, have snapshots, awaiting a transfer, or be "
                  "disassociated from snapshots after volume transfer, but current status "
                  f"is: {v.status}.")
    for snap in snaps:
        snap.status = "deleting"
        snap.updated_at = utcnow()
    for t in s.scalars(select(m.Transfer).where(m.Transfer.volume_id == v.id)):
        s.delete(t)
    s.flush()
    hand_over(s, "volume", v.id, ctx.request_id)


def m_statuses_any() -> tuple[str, ...]:
    """Force delete: any status but deleting (Cinder's os-force_delete)."""
    return tuple(st for st in STATUSES if st != "deleting")
