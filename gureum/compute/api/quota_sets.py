"""/v2.1/os-quota-sets/{project_id} and /v2.1/limits: compute quotas and what is used.

Defaults come from ``[quota]`` in the settings; admins override them per
project (QuotaLimit rows). Members read their own project's quotas; another
project's are admin-only (403, as Nova's policy answers).
"""

from __future__ import annotations

from typing import Any

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import policy, quota_usage
from gureum.compute.api.common import ctx_of, settings_of
from gureum.compute.api.params import reject_unknown
from gureum.compute.quotas import defaults
from gureum.compute.schemas import boolean as _boolean
from gureum.compute.schemas import to_bool
from gureum.compute.views import quotas as views
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput

router = Router()

_quota = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1,
          "maximum": 0x7FFFFFFF}


def update_schema(resources: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "required": ["quota_set"], "additionalProperties": False,
            "properties": {"quota_set": {
                "type": "object", "additionalProperties": False,
                "properties": {**{r: _quota for r in resources}, "force": _boolean}}}}


_UPDATE_SCHEMAS: dict[tuple[str, ...], dict[str, Any]] = {}


def _may_read(ctx: RequestContext, project_id: str, rule: str) -> None:
    policy.authorize(ctx, f"os_compute_api:os-quota-sets:{rule}", project_id)


def _user_quota_refused(req: Request) -> None:
    if req.arg("user_id"):
        raise InvalidInput("Per-user quotas are not kept by this cloud; set the project's "
                           "quota instead.", field="user_id")


def _own_user(ctx: RequestContext, project_id: str) -> str | None:
    return ctx.user_id if project_id == ctx.project_id else None


@router.get("/v2.1/os-quota-sets/{project_id}", tx=True)
def show_quota(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    project_id = req.path_params["project_id"]
    _may_read(ctx, project_id, "show")
    reject_unknown(req, ("user_id",))
    quota_usage.verify_project(s, project_id)
    hard = quota_usage.limits(s, project_id, settings_of(req))
    return json_response(views.quota_set(req, project_id, hard))


@router.get("/v2.1/os-quota-sets/{project_id}/detail", tx=True)
def show_quota_detail(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    project_id = req.path_params["project_id"]
    _may_read(ctx, project_id, "detail")
    reject_unknown(req, ("user_id",))
    quota_usage.verify_project(s, project_id)
    hard = quota_usage.limits(s, project_id, settings_of(req))
    used = quota_usage.usage(s, project_id, _own_user(ctx, project_id))
    return json_response(views.quota_set(req, project_id, hard, used))


@router.get("/v2.1/os-quota-sets/{project_id}/defaults", tx=True)
def show_defaults(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    project_id = req.path_params["project_id"]
    _may_read(ctx, project_id, "defaults")
    quota_usage.verify_project(s, project_id)
    hard = {name: -1 for name in quota_usage.LEGACY_NETWORK}
    hard.update(defaults(settings_of(req)))
    return json_response(views.quota_set(req, project_id, hard))


@router.put("/v2.1/os-quota-sets/{project_id}", tx=True)
def update_quota(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-quota-sets:update")
    project_id = req.path_params["project_id"]
    reject_unknown(req, ("user_id",))
    _user_quota_refused(req)
    resources = views.shown(req)
    schema = _UPDATE_SCHEMAS.setdefault(resources, update_schema(resources))
    body = validate(schema, req.json())["quota_set"]
    values: dict[str, int] = {}
    for resource, raw in body.items():
        if resource == "force":
            continue
        value = int(raw)
        if not -1 <= value <= 0x7FFFFFFF:
            raise InvalidInput(f"Invalid input for field/attribute {resource}. Value: {raw}. "
                               "It must be between -1 and 2147483647.",
                               field=f"quota_set.{resource}")
        values[resource] = value
    hard = quota_usage.set_limits(s, project_id, values, to_bool(body.get("force", False)),
                                  _own_user(ctx, project_id), settings_of(req))
    return json_response(views.quota_set(req, None, hard))


@router.delete("/v2.1/os-quota-sets/{project_id}", tx=True)
def delete_quota(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), "os_compute_api:os-quota-sets:delete")
    reject_unknown(req, ("user_id",))
    _user_quota_refused(req)
    quota_usage.clear(s, req.path_params["project_id"])
    return empty(202)


@router.get("/v2.1/limits", tx=True)
def show_limits(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:limits")
    reject_unknown(req, ("tenant_id", "reserved"))
    project_id = req.arg("tenant_id") or ctx.project_id
    assert project_id is not None
    if project_id != ctx.project_id:
        policy.authorize(ctx, "os_compute_api:limits:other_project")
    hard = quota_usage.limits(s, project_id, settings_of(req))
    used = quota_usage.usage(s, project_id, _own_user(ctx, project_id))
    return json_response(views.limits(req, hard, used))
