"""The engine and the session scope.

SQLite (the laptop and test database) gets WAL, foreign keys, a busy timeout,
and ``BEGIN IMMEDIATE`` for write sessions so two writers queue instead of
failing on a lock upgrade. MariaDB and PostgreSQL get ordinary transactions at
read committed (PostgreSQL's default; MariaDB's is repeatable read).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from gureum.errors import ConfigError

# Session.info key under which gureum.outbox records the rows a transaction wrote.
OUTBOX_KEY = "gureum.outbox"


class Database:
    """One engine per process; ``session()`` opens a unit of work."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.after_commit_hooks: list[Callable[[], None]] = []
        # Told the outbox rows a transaction wrote, once it committed (the API sets it).
        self.outbox_notifier: Callable[[list[int]], None] | None = None
        self._local = threading.local()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            database = parsed.database or ""
            if database in ("", ":memory:"):
                kwargs["poolclass"] = StaticPool
            else:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                private_sqlite_files(Path(database))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_recycle"] = 3600
            # PostgreSQL's default; MariaDB's is repeatable read, where a transaction
            # keeps reading the snapshot of its first read. At read committed a
            # quota check that waited for the project's lock (db/locks.py) counts what
            # the previous holder committed, on both servers alike.
            kwargs["isolation_level"] = "READ COMMITTED"
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except Exception as exc:  # bad URL or missing driver
            raise ConfigError(f"cannot use database {url!r}: {exc}") from None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite
            else self.engine
        )
        self._readers = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._writers = sessionmaker(bind=self._write_engine, expire_on_commit=False)

    @contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        maker = self._writers if write else self._readers
        with maker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                session.info.pop(OUTBOX_KEY, None)  # rolled back: nothing to hand over
                raise
        if write:
            outbox_ids = session.info.pop(OUTBOX_KEY, None)
            if outbox_ids and self.outbox_notifier is not None:
                self.outbox_notifier(list(outbox_ids))
            for hook in self.after_commit_hooks:
                hook()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        from gureum.db.migrate import upgrade

        upgrade(self)

    def dispose(self) -> None:
        self.engine.dispose()


def private_sqlite_files(path: Path) -> None:
    """Make the database file and its -wal and -shm companions 0600 from the start.

    They hold password hashes. SQLite creates -wal and -shm with the mode of
    the database file, so the file is created 0600 before the first connection
    (an empty file is an empty database); companions left readable by an older
    version are tightened.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except Exception:  # in-memory databases have no WAL
            pass
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def compare_and_swap(session: Session, model: Any, ident: Any, expected: dict[str, Any],
                     values: dict[str, Any]) -> bool:
    """``UPDATE model SET values WHERE id = ident AND expected``; True if a row changed.

    This is how every state change of a stateful resource is written: two racing
    requests both read the same state, only one of them finds it still there.
    """
    stmt = update(model).where(model.id == ident)
    for column, value in expected.items():
        col = getattr(model, column)
        if isinstance(value, (list, tuple, set, frozenset)):
            stmt = stmt.where(col.in_(list(value)))
        elif value is None:
            stmt = stmt.where(col.is_(None))
        else:
            stmt = stmt.where(col == value)
    result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]
