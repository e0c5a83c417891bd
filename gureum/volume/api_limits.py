"""Quota sets, quota classes and absolute limits (``openstack quota show/set``,
``openstack limits show --absolute``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, json_response
from gureum.context import RequestContext
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, quotas, schemas
from gureum.volume.api import route


def _project(req: Request, rule: str) -> tuple[RequestContext, str]:
    ctx = policy.reader(req.context, rule)
    project_id = req.path_params["project_id"]
    if not ctx.is_admin and project_id != ctx.project_id:
        raise e.policy(rule)
    return ctx, project_id


@route("GET", "/os-quota-sets/{project_id}")
def show_quota(req: Request, s: Session) -> Response:
    _, project_id = _project(req, "volume_extension:quotas:show")
    usage = schemas.boolean(req.arg("usage") or "false", "usage")
    limits = quotas.limits(s, project_id)
    body: dict[str, Any] = {"id": project_id}
    if usage:
        used = quotas.usage(s, project_id)
        for k, v in limits.items():
            body[k] = {"limit": v, "in_use": used.get(k, 0), "reserved": 0}
    else:
        body.update(limits)
    return json_response({"quota_set": body})


@route("GET", "/os-quota-sets/{project_id}/defaults")
def show_defaults(req: Request, s: Session) -> Response:
    _, project_id = _project(req, "volume_extension:quotas:show")
    return json_response({"quota_set": {"id": project_id, **quotas.class_limits(s)}})


def _limits_body(req: Request, s: Session, key: str) -> dict[str, int]:
    body = schemas.body_of(req.json(), key)
    known = set(quotas.class_limits(s))
    out: dict[str, int] = {}
    for k, v in body.items():
        if k in ("id", "tenant_id", "project_id"):
            continue
        if k not in known:
            raise e.bad_request(f"Bad key(s) in quota set: {k}", k)
        if isinstance(v, bool) or not isinstance(v, (int, str)) or \
                not schemas.is_uint(str(v).removeprefix("-")) or not -1 <= int(v) < 2**31:
            raise e.bad_request(f"Invalid input for field/attribute {k}. Value: {v}. "
                                "Quota limit must be -1 or a non-negative integer.", k)
        out[k] = int(v)
    return out


def _store(s: Session, project_id: str, class_name: str, values: dict[str, int]) -> None:
    for k, v in values.items():
        row = s.scalar(select(m.Quota).where(m.Quota.project_id == project_id,
                                             m.Quota.class_name == class_name,
                                             m.Quota.resource == k))
        if row is None:
            s.add(m.Quota(project_id=project_id, class_name=class_name, resource=k,
                          hard_limit=v))
        else:
            row.hard_limit = v
    s.flush()


@route("PUT", "/os-quota-sets/{project_id}")
def update_quota(req: Request, s: Session) -> Response:
    ctx = policy.admin(req.context, "volume_extension:quotas:update")
    project_id = req.path_params["project_id"]
    values = _limits_body(req, s, "quota_set")
    used = quotas.usage(s, project_id)
    for k, v in values.items():
        if v >= 0 and used.get(k, 0) > v and k != "per_volume_gigabytes":
            raise e.bad_request(f"Quota limit {v} for {k} must be greater than or equal to "
                                f"already used and reserved {used[k]}.", k)
    del ctx
    _store(s, project_id, "", values)
    return json_response({"quota_set": quotas.limits(s, project_id)})


@route("DELETE", "/os-quota-sets/{project_id}")
def delete_quota(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:quotas:delete")
    s.execute(delete(m.Quota).where(m.Quota.project_id == req.path_params["project_id"],
                                    m.Quota.class_name == ""))
    return json_response({}, 200)


@route("GET", "/os-quota-class-sets/{class_name}")
def show_class(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:quota_classes")
    name = req.path_params["class_name"]
    return json_response({"quota_class_set": {"id": name, **quotas.class_limits(s, name)}})


@route("PUT", "/os-quota-class-sets/{class_name}")
def update_class(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:quota_classes")
    name = req.path_params["class_name"]
    _store(s, "", name, _limits_body(req, s, "quota_class_set"))
    return json_response({"quota_class_set": quotas.class_limits(s, name)})


@route("GET", "/limits")
def show_limits(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "limits_extension:used_limits")
    project_id = req.arg("project_id") if ctx.is_admin and req.arg("project_id") \
        else policy.project_of(ctx)
    assert project_id is not None
    lim = quotas.limits(s, project_id)
    used = quotas.usage(s, project_id)
    absolute = {"maxTotalVolumes": lim["volumes"], "maxTotalSnapshots": lim["snapshots"],
                "maxTotalVolumeGigabytes": lim["gigabytes"],
                "maxTotalBackups": lim["backups"],
                "maxTotalBackupGigabytes": lim["backup_gigabytes"],
                "totalVolumesUsed": used["volumes"], "totalSnapshotsUsed": used["snapshots"],
                "totalGigabytesUsed": used["gigabytes"], "totalBackupsUsed": 0,
                "totalBackupGigabytesUsed": 0}
    return json_response({"limits": {"rate": [], "absolute": absolute}})
