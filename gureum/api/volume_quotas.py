"""Block Storage v3 quota sets and limits, read-only, until the volume service lands.

`openstack quota show` and `openstack limits show` ask every service in the
catalog; without these two routes they fail on Block Storage. No volume can
exist yet, so usage is zero and the limits are Cinder's defaults. Issue [5/7]
(Block Storage) replaces this module with the real quotas.
"""

from __future__ import annotations

from typing import Any

from gureum.api.web import Request, Response, Router, json_response
from gureum.errors import Forbidden

# Cinder's default quotas ([DEFAULT] quota_* options).
DEFAULTS = {"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
            "backup_gigabytes": 1000, "groups": 10, "per_volume_gigabytes": -1}

router = Router()


def _project(req: Request) -> str:
    ctx = req.context
    assert ctx is not None
    project_id = req.path_params["project_id"]
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden("Policy doesn't allow volume_extension:quotas:show to be performed.")
    return project_id


@router.get("/v3/os-quota-sets/{project_id}")
def show_quota(req: Request) -> Response:
    project_id = _project(req)
    usage = (req.arg("usage") or "").strip().lower() in ("1", "true", "yes", "on")
    values: dict[str, Any] = {
        k: ({"limit": v, "in_use": 0, "reserved": 0, "allocated": 0} if usage else v)
        for k, v in DEFAULTS.items()}
    return json_response({"quota_set": {"id": project_id, **values}})


@router.get("/v3/os-quota-sets/{project_id}/defaults")
def show_defaults(req: Request) -> Response:
    return json_response({"quota_set": {"id": _project(req), **DEFAULTS}})


@router.get("/v3/limits")
def show_limits(req: Request) -> Response:
    absolute = {"maxTotalVolumes": DEFAULTS["volumes"],
                "maxTotalSnapshots": DEFAULTS["snapshots"],
                "maxTotalVolumeGigabytes": DEFAULTS["gigabytes"],
                "maxTotalBackups": DEFAULTS["backups"],
                "maxTotalBackupGigabytes": DEFAULTS["backup_gigabytes"],
                "totalVolumesUsed": 0, "totalSnapshotsUsed": 0, "totalGigabytesUsed": 0,
                "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0}
    return json_response({"limits": {"rate": [], "absolute": absolute}})
