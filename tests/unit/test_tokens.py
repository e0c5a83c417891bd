"""Fernet keys and token payloads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gureum.errors import ConfigError
from gureum.identity.keys import KeyRepository
from gureum.identity.tokens import (
    SCOPE_PROJECT,
    TokenCodec,
    TokenFormatError,
    TokenPayload,
    bits_to_methods,
    methods_to_bits,
    new_audit_id,
)


def payload() -> TokenPayload:
    now = time.time()
    return TokenPayload("u" * 32, ("password", "token"), SCOPE_PROJECT, "p" * 32, now,
                        now + 3600, (new_audit_id(), new_audit_id()), None)


def test_round_trip(tmp_path: Path) -> None:
    keys = KeyRepository(tmp_path / "keys")
    assert keys.setup()
    assert not keys.setup()
    codec = TokenCodec(keys)
    p = payload()
    token = codec.encode(p)
    assert "=" not in token and len(token) < 300
    assert codec.decode(token) == p


def test_rotation_keeps_old_tokens_until_pruned(tmp_path: Path) -> None:
    keys = KeyRepository(tmp_path / "keys", max_active_keys=3)
    keys.setup()
    codec = TokenCodec(keys)
    old = codec.encode(payload())
    assert keys.rotate() == 2
    newer = codec.encode(payload())
    assert codec.decode(old) and codec.decode(newer)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["0", "1", "2"]
    keys.rotate()  # key 1 (which signed `old`) falls out of the window of 3
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["0", "2", "3"]
    with pytest.raises(TokenFormatError):
        codec.decode(old)
    assert codec.decode(newer)


def test_staged_key_already_decrypts(tmp_path: Path) -> None:
    """A token made with the staged key (another server rotated first) is accepted."""
    from cryptography.fernet import Fernet

    keys = KeyRepository(tmp_path / "keys")
    keys.setup()
    staged = Fernet((tmp_path / "keys" / "0").read_bytes())
    other = TokenCodec(keys)
    token = staged.encrypt(b"\x99\x01").decode().rstrip("=")
    with pytest.raises(TokenFormatError):  # valid key, but not a token payload
        other.decode(token)


@pytest.mark.parametrize("junk", ["", "x", "gAAAAA" + "A" * 100, "é" * 20, "a" * 5000])
def test_junk_is_not_a_token(tmp_path: Path, junk: str) -> None:
    keys = KeyRepository(tmp_path / "keys")
    keys.setup()
    with pytest.raises(TokenFormatError):
        TokenCodec(keys).decode(junk)


def test_missing_repository_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fernet setup"):
        TokenCodec(KeyRepository(tmp_path / "none")).encode(payload())
    with pytest.raises(ConfigError):
        KeyRepository(tmp_path, max_active_keys=1)


def test_method_bits_round_trip() -> None:
    assert bits_to_methods(methods_to_bits(["token", "password"])) == ["password", "token"]
