"""Registries other services and tools keep in identity: /v3/policies (policy blobs)
and OAuth1 consumers (/v3/OS-OAUTH1/consumers).

Both are stored and served as Keystone does; neither changes what gureum
enforces. The OAuth1 token flow (request tokens, authorization, access tokens)
is not served.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.errors import InvalidInput
from gureum.identity import credentials, policy, schemas, service, views
from gureum.identity import models as m
from gureum.identity.api_admin import body_of, ident_of, one

router = Router()

FIXED = ("id", "links")


def _extra(body: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in (*known, *FIXED)}


def _check_id(body: dict[str, Any], current: str, kind: str) -> None:
    if "id" in body and body["id"] != current:
        raise InvalidInput(f"Cannot change the id of a {kind}.", field=f"{kind}.id")


def _reader(req: Request, rule: str) -> None:
    if not policy.system_reader(req.context):
        raise policy.deny(rule)


# -- /v3/policies ------------------------------------------------------------------------

@router.get("/v3/policies", tx=True)
def list_policies(req: Request, s: Session) -> Response:
    _reader(req, "identity:list_policies")
    stmt = select(m.Policy).order_by(m.Policy.id)
    if req.arg("type") is not None:
        stmt = stmt.where(m.Policy.type == req.arg("type"))
    items = [views.policy(p, req.base_url) for p in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "policies", "policies", items))


@router.post("/v3/policies", tx=True)
def create_policy(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_policy")
    body = body_of(req, schemas.policy_create, "policy")
    p = m.Policy(id=uuid.uuid4().hex, type=body["type"], blob=body["blob"],
                 extra=_extra(body, ("type", "blob")))
    s.add(p)
    s.flush()
    return one("policy", views.policy(p, req.base_url), 201)


@router.get("/v3/policies/{policy_id}", tx=True)
def get_policy(req: Request, s: Session) -> Response:
    _reader(req, "identity:get_policy")
    p = service.get_or_404(s, m.Policy, req.path_params["policy_id"], "policy")
    return one("policy", views.policy(p, req.base_url))


@router.patch("/v3/policies/{policy_id}", tx=True)
def update_policy(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_policy")
    body = body_of(req, schemas.policy_update, "policy")
    p = service.get_or_404(s, m.Policy, req.path_params["policy_id"], "policy")
    _check_id(body, p.id, "policy")
    if "type" in body:
        p.type = body["type"]
    if "blob" in body:
        p.blob = body["blob"]
    extra = _extra(body, ("type", "blob"))
    if extra:
        p.extra = {**(p.extra or {}), **extra}
    return one("policy", views.policy(p, req.base_url))


@router.delete("/v3/policies/{policy_id}", tx=True)
def delete_policy(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_policy")
    s.delete(service.get_or_404(s, m.Policy, req.path_params["policy_id"], "policy"))
    return empty()


# -- OAuth1 consumers ------------------------------------------------------------------

CONSUMERS = "/v3/OS-OAUTH1/consumers"


@router.get(CONSUMERS, tx=True)
def list_consumers(req: Request, s: Session) -> Response:
    _reader(req, "identity:list_consumers")
    items = [views.consumer(c, req.base_url)
             for c in s.scalars(select(m.OAuth1Consumer).order_by(m.OAuth1Consumer.id))]
    return json_response(views.collection(req.base_url, "OS-OAUTH1/consumers", "consumers",
                                          items))


@router.post(CONSUMERS, tx=True)
def create_consumer(req: Request, s: Session) -> Response:
    """The secret is in this answer only."""
    policy.admin(req.context, "identity:create_consumer")
    body = body_of(req, schemas.consumer_create, "consumer")
    secret = uuid.uuid4().hex
    encrypted, key_hash = credentials.encrypt(ident_of(req).credential_keys, secret)
    c = m.OAuth1Consumer(id=uuid.uuid4().hex, description=body.get("description"),
                         encrypted_secret=encrypted, key_hash=key_hash,
                         extra=_extra(body, ("description", "secret")))
    s.add(c)
    s.flush()
    return one("consumer", {**views.consumer(c, req.base_url), "secret": secret}, 201)


@router.get(CONSUMERS + "/{consumer_id}", tx=True)
def get_consumer(req: Request, s: Session) -> Response:
    _reader(req, "identity:get_consumer")
    c = service.get_or_404(s, m.OAuth1Consumer, req.path_params["consumer_id"], "consumer")
    return one("consumer", views.consumer(c, req.base_url))


@router.patch(CONSUMERS + "/{consumer_id}", tx=True)
def update_consumer(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_consumer")
    body = body_of(req, schemas.consumer_update, "consumer")
    c = service.get_or_404(s, m.OAuth1Consumer, req.path_params["consumer_id"], "consumer")
    _check_id(body, c.id, "consumer")
    if "description" in body:
        c.description = body["description"]
    extra = _extra(body, ("description",))
    if extra:
        c.extra = {**(c.extra or {}), **extra}
    return one("consumer", views.consumer(c, req.base_url))


@router.delete(CONSUMERS + "/{consumer_id}", tx=True)
def delete_consumer(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_consumer")
    s.delete(service.get_or_404(s, m.OAuth1Consumer, req.path_params["consumer_id"],
                                "consumer"))
    return empty()
