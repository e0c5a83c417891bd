"""/v2.1/os-keypairs: create (generate or import), list, show, delete."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import schemas
from gureum.compute.api.common import ctx_of, int_arg, require_writer, settings_of
from gureum.compute.api.params import page, reject_unknown
from gureum.compute.models import KeyPair
from gureum.compute.quotas import limits_for
from gureum.compute.views.common import isotime, next_link
from gureum.context import RequestContext
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound, QuotaExceeded
from gureum.paging import SortKey

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


def fingerprint(public_key: str, key_type: str = "ssh") -> str:
    """The MD5 fingerprint of an OpenSSH public key ("aa:bb:…"); 400 if it is not one."""
    parts = public_key.strip().split()
    if key_type == "x509":
        digest = hashlib.sha1(public_key.encode()).hexdigest()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    try:
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
            raise ValueError
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, TypeError, Exception):
        raise InvalidInput("Keypair data is invalid: failed to generate fingerprint",
                           field="keypair.public_key") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate() -> tuple[str, str]:
    """A new ed25519 key pair: (private key PEM, OpenSSH public key)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public + " Generated-by-Gureum"


def _owner(req: Request, ctx: RequestContext) -> str:
    user_id = req.arg("user_id")
    if user_id and user_id != ctx.user_id:
        if not at_least(req, "2.10") or not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-keypairs to be performed.")
        return user_id
    return ctx.user_id


def view(req: Request, kp: KeyPair, detail: bool = False) -> dict[str, Any]:
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
    owner = _owner(req, ctx)
    stmt = select(KeyPair).where(KeyPair.user_id == owner)
    marker = req.arg("marker") if at_least(req, "2.35") else None
    limit = int_arg(req, "limit") if at_least(req, "2.35") else None
    rows = page(s, stmt, [SortKey(KeyPair.name)], limit, marker, KeyPair.user_id == owner,
                KeyPair.name == marker)
    items = [{"keypair": view(req, kp)} for kp in rows]
    body: dict[str, Any] = {"keypairs": items}
    links = next_link(req, "os-keypairs", [i["keypair"] for i in items], limit, key="name")
    if links:
        body["keypairs_links"] = links
    return json_response(body)


@router.post("/v2.1/os-keypairs", tx=True)
def create_keypair(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:os-keypairs:create")
    body = validate(keypair_create_v292 if at_least(req, "2.92") else keypair_create,
                    req.json())["keypair"]
    name = body["name"]
    owner = ctx.user_id
    if body.get("user_id") and body["user_id"] != ctx.user_id:
        if not (at_least(req, "2.10") and ctx.is_admin):
            raise Forbidden("Policy doesn't allow os_compute_api:os-keypairs:create to be "
                            "performed.")
        owner = body["user_id"]
    if s.scalar(select(KeyPair.id).where(KeyPair.user_id == owner, KeyPair.name == name)):
        raise Conflict(f"Key pair '{name}' already exists.")
    limit = limits_for(s, ctx.project_id or "", settings_of(req)).get("key_pairs", -1)
    if limit >= 0 and len(s.scalars(select(KeyPair.id).where(KeyPair.user_id == owner))
                          .all()) >= limit:
        raise QuotaExceeded("Quota exceeded, too many key pairs.")
    key_type = body.get("type", "ssh") if at_least(req, "2.2") else "ssh"
    private = None
    public = body.get("public_key")
    if public is None:
        private, public = generate()
    kp = KeyPair(name=name, user_id=owner, type=key_type, public_key=public.strip(),
                 fingerprint=fingerprint(public, key_type))
    s.add(kp)
    s.flush()
    out = view(req, kp)
    out["user_id"] = owner
    if private is not None:
        out["private_key"] = private
    return json_response({"keypair": out}, 201 if at_least(req, "2.2") else 200)


def _find(req: Request, s: Session) -> KeyPair:
    ctx = ctx_of(req)
    reject_unknown(req, ("user_id",))
    name = req.path_params["name"]
    kp = s.scalar(select(KeyPair).where(KeyPair.user_id == _owner(req, ctx),
                                        KeyPair.name == name))
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {_owner(req, ctx)}")
    return kp


@router.get("/v2.1/os-keypairs/{name}", tx=True)
def show_keypair(req: Request, s: Session) -> Response:
    return json_response({"keypair": view(req, _find(req, s), detail=True)})


@router.delete("/v2.1/os-keypairs/{name}", tx=True)
def delete_keypair(req: Request, s: Session) -> Response:
    require_writer(ctx_of(req), "os_compute_api:os-keypairs:delete")
    s.delete(_find(req, s))
    return empty(204 if at_least(req, "2.2") else 202)
