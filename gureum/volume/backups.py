"""Volume backups: a full copy of a volume's (or a snapshot's) data in the backup
directory, restorable into a new or an existing volume.

As the rest of Block Storage, the API writes rows (the backup ``creating`` and
its volume ``backing-up``; a restore's backup ``restoring`` and volume
``restoring-backup``) and hands the work to the conductor's volume manager,
which copies the data through the backend contract only (``copy_to_image`` out
of a volume, ``copy_from_image`` into one), so any backend can be backed up.
An incremental backup is recorded as such (it needs a full one first, as
Cinder's) but is stored whole.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db import compare_and_swap, utcnow
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, quotas, schemas, volumes
from gureum.volume.backends.base import BackendError, VolumeBackend

WORK = ("creating", "deleting", "restoring")


def get_backup(s: Session, ctx: RequestContext, backup_id: str) -> m.Backup:
    b = s.get(m.Backup, backup_id)
    if b is None or not policy.owns(ctx, b.project_id):
        raise e.not_found("backup", backup_id)
    return b


def _check_backup_quota(s: Session, project_id: str, size: int) -> None:
    lim = quotas.limits(s, project_id)
    used = quotas.locked_usage(s, project_id)
    if lim["backups"] >= 0 and used["backups"] + 1 > lim["backups"]:
        from gureum.errors import OverQuota

        raise OverQuota(f"BackupLimitExceeded: Maximum number of backups allowed "
                        f"({lim['backups']}) exceeded")
    if lim["backup_gigabytes"] >= 0 and used["backup_gigabytes"] + size > \
            lim["backup_gigabytes"]:
        from gureum.errors import OverQuota

        raise OverQuota(f"VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds "
                        f"allowed Backup gigabytes quota. Requested {size}G, quota is "
                        f"{lim['backup_gigabytes']}G and {used['backup_gigabytes']}G has "
                        "been consumed.")


def create_backup(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.Backup:
    volume_id = body.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise e.bad_request("Incorrect request body format: volume_id is required.",
                            "volume_id")
    v = volumes.get_volume(s, ctx, volume_id)
    force = schemas.boolean(body.get("force", False), "force")
    incremental = schemas.boolean(body.get("incremental", False), "incremental")
    snapshot_id = body.get("snapshot_id")
    if snapshot_id is not None:
        snap = s.get(m.Snapshot, str(snapshot_id))
        if snap is None or snap.volume_id != v.id:
            raise e.not_found("snapshot", str(snapshot_id))
        if snap.status != "available":
            raise e.invalid_snapshot(f"Snapshot {snap.id} status must be available, but is "
                                     f"{snap.status}.")
        snapshot_id = snap.id
    allowed = ("available", "in-use") if force or snapshot_id else ("available",)
    if v.status not in allowed:
        raise e.invalid_volume(f"Volume to be backed up must be available or in-use, but "
                               f"the current status is \"{v.status}\"." if force else
                               f"Volume to be backed up must be available but the current "
                               f"status is \"{v.status}\".")
    parent = None
    if incremental:
        parent = s.scalar(select(m.Backup).where(
            m.Backup.volume_id == v.id, m.Backup.status == "available")
            .order_by(m.Backup.created_at.desc()).limit(1))
        if parent is None:
            raise e.bad_request("Invalid backup: No backups available to do an incremental "
                                "backup.", "incremental")
    _check_backup_quota(s, v.project_id, v.size)
    b = m.Backup(volume_id=v.id, snapshot_id=snapshot_id, project_id=v.project_id,
                 user_id=ctx.user_id, name=schemas.text(body.get("name"), "name"),
                 description=schemas.text(body.get("description"), "description"),
                 container=schemas.text(body.get("container"), "container"),
                 size=v.size, status="creating", is_incremental=incremental,
                 parent_id=parent.id if parent else None,
                 metadata_=schemas.metadata(body.get("metadata")),
                 task={"previous_status": v.status}, created_at=utcnow())
    s.add(b)
    s.flush()
    if not snapshot_id:
        volumes.change_status(s, v, allowed, {"status": "backing-up"})
    volumes.hand_over(s, "backup", b.id, ctx.request_id)
    return b


def delete_backup(s: Session, ctx: RequestContext, backup_id: str, force: bool = False
                  ) -> None:
    b = get_backup(s, ctx, backup_id)
    allowed = ["available", "error"] + (["creating", "restoring", "error_deleting"]
                                        if force else [])
    if s.scalar(select(m.Backup.id).where(m.Backup.parent_id == b.id,
                                          m.Backup.status != "deleting").limit(1)):
        raise e.bad_request("Invalid backup: Incremental backups exist for this backup.")
    if b.status not in allowed or not compare_and_swap(
            s, m.Backup, b.id, {"status": allowed}, {"status": "deleting",
                                                     "updated_at": utcnow()}):
        raise e.bad_request(f"Invalid backup: Backup status must be available or error, "
                            f"but is {b.status}.")
    volumes.hand_over(s, "backup", b.id, ctx.request_id)


def restore_backup(s: Session, ctx: RequestContext, backup_id: str, body: dict[str, Any]
                   ) -> m.Volume:
    b = get_backup(s, ctx, backup_id)
    if b.status != "available":
        raise e.bad_request(f"Invalid backup: Backup status must be available, but is "
                            f"{b.status}.")
    volume_id = body.get("volume_id")
    if volume_id:
        v = volumes.get_volume(s, ctx, str(volume_id))
        if v.size < b.size:
            raise e.bad_request(f"Invalid volume: volume size {v.size}GB is too small to "
                                f"restore backup of size {b.size}GB.", "volume_id")
        volumes.change_status(s, v, "available", {"status": "restoring-backup",
                                                  "task": {"op": "restore",
                                                           "backup_id": b.id}})
    else:
        name = schemas.text(body.get("name"), "name") or f"restore_backup_{b.id}"
        v = volumes.create_volume(s, ctx, {"size": b.size, "name": name})
        volumes.change_status(s, v, "creating", {"status": "restoring-backup",
                                                 "task": {"op": "restore",
                                                          "backup_id": b.id}})
    compare_and_swap(s, m.Backup, b.id, {"status": "available"},
                     {"status": "restoring", "task": {"volume_id": v.id},
                      "updated_at": utcnow()})
    volumes.hand_over(s, "backup", b.id, ctx.request_id)
    return v


# -- the manager's half ----------------------------------------------------------------------

def backup_file(root: Path, backup_id: str) -> Path:
    return root / f"backup-{backup_id}.qcow2"


def write_backup(backend: VolumeBackend, root: Path, backup_id: str, volume_id: str,
                 location: str, snapshot: tuple[str, str] | None, size: int) -> str:
    """Copy the volume (or its snapshot) into the backup store; the file's name."""
    root.mkdir(parents=True, exist_ok=True)
    target = backup_file(root, backup_id)
    tmp = root / f".{target.name}.part"
    scratch_id = f"backup-{backup_id}"
    scratch: str | None = None
    try:
        if snapshot is not None:
            scratch = backend.create_from_snapshot(snapshot[0], snapshot[1], scratch_id, size)
            backend.copy_to_image(scratch_id, scratch, tmp, "qcow2")
        else:
            backend.copy_to_image(volume_id, location, tmp, "qcow2")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if scratch is not None:
            backend.delete(scratch_id, scratch)
    return target.name


def remove_backup(root: Path, location: str | None, backup_id: str) -> None:
    path = root / location if location else backup_file(root, backup_id)
    if "/" in (location or "") or path.parent != root:
        raise BackendError(f"not a backup file: {location!r}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
