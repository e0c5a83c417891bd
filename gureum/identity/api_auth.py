"""Identity discovery and /v3/auth/*: issue, validate, check and revoke tokens."""

from __future__ import annotations

import asyncio
from typing import Any

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.errors import Forbidden, InvalidInput, NotFound
from gureum.identity import assignments, schemas, views
from gureum.identity import models as m
from gureum.identity.auth import TokenInvalid, TokenService, ValidatedToken
from gureum.identity.cache import CacheMiss
from gureum.identity.catalog import catalog_for
from gureum.identity.core import Identity
from gureum.identity.login import Login, LoginFailed
from gureum.identity.service import revoke_audit_id
from gureum.identity.token_body import body_json

router = Router()

V3_MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _v3(req: Request) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{req.base_url}/v3/"}],
            "media-types": V3_MEDIA}


@router.get("/", auth=False)
async def versions(req: Request) -> Response:
    return json_response({"versions": {"values": [_v3(req)]}}, 300,
                         {"location": f"{req.base_url}/v3/"})


@router.get("/v3", auth=False)
async def version_v3(req: Request) -> Response:
    return json_response({"version": _v3(req)})


def _identity(req: Request) -> Identity:
    ident: Identity = req.app_state.identity
    return ident


def _tokens(req: Request) -> TokenService:
    tokens: TokenService = req.app_state.tokens
    return tokens


# -- POST /v3/auth/tokens --------------------------------------------------------------

@router.post("/v3/auth/tokens", auth=False)
async def issue_token(req: Request) -> Response:
    ident = _identity(req)
    address = req.remote_addr
    delay = ident.throttle.delay(address)
    if delay:
        await asyncio.sleep(delay)
    body = validate(schemas.auth, req.json())
    loop = asyncio.get_running_loop()
    login = Login(_tokens(req), address)
    try:
        token, vt = await loop.run_in_executor(req.app_state.executor, login.authenticate,
                                               body["auth"])
    except LoginFailed:
        ident.throttle.failed(address)
        raise
    include_catalog = "nocatalog" not in req.query
    body_out = await _token_body(req, vt, include_catalog)
    return token_response(body_out, 201, {"x-subject-token": token})


async def _token_body(req: Request, vt: ValidatedToken, include_catalog: bool) -> bytes:
    """The token's JSON body (``vt.body``), with the catalog when asked for."""
    ident = _identity(req)
    if not include_catalog or not vt.roles:
        return body_json(vt, None)
    user_id, project_id = vt.user.id, vt.project.id if vt.project else None
    try:
        catalog = catalog_for(ident, user_id, project_id, None)
    except CacheMiss:
        catalog = await asyncio.get_running_loop().run_in_executor(
            req.app_state.executor, _load_catalog, ident, user_id, project_id)
    return body_json(vt, catalog)


def _load_catalog(ident: Identity, user_id: str, project_id: str | None
                  ) -> list[dict[str, Any]]:
    with ident.db.session(write=False) as s:
        return catalog_for(ident, user_id, project_id, s)


def token_response(body: bytes, status: int, headers: dict[str, str]) -> Response:
    return Response(status, body, headers, "application/json")


# -- GET/HEAD/DELETE /v3/auth/tokens ---------------------------------------------------

def _subject(req: Request) -> str:
    subject = req.headers.get("x-subject-token")
    if not subject:
        raise InvalidInput("Expecting to find X-Subject-Token in headers - the server could "
                           "not comply with the request since it is either malformed or "
                           "otherwise incorrect.", field="X-Subject-Token")
    return subject


def _may_see_token(ctx: Any, subject_user: str, rule: str) -> bool:
    """Keystone's token policies: the token's own user and admins always; system
    readers may also check and validate; services (the service role, e.g. a
    service user validating the tokens presented to it) may also validate."""
    if ctx.is_admin or ctx.user_id == subject_user:
        return True
    if rule in ("identity:check_token", "identity:validate_token") and ctx.is_system_reader:
        return True
    return rule == "identity:validate_token" and ctx.is_service


def _allow_expired(req: Request) -> bool:
    return (req.arg("allow_expired") or "").lower() in ("1", "true", "yes")


async def _validate_subject(req: Request, rule: str) -> ValidatedToken:
    tokens = _tokens(req)
    subject = _subject(req)
    allow_expired = _allow_expired(req)
    try:
        vt = None
        if not tokens.identity.cache.needs_check():
            try:
                vt = tokens.validate(subject, None, allow_expired=allow_expired)
            except CacheMiss:
                vt = None
        if vt is None:
            vt = await asyncio.get_running_loop().run_in_executor(
                req.app_state.executor, lambda: tokens.validate_with_db(subject, allow_expired))
    except TokenInvalid:
        raise NotFound(f"Could not find token: {subject}.", kind="token") from None
    return _seen(req, vt, rule)


def _seen(req: Request, vt: ValidatedToken, rule: str) -> ValidatedToken:
    ctx = req.context
    assert ctx is not None
    if not _may_see_token(ctx, vt.user.id, rule):
        raise Forbidden(f"You are not authorized to perform the requested action: {rule}.")
    return vt


@router.get("/v3/auth/tokens")
async def validate_token(req: Request) -> Response:
    vt = await _validate_subject(req, "identity:validate_token")
    body = await _token_body(req, vt, "nocatalog" not in req.query)
    return token_response(body, 200, {"x-subject-token": _subject(req)})


@router.head("/v3/auth/tokens")
async def check_token(req: Request) -> Response:
    await _validate_subject(req, "identity:check_token")
    return empty(200, {"x-subject-token": _subject(req)})


@router.delete("/v3/auth/tokens", tx="write")
def revoke_token(req: Request, s: Any) -> Response:
    """Validated and revoked in the route's one write transaction (not a hot path,
    unlike validation, which stays on the event loop while the cache answers)."""
    subject = _subject(req)
    try:
        vt = _tokens(req).validate_in(subject, s, allow_expired=_allow_expired(req))
    except TokenInvalid:
        raise NotFound(f"Could not find token: {subject}.", kind="token") from None
    _seen(req, vt, "identity:revoke_token")
    revoke_audit_id(_identity(req), s, vt.payload.audit_ids[0], vt.payload.expires_dt)
    return empty(204)


# -- /v3/auth/catalog, projects, domains, system -------------------------------------------

@router.get("/v3/auth/catalog", tx=True)
def auth_catalog(req: Request, s: Any) -> Response:
    ctx = req.context
    assert ctx is not None
    if not ctx.roles:
        raise Forbidden("The service catalog is only available to scoped tokens.")
    catalog = catalog_for(_identity(req), ctx.user_id, ctx.project_id, s)
    return json_response({"catalog": catalog, "links": {
        "self": f"{req.base_url}/v3/auth/catalog", "previous": None, "next": None}})


@router.get("/v3/auth/projects", tx=True)
def auth_projects(req: Request, s: Any) -> Response:
    ctx = req.context
    assert ctx is not None
    projects = [p for p in assignments.user_projects(s, ctx.user_id) if p.enabled]
    return json_response(views.collection(req.base_url, "auth/projects", "projects",
                                          [views.project(p, req.base_url) for p in projects]))


@router.get("/v3/auth/domains", tx=True)
def auth_domains(req: Request, s: Any) -> Response:
    ctx = req.context
    assert ctx is not None
    domains = [d for d in assignments.user_domains(s, ctx.user_id) if d.enabled]
    return json_response(views.collection(req.base_url, "auth/domains", "domains",
                                          [views.domain(d, req.base_url) for d in domains]))


@router.get("/v3/auth/system", tx=True)
def auth_system(req: Request, s: Any) -> Response:
    ctx = req.context
    assert ctx is not None
    roles = _identity(req).roles_on(ctx.user_id, "system", m.SYSTEM_TARGET, s)
    return json_response({"system": [{"all": True}] if roles else [],
                          "links": {"self": f"{req.base_url}/v3/auth/system"}})
