"""Wire shapes of Block Storage resources, as Cinder's v3 API returns them,
with their microversion differences (``req.version``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.volume import models as m


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(req: Request, collection: str, ident: str, project_id: str) -> list[dict[str, str]]:
    base = req.base_url
    return [{"href": f"{base}/v3/{project_id}/{collection}/{ident}", "rel": "self"},
            {"href": f"{base}/{project_id}/{collection}/{ident}", "rel": "bookmark"}]


def attachment_summary(a: m.VolumeAttachment) -> dict[str, Any]:
    return {"id": a.volume_id, "attachment_id": a.id, "volume_id": a.volume_id,
            "server_id": a.instance_id, "host_name": a.attached_host, "device": a.mountpoint,
            "attached_at": iso(a.attach_time)}


def volume_summary(req: Request, v: m.Volume) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "links": links(req, "volumes", v.id, v.project_id)}


def volume(req: Request, v: m.Volume) -> dict[str, Any]:
    ctx = req.context
    admin = ctx is not None and ctx.is_admin
    out: dict[str, Any] = {
        "id": v.id, "name": v.name, "description": v.description, "size": v.size,
        "status": v.status, "availability_zone": v.availability_zone,
        "bootable": "true" if v.bootable else "false", "encrypted": False,
        "multiattach": v.multiattach, "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at), "user_id": v.user_id,
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "attachments": [attachment_summary(a) for a in v.attachments
                        if a.attach_status == "attached"],
        "metadata": dict(v.metadata_ or {}), "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid, "volume_type": v.volume_type.name,
        "consistencygroup_id": None, "replication_status": None, "migration_status": None,
        "links": links(req, "volumes", v.id, v.project_id),
    }
    if v.image_metadata:
        out["volume_image_metadata"] = dict(v.image_metadata)
    if admin:
        out["os-vol-host-attr:host"] = v.host
        out["os-vol-mig-status-attr:migstat"] = v.migration_status
        out["os-vol-mig-status-attr:name_id"] = None
    if at_least(req, "3.13"):
        out["group_id"] = v.group_id
    if at_least(req, "3.21"):
        out["provider_id"] = None
    if at_least(req, "3.48"):
        out["shared_targets"] = False
        out["service_uuid"] = SERVICE_UUID
    if at_least(req, "3.61") and admin:
        out["cluster_name"] = None
    if at_least(req, "3.63"):
        out["volume_type_id"] = v.volume_type_id
    if at_least(req, "3.64"):
        out["encryption_key_id"] = None
    if at_least(req, "3.65"):
        out["consumes_quota"] = True
    return out


# One cinder-volume service; its uuid is fixed (it names no row).
SERVICE_UUID = "8d1c3a0e-5f5b-4f0e-9a55-6775726575d0"


def snapshot(req: Request, snap: m.Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": snap.id, "name": snap.name, "description": snap.description,
        "status": snap.status, "size": snap.size, "volume_id": snap.volume_id,
        "metadata": dict(snap.metadata_ or {}), "created_at": iso(snap.created_at),
        "updated_at": iso(snap.updated_at),
        "os-extended-snapshot-attributes:progress": snap.progress,
        "os-extended-snapshot-attributes:project_id": snap.project_id,
    }
    if at_least(req, "3.14"):
        out["group_snapshot_id"] = snap.group_snapshot_id
    if at_least(req, "3.41"):
        out["user_id"] = snap.user_id
    if at_least(req, "3.65"):
        out["consumes_quota"] = True
    return out


def volume_type(req: Request, t: m.VolumeType, admin: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "name": t.name, "description": t.description,
                           "is_public": t.is_public,
                           "os-volume-type-access:is_public": t.is_public,
                           "extra_specs": dict(t.extra_specs or {})}
    if admin:
        out["qos_specs_id"] = t.qos_specs_id
    return out


def qos_specs(req: Request, q: m.QosSpecs) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "consumer": q.consumer, "specs": dict(q.specs or {}),
            "links": [{"href": f"{req.base_url}/v3/qos-specs/{q.id}", "rel": "self"},
                      {"href": f"{req.base_url}/qos-specs/{q.id}", "rel": "bookmark"}]}


def transfer(req: Request, t: m.Transfer, *, detail: bool = True,
             auth_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "name": t.name, "volume_id": t.volume_id,
                           "links": [{"href": f"{req.base_url}/v3/{t.project_id}/"
                                      f"os-volume-transfer/{t.id}", "rel": "self"},
                                     {"href": f"{req.base_url}/{t.project_id}/"
                                      f"os-volume-transfer/{t.id}", "rel": "bookmark"}]}
    if detail:
        out["created_at"] = iso(t.created_at)
    if at_least(req, "3.55"):
        out["no_snapshots"] = t.no_snapshots
    if at_least(req, "3.57"):
        out["source_project_id"] = t.project_id
        out["destination_project_id"] = None
        out["accepted"] = False
    if auth_key is not None:
        out["auth_key"] = auth_key
    return out


def attachment(req: Request, a: m.VolumeAttachment) -> dict[str, Any]:
    return {"id": a.id, "volume_id": a.volume_id, "instance": a.instance_id,
            "status": a.attach_status, "attach_mode": a.attach_mode,
            "attached_at": iso(a.attach_time), "detached_at": iso(a.detach_time),
            "connection_info": dict(a.connection_info or {}) or None}
