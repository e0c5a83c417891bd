"""Password and secret hashing with bcrypt (Keystone's default hasher).

bcrypt only looks at the first 72 bytes; like Keystone we pre-hash longer
secrets so two long passwords sharing a prefix are not equal.

A login for a user that does not exist (or has no password) is checked
against a dummy hash of the same cost as real ones, so the answer takes as
long as a wrong password and timing does not tell whether the user exists.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import bcrypt


def _prepare(secret: str) -> bytes:
    raw = secret.encode("utf-8")
    if len(raw) > 72:
        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


def hash_secret(secret: str, rounds: int) -> str:
    return bcrypt.hashpw(_prepare(secret), bcrypt.gensalt(rounds=rounds)).decode()


@functools.cache
def dummy_hash(rounds: int) -> bytes:
    """A hash nobody knows the secret of, costing ``rounds`` like real ones."""
    return bcrypt.hashpw(b"gureum-dummy", bcrypt.gensalt(rounds=rounds))


def hash_rounds(hashed: str | bytes) -> int:
    """The cost of a bcrypt hash ($2b$12$… → 12)."""
    text = hashed.decode() if isinstance(hashed, bytes) else hashed
    return int(text.split("$")[2])


def check_secret(secret: str, hashed: str | None, rounds: int) -> bool:
    """True when ``secret`` matches ``hashed``. With no hash, spend the time of a check
    at cost ``rounds`` (the configured one) and return False."""
    if not hashed:
        bcrypt.checkpw(_prepare(secret), dummy_hash(rounds))
        return False
    try:
        return bcrypt.checkpw(_prepare(secret), hashed.encode())
    except ValueError:
        return False
