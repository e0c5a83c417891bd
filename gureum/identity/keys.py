"""A Fernet key repository: staged, primary and secondary keys on disk.

Two exist, as in Keystone: the token keys and the credential keys (which
encrypt credential blobs at rest).

Layout as Keystone's: files named by integer. ``0`` is the staged key (the next
primary), the highest number is the primary (it encrypts), every other file is
a secondary (it only decrypts). ``rotate`` promotes the staged key, stages a new
one and drops the oldest secondaries beyond ``max_active_keys``. Files are mode
0600 in a 0700 directory. Several processes sharing the directory pick up a
rotation by watching its modification time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from gureum.errors import ConfigError


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3,
                 command: str = "gureum manage fernet") -> None:
        if max_active_keys < 2:
            raise ConfigError("identity.max_active_keys must be at least 2 "
                              "(a staged key and a primary key)")
        self.path = Path(path)
        self.max_active_keys = max_active_keys
        self.command = command  # what an operator runs to set the repository up
        self._lock = threading.Lock()
        self._mtime: float = -1.0
        self._fernet: MultiFernet | None = None
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
            return new_primary

    # -- in memory -----------------------------------------------------------
    def fernet(self) -> MultiFernet:
        """Primary first, then secondaries newest first, then the staged key."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            raise ConfigError(f"key repository {self.path} is missing; "
                              f"run `{self.command} setup`") from None
        if self._fernet is not None and mtime == self._mtime:
            return self._fernet
        with self._lock:
            indexes = self._indexes()
            if not indexes:
                raise ConfigError(f"no keys in {self.path}; run `{self.command} setup`")
            order = [*sorted((i for i in indexes if i != 0), reverse=True), 0]
            raw = [(self.path / str(i)).read_bytes().strip() for i in order
                   if (self.path / str(i)).exists()]
            self._fernet = MultiFernet([Fernet(key) for key in raw])
            self._primary_hash = hashlib.sha256(raw[0]).hexdigest()
            self._mtime = mtime
            return self._fernet

    def primary_key_hash(self) -> str:
        """A hash of the primary key: which key encrypted a stored value (Keystone's
        ``key_hash`` of credentials), without revealing it."""
        self.fernet()
        return self._primary_hash
