"""The SQLite database and its -wal/-shm files are private from the first start."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from gureum.db import Database


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_fresh_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: new files 0644
    try:
        db = Database(f"sqlite:///{tmp_path / 'gureum.db'}")
        db.upgrade()
        with db.session() as s:
            s.execute(text("SELECT 1"))
        files = {p.name: _mode(p) for p in tmp_path.iterdir()}
        db.dispose()
    finally:
        os.umask(old)
    assert {"gureum.db", "gureum.db-wal", "gureum.db-shm"} <= set(files), files
    assert all(mode == 0o600 for mode in files.values()), files


def test_readable_files_left_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gureum.db'}")
    db.upgrade()
    db.dispose()
    for name in ("gureum.db", "gureum.db-wal", "gureum.db-shm"):
        path = tmp_path / name
        path.touch()
        os.chmod(path, 0o644)
    db = Database(f"sqlite:///{tmp_path / 'gureum.db'}")
    try:
        for name in ("gureum.db", "gureum.db-wal", "gureum.db-shm"):
            assert _mode(tmp_path / name) == 0o600, name
    finally:
        db.dispose()
