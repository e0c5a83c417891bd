"""Block Storage quotas: limits (project, then quota class "default", then Cinder's
defaults), usage counted from the volumes and snapshots themselves, and the
check a create or extend makes (413 over quota, as Cinder answers). A check that
counts holds the project's quota lock (gureum/db/locks.py) until its transaction
ends, so two creates at once cannot both take the last unit."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.db.locks import lock_project_quotas
from gureum.volume import errors as e
from gureum.volume import models as m

# Cinder's default quotas ([DEFAULT] quota_* options).
DEFAULTS = {"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
            "backup_gigabytes": 1000, "groups": 10, "per_volume_gigabytes": -1}
PER_TYPE = ("volumes", "gigabytes", "snapshots")
DEFAULT_CLASS = "default"


def type_names(s: Session) -> list[str]:
    return list(s.scalars(select(m.VolumeType.name).order_by(m.VolumeType.name)))


def class_limits(s: Session, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    limits = dict(DEFAULTS)
    for name in type_names(s):
        for res in PER_TYPE:
            limits[f"{res}_{name}"] = -1
    for row in s.scalars(select(m.Quota).where(m.Quota.project_id == "",
                                               m.Quota.class_name == class_name)):
        limits[row.resource] = row.hard_limit
    return limits


def limits(s: Session, project_id: str) -> dict[str, int]:
    out = class_limits(s)
    for row in s.scalars(select(m.Quota).where(m.Quota.project_id == project_id,
                                               m.Quota.class_name == "")):
        out[row.resource] = row.hard_limit
    return out


def usage(s: Session, project_id: str) -> dict[str, int]:
    used = {k: 0 for k in DEFAULTS}
    backups = s.execute(select(func.count(m.Backup.id),
                               func.coalesce(func.sum(m.Backup.size), 0))
                        .where(m.Backup.project_id == project_id)).one()
    used["backups"], used["backup_gigabytes"] = int(backups[0]), int(backups[1])
    used["groups"] = int(s.scalar(select(func.count(m.Group.id)).where(
        m.Group.project_id == project_id)) or 0)
    vols = s.execute(select(m.VolumeType.name, func.count(m.Volume.id),
                            func.coalesce(func.sum(m.Volume.size), 0))
                     .join(m.VolumeType, m.VolumeType.id == m.Volume.volume_type_id)
                     .where(m.Volume.project_id == project_id)
                     .group_by(m.VolumeType.name)).all()
    for name, count, gb in vols:
        used["volumes"] += int(count)
        used["gigabytes"] += int(gb)
        used[f"volumes_{name}"] = int(count)
        used[f"gigabytes_{name}"] = int(gb)
    snaps = s.execute(select(m.VolumeType.name, func.count(m.Snapshot.id),
                             func.coalesce(func.sum(m.Snapshot.size), 0))
                      .join(m.Volume, m.Volume.id == m.Snapshot.volume_id)
                      .join(m.VolumeType, m.VolumeType.id == m.Volume.volume_type_id)
                      .where(m.Snapshot.project_id == project_id)
                      .group_by(m.VolumeType.name)).all()
    for name, count, gb in snaps:
        used["snapshots"] += int(count)
        used["gigabytes"] += int(gb)
        used[f"snapshots_{name}"] = int(count)
        used[f"gigabytes_{name}"] = used.get(f"gigabytes_{name}", 0) + int(gb)
    return used


def locked_usage(s: Session, project_id: str) -> dict[str, int]:
    """``usage``, counted under the project's quota lock (for a check before a create:
    the lock is held until the transaction ends)."""
    lock_project_quotas(s, project_id)
    return usage(s, project_id)


def check(s: Session, project_id: str, type_name: str, *, volumes: int = 0,
          snapshots: int = 0, gigabytes: int = 0, volume_size: int | None = None) -> None:
    """Raise 413 if adding these would pass a limit of the project."""
    lim = limits(s, project_id)
    per_volume = lim.get("per_volume_gigabytes", -1)
    if volume_size is not None and per_volume >= 0 and volume_size > per_volume:
        raise e.over_quota("per_volume_gigabytes", volume_size, per_volume, 0)
    used = locked_usage(s, project_id)
    for res, delta in (("volumes", volumes), ("snapshots", snapshots),
                       ("gigabytes", gigabytes)):
        if delta <= 0:
            continue
        for key in (res, f"{res}_{type_name}"):
            limit = lim.get(key, -1)
            if limit >= 0 and used.get(key, 0) + delta > limit:
                raise e.over_quota(res, delta, limit, used.get(key, 0))
