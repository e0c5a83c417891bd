"""A Fernet key repository: staged, primary and secondary keys on disk.

Two exist, as in Keystone: the token keys and the credential keys (which
encrypt credential blobs at rest).

Layout as Keystone's: files named by integer. ``0`` is the staged key (the next
primary), the highest number is the primary (it encrypts), every other file is
a secondary (it only decrypts). ``rotate`` promotes the staged key, stages a new
one and drops the oldest secondaries beyond ``max_active_keys``. Files are mode
0600 in a 0700 directory. Several processes sharing the directory pick up a
rotation by watching its modification time, looked at no more than once every
``check_interval`` seconds (a rotation in this process is seen at once).

Decryption is the hot path of token validation, so each load of the keys is a
:class:`KeySet` that prepares, once per key, what the ``cryptography.fernet``
convenience API builds on every call: the HMAC state of the signing key and an
AES context of the encryption key. It accepts exactly the tokens ``MultiFernet``
accepts (the unit tests check both against each other).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gureum.errors import ConfigError

# How often (seconds) the key directory is looked at for a rotation made elsewhere.
CHECK_INTERVAL = 1.0

_URLSAFE = bytes.maketrans(b"-_", b"+/")
# version (1) + timestamp (8) + IV (16) + at least one AES block (16) + HMAC (32)
_MIN_TOKEN = 1 + 8 + 16 + 16 + 32


class _DecryptionKey:
    """One Fernet key, prepared for decrypting: its HMAC state and an AES context.

    CBC decryption is P_i = D(C_i) xor C_(i-1), with C_0 the IV: every block goes
    through one ECB decryption context made once for the key, and the chaining is one
    xor of two integers. The HMAC is checked first, in constant time, as Fernet does,
    so nothing is decrypted that this key did not sign.
    """

    def __init__(self, key: bytes) -> None:
        raw = base64.urlsafe_b64decode(key)
        if len(raw) != 32:
            raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes")
        self._hmac = crypto_hmac.HMAC(raw[:16], hashes.SHA256())
        self._blocks = Cipher(algorithms.AES(raw[16:]), modes.ECB()).decryptor()
        self._lock = threading.Lock()  # the AES context is not for two threads at once

    def signed(self, data: bytes) -> bool:
        mac = self._hmac.copy()
        mac.update(data[:-32])
        return hmac.compare_digest(mac.finalize(), data[-32:])

    def decrypt(self, data: bytes) -> bytes:
        """The plaintext of a token this key signed (``signed`` said so)."""
        ciphertext = data[25:-32]
        size = len(ciphertext)
        with self._lock:
            blocks = self._blocks.update(ciphertext)
        if len(blocks) != size:
            raise InvalidToken
        chained = int.from_bytes(blocks) ^ int.from_bytes(data[9:9 + size])
        padded = chained.to_bytes(size)
        pad = padded[-1]
        if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
            raise InvalidToken
        return padded[:-pad]


class KeySet:
    """The keys of one load of the repository, primary first: encrypts with the
    primary (``MultiFernet``), decrypts with every key."""

    def __init__(self, keys: list[bytes]) -> None:
        self.multi = MultiFernet([Fernet(key) for key in keys])
        self._keys = [_DecryptionKey(key) for key in keys]

    def encrypt(self, data: bytes) -> bytes:
        return self.multi.encrypt(data)

    def decrypt(self, token: bytes | str) -> bytes:
        """What ``MultiFernet.decrypt`` gives (no TTL); InvalidToken otherwise."""
        if isinstance(token, str):
            try:
                token = token.encode("ascii")
            except UnicodeEncodeError:
                raise InvalidToken from None
        try:
            data = binascii.a2b_base64(token.translate(_URLSAFE))
        except binascii.Error:
            raise InvalidToken from None
        if len(data) < _MIN_TOKEN or data[0] != 0x80 or (len(data) - 57) % 16:
            raise InvalidToken
        for key in self._keys:
            if key.signed(data):
                return key.decrypt(data)
        raise InvalidToken


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3,
                 command: str = "gureum manage fernet",
                 check_interval: float = CHECK_INTERVAL) -> None:
        if max_active_keys < 2:
            raise ConfigError("identity.max_active_keys must be at least 2 "
                              "(a staged key and a primary key)")
        self.path = Path(path)
        self.max_active_keys = max_active_keys
        self.command = command  # what an operator runs to set the repository up
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._mtime: float = -1.0
        self._checked_at = -check_interval  # monotonic time of the last look at the directory
        self._keyset: KeySet | None = None
        self._primary_hash = ""

    # -- on disk -----------------------------------------------------------
    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write(self, index: int, key: bytes) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        os.replace(tmp, self.path / str(index))

    def setup(self) -> bool:
        """Create the repository with a staged and a primary key; False if it exists."""
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)
            if self._indexes():
                return False
            self._write(0, Fernet.generate_key())
            self._write(1, Fernet.generate_key())
            self._mtime = -1.0
            self._keyset = None
            return True

    def rotate(self) -> int:
        """Promote the staged key to primary; return the new primary's index."""
        with self._lock:
            indexes = self._indexes()
            if not indexes:
                raise ConfigError(f"no keys in {self.path}; run `{self.command} setup`")
            new_primary = max(indexes) + 1
            os.replace(self.path / "0", self.path / str(new_primary))
            self._write(0, Fernet.generate_key())
            # Keep the staged key, the primary, and the newest secondaries.
            secondaries = [i for i in self._indexes() if i not in (0, new_primary)]
            excess = len(secondaries) + 2 - self.max_active_keys
            for index in secondaries[:max(0, excess)]:
                (self.path / str(index)).unlink()
            self._mtime = -1.0
            self._keyset = None
            return new_primary

    # -- in memory -----------------------------------------------------------
    def fernet(self) -> MultiFernet:
        """Primary first, then secondaries newest first, then the staged key."""
        return self.keyset().multi

    def keyset(self) -> KeySet:
        """The current keys; the directory is looked at once per ``check_interval``."""
        keyset = self._keyset
        now = time.monotonic()
        if keyset is not None and now - self._checked_at < self.check_interval:
            return keyset
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            raise ConfigError(f"key repository {self.path} is missing; "
                              f"run `{self.command} setup`") from None
        if keyset is not None and mtime == self._mtime:
            self._checked_at = now
            return keyset
        with self._lock:
            indexes = self._indexes()
            if not indexes:
                raise ConfigError(f"no keys in {self.path}; run `{self.command} setup`")
            order = [*sorted((i for i in indexes if i != 0), reverse=True), 0]
            raw = [(self.path / str(i)).read_bytes().strip() for i in order
                   if (self.path / str(i)).exists()]
            keyset = KeySet(raw)
            self._primary_hash = hashlib.sha256(raw[0]).hexdigest()
            self._keyset = keyset
            self._mtime = mtime
            self._checked_at = now
            return keyset

    def primary_key_hash(self) -> str:
        """A hash of the primary key: which key encrypted a stored value (Keystone's
        ``key_hash`` of credentials), without revealing it."""
        self.fernet()
        return self._primary_hash
