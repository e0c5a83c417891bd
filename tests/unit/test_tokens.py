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


def test_keyset_decrypts_exactly_what_multifernet_decrypts(tmp_path: Path) -> None:
    """The prepared decoder against the cryptography library's own, with every key of
    the repository, every padding length, and tampered or foreign tokens."""
    import base64
    import os
    import random

    from cryptography.fernet import Fernet, InvalidToken

    keys = KeyRepository(tmp_path / "keys", max_active_keys=4)
    keys.setup()
    keys.rotate()
    keyset = keys.keyset()
    multi = keyset.multi
    raw = [(tmp_path / "keys" / name).read_bytes() for name in ("2", "1", "0")]
    rng = random.Random(3)
    for size in range(0, 70):
        data = os.urandom(size)
        for key in raw:  # primary, secondary, staged
            token = Fernet(key).encrypt(data)
            assert keyset.decrypt(token) == multi.decrypt(token) == data
            assert keyset.decrypt(token.decode()) == data
        for _ in range(3):  # any changed byte is refused by both
            blob = bytearray(base64.urlsafe_b64decode(token))
            blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
            forged = base64.urlsafe_b64encode(bytes(blob))
            for decrypt in (keyset.decrypt, multi.decrypt):
                with pytest.raises(InvalidToken):
                    decrypt(forged)
        for cut in (1, 16, 32, len(token) // 2):  # shortened
            for decrypt in (keyset.decrypt, multi.decrypt):
                with pytest.raises(InvalidToken):
                    decrypt(token[:-cut])
    foreign = Fernet(Fernet.generate_key()).encrypt(b"x")
    for junk in (foreign, b"", b"gAAAAA", "é".encode(), b"!!!!"):
        for decrypt in (keyset.decrypt, multi.decrypt):
            with pytest.raises(InvalidToken):
                decrypt(junk)
    with pytest.raises(InvalidToken):
        keyset.decrypt("é" * 80)


def test_rotation_elsewhere_is_seen_within_the_check_interval(tmp_path: Path) -> None:
    """Another process's rotation is picked up, though the directory is looked at no
    more than once per interval; a rotation in this process is seen at once."""
    here = KeyRepository(tmp_path / "keys", check_interval=0.2)
    here.setup()
    elsewhere = KeyRepository(tmp_path / "keys")
    before = here.keyset()
    assert here.keyset() is before
    elsewhere.rotate()
    elsewhere.rotate()  # the staged key `here` knows is now primary; a new one is staged
    token = TokenCodec(elsewhere).encode(payload())  # by a key `here` has not read
    codec = TokenCodec(here)
    assert here.keyset() is before  # within the interval: the directory is not read
    with pytest.raises(TokenFormatError):
        codec.decode(token)
    time.sleep(0.25)
    assert codec.decode(token).user_id == "u" * 32
    assert here.keyset() is not before
    seen = here.keyset()
    here.rotate()
    assert here.keyset() is not seen
