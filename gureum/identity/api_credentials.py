"""Credentials: /v3/credentials and the EC2 ones under /v3/users/{id}/credentials/OS-EC2."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.context import RequestContext
from gureum.identity import credentials as creds
from gureum.identity import models as m
from gureum.identity import policy, schemas, service, views
from gureum.identity.api_admin import body_of, ident_of, one

router = Router()


def _ctx(req: Request) -> RequestContext:
    ctx = req.context
    assert ctx is not None
    return ctx


@router.get("/v3/credentials", tx=True)
def list_credentials(req: Request, s: Session) -> Response:
    keys = ident_of(req).credential_keys
    rows = creds.listing(s, _ctx(req), req.arg("user_id"), req.arg("type"))
    items = [views.credential(c, creds.blob_of(keys, c), req.base_url) for c in rows]
    return json_response(views.collection(req.base_url, "credentials", "credentials", items))


@router.post("/v3/credentials", tx=True)
def create_credential(req: Request, s: Session) -> Response:
    body = body_of(req, schemas.credential_create, "credential")
    c, blob = creds.create(ident_of(req).credential_keys, s, _ctx(req), body)
    return one("credential", views.credential(c, blob, req.base_url), 201)


@router.get("/v3/credentials/{credential_id}", tx=True)
def get_credential(req: Request, s: Session) -> Response:
    c = creds.get(s, _ctx(req), req.path_params["credential_id"], "identity:get_credential")
    blob = creds.blob_of(ident_of(req).credential_keys, c)
    return one("credential", views.credential(c, blob, req.base_url))


@router.patch("/v3/credentials/{credential_id}", tx=True)
def update_credential(req: Request, s: Session) -> Response:
    body = body_of(req, schemas.credential_update, "credential")
    c, blob = creds.update(ident_of(req).credential_keys, s, _ctx(req),
                           req.path_params["credential_id"], body)
    return one("credential", views.credential(c, blob, req.base_url))


@router.delete("/v3/credentials/{credential_id}", tx=True)
def delete_credential(req: Request, s: Session) -> Response:
    creds.delete(s, _ctx(req), req.path_params["credential_id"])
    return empty()


# -- OS-EC2 ----------------------------------------------------------------------------

EC2_PATH = "/v3/users/{user_id}/credentials/OS-EC2"


def _ec2_reader(req: Request, s: Session, rule: str) -> tuple[RequestContext, str]:
    ctx = _ctx(req)
    user_id = req.path_params["user_id"]
    if not (ctx.is_admin or ctx.is_system_reader or ctx.user_id == user_id):
        raise policy.deny(rule)
    service.get_or_404(s, m.User, user_id, "user")
    return ctx, user_id


def _ec2_one(req: Request, s: Session, rule: str) -> tuple[RequestContext, m.Credential]:
    ctx, user_id = _ec2_reader(req, s, rule)
    cred = s.get(m.Credential, creds.ec2_id(req.path_params["access"]))
    if cred is None or cred.type != creds.EC2 or cred.user_id != user_id:
        raise service.NotFound(f"Could not find credential: {req.path_params['access']}.",
                               kind="credential")
    creds.check_delegated_scope(ctx, cred.project_id)
    return ctx, cred


@router.get(EC2_PATH, tx=True)
def list_ec2(req: Request, s: Session) -> Response:
    ctx, user_id = _ec2_reader(req, s, "identity:ec2_list_credentials")
    keys = ident_of(req).credential_keys
    rows = s.scalars(select(m.Credential).where(
        m.Credential.user_id == user_id, m.Credential.type == creds.EC2)
        .order_by(m.Credential.id))
    items = [views.ec2_credential(c, creds.ec2_blob(creds.blob_of(keys, c)), req.base_url)
             for c in rows if creds.in_delegated_scope(ctx, c.project_id)]
    return json_response(views.collection(req.base_url,
                                          f"users/{user_id}/credentials/OS-EC2",
                                          "credentials", items))


@router.post(EC2_PATH, tx=True)
def create_ec2(req: Request, s: Session) -> Response:
    ctx = _ctx(req)
    user_id = req.path_params["user_id"]
    # Keystone: admin, or a member creating their own.
    if not (ctx.is_admin or (ctx.is_member and ctx.user_id == user_id)):
        raise policy.deny("identity:ec2_create_credential")
    creds.check_unrestricted(s, ctx)
    service.get_or_404(s, m.User, user_id, "user")
    project_id = validate(schemas.ec2_credential_create, req.json())["tenant_id"]
    service.get_or_404(s, m.Project, project_id, "project")
    creds.check_delegated_scope(ctx, project_id)
    access = uuid.uuid4().hex
    blob: dict[str, str | None] = {"access": access, "secret": uuid.uuid4().hex,
                                   "trust_id": None}
    if ctx.application_credential_id:
        blob["app_cred_id"] = ctx.application_credential_id
    cred = m.Credential(id=creds.ec2_id(access), user_id=user_id,
                        project_id=project_id, type=creds.EC2, extra={})
    creds.set_blob(ident_of(req).credential_keys, cred, json.dumps(blob))
    s.add(cred)
    return one("credential", views.ec2_credential(cred, blob, req.base_url), 201)


@router.get(EC2_PATH + "/{access}", tx=True)
def get_ec2(req: Request, s: Session) -> Response:
    _, cred = _ec2_one(req, s, "identity:ec2_get_credential")
    blob = creds.ec2_blob(creds.blob_of(ident_of(req).credential_keys, cred))
    return one("credential", views.ec2_credential(cred, blob, req.base_url))


@router.delete(EC2_PATH + "/{access}", tx=True)
def delete_ec2(req: Request, s: Session) -> Response:
    ctx, cred = _ec2_one(req, s, "identity:ec2_delete_credential")
    if not (ctx.is_admin or (ctx.is_member and ctx.user_id == cred.user_id)):
        raise policy.deny("identity:ec2_delete_credential")
    s.delete(cred)
    return empty()
