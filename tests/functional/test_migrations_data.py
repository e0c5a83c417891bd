"""Schema migrations carry data forward (S5): rows written at an early revision
(projects and users, servers, ports with their bindings and addresses, volumes and
their attachments) are still there, with the same values, after every later
revision on the way to head, and again on the way back down.

On SQLite, Alembic's batch mode rebuilds a table to drop or change a column: the
old table is dropped, and with foreign keys on, a drop deletes its rows first and
cascades to every child table (a port's bindings and addresses, a user's group
memberships). Every migration runs here on each database with such rows in place.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

import gureum.models  # noqa: F401  (every table on Base.metadata)
from gureum.db import Base, Database
from gureum.db.migrate import alembic_config, downgrade, upgrade
from tests.functional.test_databases import SERVERS, reachable

WHEN = dt.datetime(2026, 11, 30, 12, 34, 56)


@pytest.fixture(params=["sqlite", *sorted(SERVERS)])
def database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'gureum.db'}")
        yield db
        db.dispose()
        return
    url, admin_url, port = SERVERS[request.param]
    if not reachable(port):
        pytest.skip(f"{request.param} is not running on 127.0.0.1:{port}")
    name = f"gureum_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    db = Database(url.format(db=name))
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            force = " WITH (FORCE)" if request.param == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE {name}{force}"))
        admin.dispose()


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


# What is written at which revision: table -> rows (the columns we care about; the
# other NOT NULL columns get a plain value of their type). Foreign keys point at rows
# written at the same or an earlier revision.
SEEDS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "0001": [
        ("identity_domains", {"id": "dom-1", "name": "engineering", "enabled": True}),
        ("identity_projects", {"id": "proj-1", "name": "web", "domain_id": "dom-1",
                               "description": "the web team"}),
        ("identity_users", {"id": "user-1", "name": "alice", "domain_id": "dom-1",
                            "password_hash": "$2b$04$hash", "extra": {"email": "a@x"}}),
        ("identity_roles", {"id": "role-1", "name": "member"}),
        ("identity_groups", {"id": "grp-1", "name": "ops", "domain_id": "dom-1"}),
        ("identity_group_members", {"group_id": "grp-1", "user_id": "user-1"}),
        ("identity_application_credentials", {"id": "appcred-1", "user_id": "user-1",
                                              "name": "ci", "project_id": "proj-1"}),
    ],
    "0004": [
        ("compute_instances", {
            "id": "inst-1", "seq": 1, "name": "web-1", "project_id": "proj-1",
            "user_id": "user-1", "host": "c01", "node": "c01", "vm_state": "active",
            "flavor": {"name": "m1.small", "vcpus": 1, "memory_mb": 512},
            "network_info": [{"port_id": "port-1", "vif_type": "ovs",
                              "vif_details": {"port_filter": True}}],
            "metadata": {"role": "web"}, "deleted": False}),
        ("compute_migrations", {"id": 1, "uuid": "mig-1", "instance_id": "inst-1",
                                "migration_type": "live-migration", "status": "completed",
                                "source_compute": "c02", "dest_compute": "c01"}),
    ],
    "0005": [
        ("network_networks", {"id": "net-1", "name": "private", "project_id": "proj-1",
                              "mtu": 1450}),
        ("network_subnets", {"id": "sub-1", "network_id": "net-1", "project_id": "proj-1",
                             "cidr": "10.0.0.0/24", "ip_version": 4,
                             "gateway_ip": "10.0.0.1"}),
        ("network_ports", {"id": "port-1", "network_id": "net-1", "project_id": "proj-1",
                           "mac_address": "fa:16:3e:00:00:01", "device_id": "inst-1",
                           "device_owner": "compute:nova", "status": "ACTIVE"}),
        ("network_ip_allocations", {"id": 1, "port_id": "port-1", "subnet_id": "sub-1",
                                    "network_id": "net-1", "ip_address": "10.0.0.5"}),
        ("network_port_bindings", {
            "port_id": "port-1", "host": "c01", "status": "ACTIVE", "vif_type": "ovs",
            "vnic_type": "normal", "profile": {},
            "vif_details": {"port_filter": True, "bridge_name": "br-int"}}),
    ],
    "0011": [
        ("network_agents", {"id": "agent-1", "binary": "gureum-compute", "host": "c01",
                            "agent_type": "Open vSwitch agent",
                            "configurations": {"vif_type": "ovs"}}),
    ],
    "0014": [
        ("volume_types", {"id": "vt-1", "name": "lvm", "extra_specs": {"backend": "lvm"}}),
        ("volumes", {"id": "vol-1", "project_id": "proj-1", "size": 10, "status": "in-use",
                     "attach_status": "attached", "volume_type_id": "vt-1",
                     "metadata": {"purpose": "db"}}),
        ("volume_attachments", {"id": "att-1", "volume_id": "vol-1", "instance_id": "inst-1",
                                "attached_host": "c01", "attach_status": "attached",
                                "mountpoint": "/dev/vdb"}),
        ("volume_snapshots", {"id": "snap-1", "volume_id": "vol-1", "project_id": "proj-1",
                              "size": 10, "status": "available"}),
    ],
    "0017": [
        ("compute_block_device_mappings", {
            "id": 1, "uuid": "bdm-1", "instance_id": "inst-1", "volume_id": "vol-1",
            "device_name": "/dev/vdb", "attachment_id": "att-1", "status": "attached",
            "connection_info": {"driver_volume_type": "file"}}),
    ],
}


# Columns a migration drops on purpose (their data moved elsewhere or meant nothing).
DROPPED = {("identity_users", "failed_auth_count"),  # 0006: per-address login failures
           ("identity_users", "failed_auth_at")}


def _model_type(table: str, column: str) -> Any:
    model = Base.metadata.tables.get(table)
    if model is not None and column in model.c:
        return model.c[column].type
    return None


def _table(conn: sa.Connection, name: str) -> tuple[sa.TableClause, sa.Table]:
    """The table as it is at this revision (reflected), and as a table clause typed as
    the models type it (JSON decoded and encoded the same way on every database)."""
    reflected = sa.Table(name, sa.MetaData(), autoload_with=conn)
    return sa.table(name, *[sa.column(c.name, _model_type(name, c.name) or c.type)
                            for c in reflected.columns]), reflected


def _plain(typ: Any) -> Any:
    """A value of the column's type, for NOT NULL columns a seed does not name."""
    try:
        python = typ.python_type
    except NotImplementedError:
        python = str
    filler: dict[type, Any] = {str: "x", int: 0, bool: False, dict: {}, list: [],
                               float: 0.0, dt.datetime: WHEN}
    return filler.get(python, "x")


def _insert(conn: sa.Connection, name: str, given: dict[str, Any]) -> dict[str, Any]:
    table, reflected = _table(conn, name)
    row = dict(given)
    for c in reflected.columns:
        if c.name in row or c.nullable or c.server_default is not None:
            continue
        row[c.name] = _plain(table.c[c.name].type)
    conn.execute(sa.insert(table).values(**row))
    return row


def _norm(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


Row = tuple[str, dict[str, Any], dict[str, Any]]  # table, primary key, values


def _check(conn: sa.Connection, seeded: list[Row], where: str) -> None:
    # The columns of every seeded table in one look (reflecting each table in full,
    # at every step, on three databases, took most of this test's time).
    names = sorted({name for name, _, _ in seeded})
    columns = {name: cols for (_, name), cols in
               sa.inspect(conn).get_multi_columns(filter_names=names).items()}
    for name, key, values in seeded:
        present = {c["name"]: c["type"] for c in columns.get(name, [])}
        table = sa.table(name, *[sa.column(c, _model_type(name, c) or typ)
                                 for c, typ in present.items()])
        stmt = sa.select(table)
        for column, value in key.items():
            stmt = stmt.where(table.c[column] == value)
        found = conn.execute(stmt).mappings().all()
        assert len(found) == 1, f"{where}: the {name} row {key} is gone"
        for column, value in values.items():
            if (name, column) in DROPPED:
                continue
            assert column in table.c, f"{where}: {name}.{column} is gone"
            got = _norm(found[0][column])
            if isinstance(value, bool):
                got = bool(got)
            assert got == value, f"{where}: {name}.{column} is {got!r}, was {value!r}"


def _seed(db: Database, revision: str, seeded: list[Row]) -> None:
    with db.engine.begin() as conn:
        for name, given in SEEDS.get(revision, []):
            row = _insert(conn, name, given)
            pk = [c.name for c in sa.Table(name, sa.MetaData(), autoload_with=conn)
                  .primary_key.columns]
            seeded.append((name, {c: row[c] for c in pk}, row))


def _step(db: Database, move: Callable[[Database, str], None], target: str, seeded: list[Row],
          where: str) -> None:
    move(db, target)
    with db.engine.connect() as conn:
        _check(conn, seeded, where)


def test_rows_survive_every_migration_up_and_down(database: Database) -> None:
    revs = revisions()
    assert revs[0] == "0001" and set(SEEDS) <= set(revs)
    seeded: list[Row] = []
    for rev in revs:
        _step(database, upgrade, rev, seeded, f"upgrade to {rev}")
        _seed(database, rev, seeded)
        with database.engine.connect() as conn:
            _check(conn, seeded, f"seeded at {rev}")
    # Back down: each revision's undo keeps the rows of the tables it leaves.
    created_at = {name: rev for rev, rows in SEEDS.items() for name, _ in rows}
    for rev in reversed(revs[:-1]):
        seeded = [r for r in seeded if created_at[r[0]] <= rev]
        _step(database, downgrade, rev, seeded, f"downgrade to {rev}")
