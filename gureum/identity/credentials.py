"""Credentials (/v3/credentials and EC2 credentials): blobs encrypted at rest.

As in Keystone, blobs are encrypted with Fernet keys from their own key
repository (``<data_dir>/credential-keys``), never with the token keys, and
each row records a hash of the primary key that encrypted it. Rotating those
keys is a two-step dance, as with ``keystone-manage credential_rotate`` and
``credential_migrate``: ``rotate`` refuses while any blob is still encrypted
with an older key (the key it would drop could be the only one that decrypts
it), ``migrate`` re-encrypts every blob with the current primary key.

Who may do what (Keystone's default policies): the owner and admins create,
change and delete; the owner, admins and system readers read. A token from a
restricted application credential cannot make EC2 credentials, and a token
from any application credential only reaches credentials of its own project.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.errors import Conflict, Forbidden, GureumError, InvalidInput, NotFound
from gureum.identity import models as m
from gureum.identity.keys import KeyRepository
from gureum.identity.policy import deny

EC2 = "ec2"
# Blob keys of an EC2 credential that say how it was made; an update keeps them.
EC2_FIXED_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")


class CredentialEncryptionError(GureumError):
    status = 500
    title = "Internal Server Error"


def ec2_id(access: str) -> str:
    """An EC2 credential's id: the SHA-256 of its access key (Keystone's)."""
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


# -- encryption ------------------------------------------------------------------

def encrypt(keys: KeyRepository, blob: str) -> tuple[str, str]:
    """(ciphertext, hash of the primary key that made it)."""
    token = keys.fernet().encrypt(blob.encode("utf-8"))
    return token.decode("ascii"), keys.primary_key_hash()


def decrypt(keys: KeyRepository, encrypted: str) -> str:
    try:
        return keys.fernet().decrypt(encrypted.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError, UnicodeError):
        raise CredentialEncryptionError(
            "Credential could not be decrypted. Please contact the administrator") from None


def set_blob(keys: KeyRepository, cred: m.Credential, blob: str) -> None:
    cred.encrypted_blob, cred.key_hash = encrypt(keys, blob)


def blob_of(keys: KeyRepository, cred: m.Credential) -> str:
    return decrypt(keys, cred.encrypted_blob)


def ec2_blob(blob: str, field: str = "credential.blob") -> dict[str, Any]:
    """An EC2 blob: a JSON object with an ``access`` key."""
    try:
        data = json.loads(blob)
    except ValueError:
        raise InvalidInput("Invalid blob in credential", field=field) from None
    if not isinstance(data, dict) or not data:
        raise InvalidInput(f"Invalid input for field '{field}': an EC2 blob is a JSON "
                           "object.", field=field)
    if data.get("access") is None:
        raise InvalidInput(f"Invalid input for field '{field}': 'access' is required.",
                           field=field)
    return data


# -- rules -----------------------------------------------------------------------

def may_read(ctx: RequestContext, cred: m.Credential) -> bool:
    if not (ctx.is_admin or ctx.is_system_reader or ctx.user_id == cred.user_id):
        return False
    return in_delegated_scope(ctx, cred.project_id)


def check_owner_or_admin(ctx: RequestContext, user_id: str, rule: str) -> None:
    if not (ctx.is_admin or ctx.user_id == user_id):
        raise deny(rule)


def in_delegated_scope(ctx: RequestContext, project_id: str | None) -> bool:
    """A token made from an application credential reaches only its project's
    credentials (and never user-level ones such as TOTP secrets)."""
    return ctx.application_credential_id is None or project_id == ctx.project_id


def check_delegated_scope(ctx: RequestContext, project_id: str | None) -> None:
    if not in_delegated_scope(ctx, project_id):
        raise Forbidden("You are not authorized to perform the requested action: "
                        "Credential project does not match the project scope of the "
                        "delegated token.")


def check_unrestricted(s: Session, ctx: RequestContext) -> None:
    """EC2 credentials are a way out of an application credential's limits."""
    if ctx.application_credential_id is None:
        return
    app_cred = s.get(m.ApplicationCredential, ctx.application_credential_id)
    if app_cred is None or not app_cred.unrestricted:
        raise Forbidden("You are not authorized to perform the requested action: Using "
                        "method 'application_credential' is not allowed for managing "
                        "additional credentials.")


def _check_refs(s: Session, user_id: str | None, project_id: str | None) -> None:
    if user_id is not None and s.get(m.User, user_id) is None:
        raise InvalidInput(f"Invalid input for field 'credential.user_id': Could not find "
                           f"user: {user_id}.", field="credential.user_id")
    if project_id is not None and s.get(m.Project, project_id) is None:
        raise InvalidInput(f"Invalid input for field 'credential.project_id': Could not "
                           f"find project: {project_id}.", field="credential.project_id")


# -- /v3/credentials -------------------------------------------------------------------

def create(keys: KeyRepository, s: Session, ctx: RequestContext, body: dict[str, Any]
           ) -> tuple[m.Credential, str]:
    check_owner_or_admin(ctx, body["user_id"], "identity:create_credential")
    kind = body["type"]
    blob = body["blob"]
    project_id = body.get("project_id")
    if kind == EC2:
        check_unrestricted(s, ctx)
    check_delegated_scope(ctx, project_id)
    _check_refs(s, body["user_id"], project_id)
    if kind == EC2:
        data = ec2_blob(blob)
        if ctx.application_credential_id:
            # Tokens made from this EC2 credential act within the same delegation.
            data["app_cred_id"] = ctx.application_credential_id
            blob = json.dumps(data)
        cred_id = ec2_id(str(data["access"]))
    else:
        cred_id = uuid.uuid4().hex
    if s.get(m.Credential, cred_id) is not None:
        raise Conflict(f"Conflict occurred attempting to store credential - Duplicate "
                       f"entry found with ID {cred_id}.")
    extra = {k: v for k, v in body.items()
             if k not in ("id", "user_id", "project_id", "type", "blob")}
    cred = m.Credential(id=cred_id, user_id=body["user_id"], project_id=project_id,
                        type=kind, extra=extra)
    set_blob(keys, cred, blob)
    s.add(cred)
    s.flush()
    return cred, blob


def get(s: Session, ctx: RequestContext, cred_id: str, rule: str) -> m.Credential:
    """The credential, when the caller may read it; 403 before 404 for others."""
    cred = s.get(m.Credential, cred_id)
    if cred is None:
        if ctx.is_admin or ctx.is_system_reader:
            raise NotFound(f"Could not find credential: {cred_id}.", kind="credential")
        raise deny(rule)
    if not may_read(ctx, cred):
        raise deny(rule)
    return cred


def listing(s: Session, ctx: RequestContext, user_id: str | None, kind: str | None
            ) -> list[m.Credential]:
    stmt = select(m.Credential).order_by(m.Credential.id)
    if user_id:
        stmt = stmt.where(m.Credential.user_id == user_id)
    if kind:
        stmt = stmt.where(m.Credential.type == kind)
    if not (ctx.is_admin or ctx.is_system_reader):
        stmt = stmt.where(m.Credential.user_id == ctx.user_id)
    return [c for c in s.scalars(stmt) if may_read(ctx, c)]


def update(keys: KeyRepository, s: Session, ctx: RequestContext, cred_id: str,
           body: dict[str, Any]) -> tuple[m.Credential, str]:
    cred = get(s, ctx, cred_id, "identity:update_credential")
    check_owner_or_admin(ctx, cred.user_id, "identity:update_credential")
    if "id" in body and body["id"] != cred.id:
        raise InvalidInput("Cannot change the id of a credential.", field="credential.id")
    user_id = body.get("user_id", cred.user_id)
    # The owner may not hand the credential to someone else (the target is the result).
    check_owner_or_admin(ctx, user_id, "identity:update_credential")
    project_id = body.get("project_id", cred.project_id)
    kind = body.get("type", cred.type)
    check_delegated_scope(ctx, project_id)
    _check_refs(s, body.get("user_id"), body.get("project_id"))
    if kind == EC2 and not project_id:
        raise InvalidInput("Invalid input for field 'credential.project_id': an EC2 "
                           "credential needs a project.", field="credential.project_id")
    blob = blob_of(keys, cred)
    if "blob" in body:
        if cred.type == EC2 or kind == EC2:
            new = ec2_blob(body["blob"])
            old = ec2_blob(blob) if cred.type == EC2 else {}
            for key in EC2_FIXED_KEYS:
                if cred.type == EC2 and old.get(key) != new.get(key):
                    raise InvalidInput(f"{key} can not be updated for credential",
                                       field="credential.blob")
        blob = body["blob"]
        set_blob(keys, cred, blob)
    cred.user_id, cred.project_id, cred.type = user_id, project_id, kind
    extra = {k: v for k, v in body.items()
             if k not in ("id", "user_id", "project_id", "type", "blob")}
    if extra:
        cred.extra = {**(cred.extra or {}), **extra}
    s.flush()
    return cred, blob


def delete(s: Session, ctx: RequestContext, cred_id: str) -> None:
    cred = get(s, ctx, cred_id, "identity:delete_credential")
    check_owner_or_admin(ctx, cred.user_id, "identity:delete_credential")
    s.delete(cred)


# -- key rotation (gureum manage credential rotate|migrate) -----------------------------

def stale_count(keys: KeyRepository, s: Session) -> int:
    """How many stored secrets (credential blobs, OAuth1 consumer secrets) are
    encrypted with a key other than the primary."""
    primary = keys.primary_key_hash()
    hashes = [*s.scalars(select(m.Credential.key_hash)),
              *s.scalars(select(m.OAuth1Consumer.key_hash))]
    return sum(1 for h in hashes if h != primary)


def migrate(keys: KeyRepository, s: Session) -> int:
    """Re-encrypt every stored secret not encrypted with the primary key; how many."""
    primary = keys.primary_key_hash()
    count = 0
    for cred in s.scalars(select(m.Credential).where(m.Credential.key_hash != primary)):
        set_blob(keys, cred, blob_of(keys, cred))
        count += 1
    for consumer in s.scalars(select(m.OAuth1Consumer)
                              .where(m.OAuth1Consumer.key_hash != primary)):
        secret = decrypt(keys, consumer.encrypted_secret)
        consumer.encrypted_secret, consumer.key_hash = encrypt(keys, secret)
        count += 1
    return count
