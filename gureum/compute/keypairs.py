"""Key pairs: a user's SSH (or x509) public keys, generated here or imported.

A key pair belongs to a user, not a project: names are unique per user, the
``key_pairs`` quota counts the user's key pairs, and an imported key must be
one OpenSSH can read (its fingerprint is computed as Nova does, MD5 over the
key blob). A generated key is ed25519; its private half is returned once and
never stored. The caller owns the session and has checked the policy.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.listing import page
from gureum.compute.models import KeyPair
from gureum.compute.quotas import limits_for
from gureum.config import Settings
from gureum.db.locks import lock_project_quotas
from gureum.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from gureum.paging import SortKey


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


def list_keypairs(s: Session, owner: str, limit: int | None,
                  marker: str | None) -> list[KeyPair]:
    """A user's key pairs by name, after the marker (a key pair's name)."""
    stmt = select(KeyPair).where(KeyPair.user_id == owner)
    return page(s, stmt, [SortKey(KeyPair.name)], limit, marker, KeyPair.user_id == owner,
                KeyPair.name == marker)


def create(s: Session, owner: str, project_id: str, name: str, key_type: str,
           public_key: str | None, settings: Settings) -> tuple[KeyPair, str | None]:
    """Import public_key, or generate a pair when it is None: (key pair, private key)."""
    if s.scalar(select(KeyPair.id).where(KeyPair.user_id == owner, KeyPair.name == name)):
        raise Conflict(f"Key pair '{name}' already exists.")
    limit = limits_for(s, project_id, settings).get("key_pairs", -1)
    if limit >= 0:  # key pairs are counted per user: the user's quota lock
        lock_project_quotas(s, f"user:{owner}")
    if limit >= 0 and len(s.scalars(select(KeyPair.id).where(KeyPair.user_id == owner))
                          .all()) >= limit:
        raise QuotaExceeded("Quota exceeded, too many key pairs.")
    private = None
    if public_key is None:
        private, public_key = generate()
    kp = KeyPair(name=name, user_id=owner, type=key_type, public_key=public_key.strip(),
                 fingerprint=fingerprint(public_key, key_type))
    s.add(kp)
    s.flush()
    return kp, private


def get(s: Session, owner: str, name: str) -> KeyPair:
    kp = s.scalar(select(KeyPair).where(KeyPair.user_id == owner, KeyPair.name == name))
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {owner}")
    return kp


def delete(s: Session, owner: str, name: str) -> None:
    s.delete(get(s, owner, name))
