"""Self-contained tokens: a small msgpack payload, Fernet-encrypted.

Nothing about a token is stored at issue time, so validation costs the same
after ten tokens or ten million (SCENARIOS.md S4). A token carries only ids and
times; names, roles and the catalog are looked up (through the identity cache)
when the token is validated, so a role removed a moment ago is already gone.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass

import msgpack
from cryptography.fernet import InvalidToken

from gureum.identity.keys import KeyRepository, KeySet

VERSION = 1

METHOD_BITS = {
    "password": 1,
    "token": 2,
    "application_credential": 4,
    "totp": 8,
    "external": 16,
    "mapped": 32,
}

SCOPE_NONE, SCOPE_PROJECT, SCOPE_DOMAIN, SCOPE_SYSTEM = 0, 1, 2, 3

# Decoded tokens remembered by TokenCodec.decode; a fixed bound, whatever the number
# of tokens issued or presented.
DECODE_CACHE_SIZE = 4096


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def methods_to_bits(methods: list[str] | tuple[str, ...]) -> int:
    bits = 0
    for name in methods:
        bits |= METHOD_BITS[name]
    return bits


def bits_to_methods(bits: int) -> list[str]:
    return [name for name, bit in METHOD_BITS.items() if bits & bit]


@dataclass(frozen=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    scope_kind: int
    scope_id: str | None
    issued_at: float  # epoch seconds
    expires_at: float
    audit_ids: tuple[str, ...]
    app_cred_id: str | None = None

    @property
    def project_id(self) -> str | None:
        return self.scope_id if self.scope_kind == SCOPE_PROJECT else None

    @property
    def domain_id(self) -> str | None:
        return self.scope_id if self.scope_kind == SCOPE_DOMAIN else None

    @property
    def system(self) -> bool:
        return self.scope_kind == SCOPE_SYSTEM

    @property
    def issued_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.issued_at, dt.UTC).replace(tzinfo=None)

    @property
    def expires_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.expires_at, dt.UTC).replace(tzinfo=None)


class TokenFormatError(Exception):
    """The string is not a token this cloud issued (or its key was rotated out)."""


class TokenCodec:
    """Packs payloads into tokens and back, with the key repository's keys."""

    def __init__(self, keys: KeyRepository) -> None:
        self.keys = keys
        # token → (the key set that decrypted it, payload). Decrypting is a pure
        # function of the token and the keys, so a hit is exactly what decrypting
        # again would give; a changed key set (rotation) misses. Cleared when full.
        self._decoded: dict[str, tuple[KeySet, TokenPayload]] = {}

    def encode(self, payload: TokenPayload) -> str:
        packed = msgpack.packb([
            VERSION,
            payload.user_id,
            methods_to_bits(payload.methods),
            payload.scope_kind,
            payload.scope_id,
            payload.issued_at,
            payload.expires_at,
            list(payload.audit_ids),
            payload.app_cred_id,
        ])
        token = self.keys.keyset().encrypt(packed)
        # Fernet tokens are url-safe base64; the padding carries no information.
        return token.decode().rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        if not token or len(token) > 1024:
            raise TokenFormatError("not a token")
        keyset = self.keys.keyset()
        hit = self._decoded.get(token)
        if hit is not None and hit[0] is keyset:
            return hit[1]
        padded = token + "=" * (-len(token) % 4)
        try:
            packed = keyset.decrypt(padded)
            data = msgpack.unpackb(packed)
            (version, user_id, bits, scope_kind, scope_id, issued_at, expires_at,
             audit_ids, app_cred_id) = data
        except (InvalidToken, UnicodeEncodeError, ValueError, TypeError,
                msgpack.UnpackException):
            raise TokenFormatError("not a token") from None
        if version != VERSION:
            raise TokenFormatError(f"unknown token version {version}")
        payload = TokenPayload(user_id, tuple(bits_to_methods(bits)), scope_kind, scope_id,
                               float(issued_at), float(expires_at), tuple(audit_ids),
                               app_cred_id)
        if len(self._decoded) >= DECODE_CACHE_SIZE:
            self._decoded.clear()
        self._decoded[token] = (keyset, payload)
        return payload
