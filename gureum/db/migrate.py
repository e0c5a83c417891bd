"""Alembic, configured from code: no alembic.ini to find at run time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from gureum.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    with _migrating(db) as cfg:
        command.upgrade(cfg, revision)


@contextmanager
def _migrating(db: Database) -> Iterator[Config]:
    """One transaction for the migrations, on SQLite with foreign keys off.

    SQLite cannot drop or change a column in place: Alembic's batch mode copies the
    table, drops the old one and renames the copy. With foreign keys on, that drop
    first deletes every row, cascading to the child tables (a port's bindings and
    addresses, a user's group memberships and application credentials): an upgrade
    would lose them. SQLite's own advice for schema changes is to turn the checks off
    (outside the transaction; the pragma is a no-op inside one) and to check the keys
    with ``foreign_key_check`` before committing."""
    cfg = alembic_config(db.url)
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection if db.is_sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                yield cfg
                if raw is not None:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left rows whose foreign keys "
                                           f"point nowhere (table, rowid, parent): {broken}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    """The newest revision this gureum knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def downgrade(db: Database, revision: str) -> None:
    """Undo migrations down to ``revision`` (for tests and for going back a release)."""
    with _migrating(db) as cfg:
        command.downgrade(cfg, revision)
