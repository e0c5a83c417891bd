"""Password and secret hashing with bcrypt (Keystone's default hasher).

bcrypt only looks at the first 72 bytes; like Keystone we pre-hash longer
secrets so two long passwords sharing a prefix are not equal.
"""

from __future__ import annotations

import base64
import hashlib

import bcrypt


def _prepare(secret: str) -> bytes:
    raw = secret.encode("utf-8")
    if len(raw) > 72:
        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


def hash_secret(secret: str, rounds: int) -> str:
    return bcrypt.hashpw(_prepare(secret), bcrypt.gensalt(rounds=rounds)).decode()


def check_secret(secret: str, hashed: str | None) -> bool:
    if not hashed:
        # Spend the same time as a real check, so a missing password is not observable.
        bcrypt.checkpw(b"x", _DUMMY)
        return False
    try:
        return bcrypt.checkpw(_prepare(secret), hashed.encode())
    except ValueError:
        return False


_DUMMY = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=4))
