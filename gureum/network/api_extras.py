"""Tags (/v2.0/{resources}/{id}/tags), quotas (/v2.0/quotas) and availability zones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.network import errors as e
from gureum.network import models as m
from gureum.network import policy, resources, schemas, views
from gureum.network.api_resources import BY_PLURAL

router = Router()

def _row(req: Request, s: Session, rule: str, write: bool) -> Any:
    res = BY_PLURAL[req.path_params["resources"]]
    ctx = policy.writer(req.context, rule) if write else policy.reader(req.context, rule)
    row = res.get(s, ctx, req.path_params["resource_id"])
    if write:
        policy.check_owner(ctx, row.project_id, rule)
    return row


def _tag(req: Request) -> str:
    tag = req.path_params["tag"]
    if not tag or len(tag) > 255 or "\x00" in tag:
        raise e.invalid_attribute("tag", f"'{tag}' is not a valid tag")
    return tag


def list_tags(req: Request, s: Session) -> Response:
    row = _row(req, s, "get_tags", False)
    return json_response({"tags": [t.tag for t in row.tags]})


def replace_tags(req: Request, s: Session) -> Response:
    row = _row(req, s, "update_tags", True)
    body = schemas.check(schemas.tags_body, req.json(), "tags")
    resources.set_tags(s, row, body["tags"])
    resources.touch(row)
    return json_response({"tags": [t.tag for t in row.tags]})


def add_tags(req: Request, s: Session) -> Response:
    """POST …/tags (tag-creation): add these tags, keep the others."""
    row = _row(req, s, "create_tags", True)
    body = schemas.check(schemas.tags_body, req.json(), "tags")
    resources.set_tags(s, row, [*(t.tag for t in row.tags), *body["tags"]])
    resources.touch(row)
    return json_response({"tags": [t.tag for t in row.tags]}, 201)


def delete_tags(req: Request, s: Session) -> Response:
    row = _row(req, s, "delete_tags", True)
    resources.set_tags(s, row, [])
    resources.touch(row)
    return empty()


def check_tag(req: Request, s: Session) -> Response:
    row = _row(req, s, "get_tags", False)
    tag = _tag(req)
    if tag not in [t.tag for t in row.tags]:
        raise e.typed_not_found("TagNotFound", f"Tag {tag} could not be found.")
    return empty()


def add_tag(req: Request, s: Session) -> Response:
    row = _row(req, s, "update_tags", True)
    resources.add_tag(s, row, _tag(req))
    resources.touch(row)
    return empty(201)


def remove_tag(req: Request, s: Session) -> Response:
    row = _row(req, s, "delete_tags", True)
    resources.remove_tag(s, row, _tag(req))
    resources.touch(row)
    return empty()


def _with_resources(plural: str, handler: Any) -> Any:
    def bound(req: Request, s: Session) -> Response:
        req.path_params["resources"] = plural
        result: Response = handler(req, s)
        return result
    return bound


for _plural, _resource in BY_PLURAL.items():
    if not _resource.taggable:
        continue
    _tags = f"/v2.0/{_plural}/{{resource_id}}/tags"
    for _method, _path, _handler in (
            ("GET", _tags, list_tags), ("PUT", _tags, replace_tags), ("POST", _tags, add_tags),
            ("DELETE", _tags, delete_tags), ("GET", _tags + "/{tag}", check_tag),
            ("PUT", _tags + "/{tag}", add_tag), ("DELETE", _tags + "/{tag}", remove_tag)):
        router.add(_method, _path, _with_resources(_plural, _handler), tx=True)


# -- quotas -------------------------------------------------------------------------

def _quota_target(req: Request, rule: str) -> str:
    ctx = policy.reader(req.context, rule)
    project_id = req.path_params["project_id"]
    if not policy.owns(ctx, project_id):
        raise e.policy(rule)
    return project_id


def _quota(limits: dict[str, int], project_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = dict(limits)
    if project_id is not None:
        out["project_id"] = out["tenant_id"] = project_id
    return out


@router.get("/v2.0/quotas", tx=True)
def list_quotas(req: Request, s: Session) -> Response:
    policy.admin(req.context, "get_quota")
    projects = sorted(set(s.scalars(select(m.Quota.project_id))))
    return json_response({"quotas": [_quota(resources.quota_limits(s, p), p)
                                     for p in projects]})


@router.get("/v2.0/quotas/{project_id}", tx=True)
def show_quota(req: Request, s: Session) -> Response:
    project_id = _quota_target(req, "get_quota")
    return json_response({"quota": _quota(resources.quota_limits(s, project_id))})


@router.get("/v2.0/quotas/{project_id}/default", tx=True)
def show_default_quota(req: Request, s: Session) -> Response:
    project_id = _quota_target(req, "get_quota")
    return json_response({"quota": _quota(dict(resources.DEFAULT_QUOTAS), project_id)})


@router.get("/v2.0/quotas/{project_id}/details", tx=True)
def show_quota_details(req: Request, s: Session) -> Response:
    project_id = _quota_target(req, "get_quota")
    limits = resources.quota_limits(s, project_id)
    return json_response({"quota": {
        resource: {"limit": limit, "used": resources.usage(s, project_id, resource),
                   "reserved": 0} for resource, limit in limits.items()}})


@router.put("/v2.0/quotas/{project_id}", tx=True)
def update_quota(req: Request, s: Session) -> Response:
    policy.admin(req.context, "update_quota")
    project_id = req.path_params["project_id"]
    if "\x00" in project_id or len(project_id) > 64:
        raise e.bad_request("Invalid project id.", "project_id")
    body = dict(schemas.check(schemas.quota_body, req.json(), "quota")["quota"])
    force = body.pop("force", False)
    body.pop("check_limit", None)  # checking is the default (quota-check-limit-default)
    if not force:
        under = [r for r, limit in body.items()
                 if limit >= 0 and resources.usage(s, project_id, r) > limit]
        if under:
            raise e.conflict("InvalidQuotaValue", "Change would make usage less than 0 for "
                             f"the following resources: {under}.")
    for resource, limit in body.items():
        row = s.get(m.Quota, (project_id, resource))
        if row is None:
            s.add(m.Quota(project_id=project_id, resource=resource, hard_limit=limit))
        else:
            row.hard_limit = limit
    s.flush()
    return json_response({"quota": _quota(resources.quota_limits(s, project_id))})


@router.delete("/v2.0/quotas/{project_id}", tx=True)
def reset_quota(req: Request, s: Session) -> Response:
    policy.admin(req.context, "delete_quota")
    s.execute(delete(m.Quota).where(m.Quota.project_id == req.path_params["project_id"]))
    return empty()


# -- availability zones -----------------------------------------------------------------

@router.get("/v2.0/availability_zones")
def list_availability_zones(req: Request) -> Response:
    policy.reader(req.context, "get_availability_zone")
    zones = [{"name": views.AVAILABILITY_ZONE, "resource": resource, "state": "available"}
             for resource in ("network", "router")]
    for key in ("name", "resource", "state"):
        wanted = req.query.get(key)
        if wanted:
            zones = [z for z in zones if z[key] in wanted]
    return json_response({"availability_zones": zones})
