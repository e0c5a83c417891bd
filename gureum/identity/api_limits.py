"""Unified limits: /v3/registered_limits and /v3/limits (Keystone's limit API)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.context import RequestContext
from gureum.identity import limits, policy, schemas, views
from gureum.identity import models as m
from gureum.identity.api_admin import ident_of, one

router = Router()

REGISTERED_FILTERS = ("service_id", "region_id", "resource_name")
LIMIT_FILTERS = (*REGISTERED_FILTERS, "project_id", "domain_id")


# -- registered limits ----------------------------------------------------------------

@router.get("/v3/registered_limits", tx=True)
def list_registered_limits(req: Request, s: Session) -> Response:
    # Any authenticated caller may read the defaults, as in Keystone's policy.
    rows = limits.list_registered_limits(s, {k: req.arg(k) for k in REGISTERED_FILTERS})
    items = [views.registered_limit(r, req.base_url) for r in rows]
    return json_response(views.collection(req.base_url, "registered_limits",
                                          "registered_limits", items))


@router.post("/v3/registered_limits", tx=True)
def create_registered_limits(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_registered_limits")
    body = validate(schemas.registered_limits_create, req.json())
    rows = limits.create_registered_limits(ident_of(req), s, body["registered_limits"])
    return json_response({"registered_limits": [views.registered_limit(r, req.base_url)
                                                for r in rows]}, 201)


@router.get("/v3/registered_limits/{limit_id}", tx=True)
def get_registered_limit(req: Request, s: Session) -> Response:
    row = limits.get_registered_limit(s, req.path_params["limit_id"])
    return one("registered_limit", views.registered_limit(row, req.base_url))


@router.patch("/v3/registered_limits/{limit_id}", tx=True)
def update_registered_limit(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_registered_limit")
    body = validate(schemas.registered_limit_update, req.json())["registered_limit"]
    row = limits.update_registered_limit(ident_of(req), s, req.path_params["limit_id"], body)
    return one("registered_limit", views.registered_limit(row, req.base_url))


@router.delete("/v3/registered_limits/{limit_id}", tx=True)
def delete_registered_limit(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_registered_limit")
    limits.delete_registered_limit(ident_of(req), s, req.path_params["limit_id"])
    return empty()


# -- limits ----------------------------------------------------------------------------

def _visible(ctx: RequestContext, s: Session, x: m.Limit) -> bool:
    """Admin sees every limit; others the limits of their project or domain."""
    if ctx.is_admin:
        return True
    if ctx.project_id:
        return x.project_id == ctx.project_id
    if ctx.domain_id:
        if x.domain_id:
            return x.domain_id == ctx.domain_id
        project = s.get(m.Project, x.project_id)
        return project is not None and project.domain_id == ctx.domain_id
    return False


@router.get("/v3/limits/model", tx=True)
def get_limit_model(req: Request, s: Session) -> Response:
    return json_response({"model": dict(limits.MODEL)})


@router.get("/v3/limits", tx=True)
def list_limits(req: Request, s: Session) -> Response:
    ctx = req.context
    assert ctx is not None
    filters = {k: req.arg(k) for k in LIMIT_FILTERS}
    if not ctx.is_admin and ctx.project_id:
        filters["project_id"] = ctx.project_id
    rows = [(x, reg) for x, reg in limits.list_limits(s, filters) if _visible(ctx, s, x)]
    items = [views.limit(x, reg, req.base_url) for x, reg in rows]
    return json_response(views.collection(req.base_url, "limits", "limits", items))


@router.post("/v3/limits", tx=True)
def create_limits(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_limits")
    body = validate(schemas.limits_create, req.json())
    rows = limits.create_limits(ident_of(req), s, body["limits"])
    return json_response({"limits": [views.limit(x, limits.get_registered_limit(
        s, x.registered_limit_id), req.base_url) for x in rows]}, 201)


@router.get("/v3/limits/{limit_id}", tx=True)
def get_limit(req: Request, s: Session) -> Response:
    ctx = req.context
    assert ctx is not None
    x = limits.get_limit(s, req.path_params["limit_id"])
    if not _visible(ctx, s, x):
        raise policy.deny("identity:get_limit")
    reg = limits.get_registered_limit(s, x.registered_limit_id)
    return one("limit", views.limit(x, reg, req.base_url))


@router.patch("/v3/limits/{limit_id}", tx=True)
def update_limit(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_limit")
    body = validate(schemas.limit_update, req.json())["limit"]
    x = limits.update_limit(ident_of(req), s, req.path_params["limit_id"], body)
    reg = limits.get_registered_limit(s, x.registered_limit_id)
    return one("limit", views.limit(x, reg, req.base_url))


@router.delete("/v3/limits/{limit_id}", tx=True)
def delete_limit(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_limit")
    limits.delete_limit(ident_of(req), s, req.path_params["limit_id"])
    return empty()
