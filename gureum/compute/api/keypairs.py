"""/v2.1/os-keypairs: create (generate or import), list, show, delete.

The rules (unique names per user, the quota, what a public key must be) are
compute/keypairs.py's. Each user manages its own key pairs; from 2.10 an admin
names another user with ``user_id``.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import keypairs, policy, schemas
from gureum.compute.api.common import ctx_of, int_arg, settings_of
from gureum.compute.api.params import reject_unknown
from gureum.compute.views.common import isotime, next_link
from gureum.context import RequestContext
from gureum.db import Session

router = Router()

def _create_schema(name: dict[str, Any], *required: str) -> dict[str, Any]:
    return {"type": "object", "required": ["keypair"], "additionalProperties": False,
            "properties": {"keypair": {
                "type": "object", "required": ["name", *required],
                "additionalProperties": False,
                "properties": {
                    "name": name,
                    "public_key": {"type": "string", "maxLength": 16384},
                    "type": {"type": "string", "enum": ["ssh", "x509"]},
                    "user_id": {"type": "string", "minLength": 1, "maxLength": 255},
                },
            }}}


keypair_create = _create_schema(schemas.keypair_name)
# 2.92: no more generated keys, so the public key is required.
keypair_create_v292 = _create_schema(schemas.keypair_name_v292, "public_key")


def _owner(req: Request, ctx: RequestContext, rule: str) -> str:
    """Whose key pairs: the caller's, or (2.10+, admin) the ``user_id`` asked for."""
    owner = req.arg("user_id") or ctx.user_id
    if owner != ctx.user_id and not at_least(req, "2.10"):
        raise policy.deny(f"os_compute_api:os-keypairs:{rule}")
    policy.authorize(ctx, f"os_compute_api:os-keypairs:{rule}", user_id=owner)
    return owner


def view(req: Request, kp: Any, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key,
                           "fingerprint": kp.fingerprint}
    if at_least(req, "2.2"):
        out["type"] = kp.type
    if detail:
        out.update({"user_id": kp.user_id, "deleted": False, "created_at": isotime(
            kp.created_at), "updated_at": None, "deleted_at": None, "id": kp.id})
    return out


@router.get("/v2.1/os-keypairs", tx=True)
def list_keypairs(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    reject_unknown(req, ("user_id", "limit", "marker"))
    owner = _owner(req, ctx, "index")
    marker = req.arg("marker") if at_least(req, "2.35") else None
    limit = int_arg(req, "limit") if at_least(req, "2.35") else None
    rows = keypairs.list_keypairs(s, owner, limit, marker)
    items = [{"keypair": view(req, kp)} for kp in rows]
    body: dict[str, Any] = {"keypairs": items}
    links = next_link(req, "os-keypairs", [i["keypair"] for i in items], limit, key="name")
    if links:
        body["keypairs_links"] = links
    return json_response(body)


@router.post("/v2.1/os-keypairs", tx=True)
def create_keypair(req: Request, s: Session) -> Response:
    rule = "os_compute_api:os-keypairs:create"
    ctx = policy.authorize(ctx_of(req), rule)
    body = validate(keypair_create_v292 if at_least(req, "2.92") else keypair_create,
                    req.json())["keypair"]
    owner = body.get("user_id") or ctx.user_id
    if owner != ctx.user_id and not at_least(req, "2.10"):
        raise policy.deny(rule)
    policy.authorize(ctx, rule, user_id=owner)
    key_type = body.get("type", "ssh") if at_least(req, "2.2") else "ssh"
    kp, private = keypairs.create(s, owner, ctx.project_id or "", body["name"], key_type,
                                  body.get("public_key"), settings_of(req))
    out = view(req, kp)
    out["user_id"] = owner
    if private is not None:
        out["private_key"] = private
    return json_response({"keypair": out}, 201 if at_least(req, "2.2") else 200)


def _name(req: Request) -> str:
    reject_unknown(req, ("user_id",))
    return req.path_params["name"]


@router.get("/v2.1/os-keypairs/{name}", tx=True)
def show_keypair(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    name = _name(req)
    kp = keypairs.get(s, _owner(req, ctx, "show"), name)
    return json_response({"keypair": view(req, kp, detail=True)})


@router.delete("/v2.1/os-keypairs/{name}", tx=True)
def delete_keypair(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-keypairs:delete")
    name = _name(req)
    keypairs.delete(s, _owner(req, ctx, "delete"), name)
    return empty(204 if at_least(req, "2.2") else 202)
