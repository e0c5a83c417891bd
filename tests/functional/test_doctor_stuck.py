"""`gureum doctor` on work that stopped moving, on volume rows of moving and deleted
servers, and killed with -9 in the middle of --fix (S5). Damage is made with SQL on a
running cloud (fake driver), as a crash or a hand-written UPDATE leaves it."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gureum.cli.main import main
from tests.compute_helpers import MV, boot, wait_status
from tests.functional.network_helpers import create, listing
from tests.functional.volume_helpers import create_volume, wait_for
from tests.harness import Api, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("doctor-stuck")), hosts=1).start()
    yield c
    c.stop()


def doctor(cloud: InProcessCloud, capsys: pytest.CaptureFixture[str], *flags: str
           ) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor", "--data-dir", str(cloud.settings.data_dir),
                 "--database-url", cloud.settings.database_url, *flags])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def sql(cloud: InProcessCloud, statement: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(cloud.settings.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)


def volume_row(cloud: InProcessCloud, volume_id: str) -> tuple[str, str]:
    (status, attach_status), = sql(
        cloud, "SELECT status, attach_status FROM volumes WHERE id = :v", v=volume_id)
    return status, attach_status


def test_stuck_work_is_reported_with_its_age_and_only_the_safe_ones_repaired(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    sid = boot(api, admin_token, "stuck-vm")["id"]
    wait_status(api, admin_token, sid, {"ACTIVE"})
    idle = boot(api, admin_token, "stuck-task")["id"]
    wait_status(api, admin_token, idle, {"ACTIVE"})
    vols = {n: create_volume(api, admin_token, name=f"stuck-{n}")["id"]
            for n in ("attaching", "detaching", "extending", "reserved", "fresh",
                      "backing", "multi")}
    for v in vols.values():
        wait_for(api, admin_token, "volume", v, "available")
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                    admin_token, json={"volumeAttachment": {"volumeId": vols["detaching"]}},
                    headers=MV)
    assert r.status_code == 200, r.text
    wait_for(api, admin_token, "volume", vols["detaching"], "in-use")

    code, out = doctor(cloud, capsys)
    assert code == 0 and "no problems found" in out, out
    assert "is never touched" in out

    old = ago(3 * 3600)
    # Left by a kill -9 between the steps of an attach and of a detach: no attachment
    # being made, the server's mapping settled, nothing in the outbox.
    sql(cloud, "UPDATE volumes SET status = 'attaching', attach_status = 'attaching', "
        "updated_at = :t WHERE id = :v", t=old, v=vols["attaching"])
    sql(cloud, "UPDATE volumes SET status = 'detaching', attach_status = 'detaching', "
        "updated_at = :t WHERE id = :v", t=old, v=vols["detaching"])
    # The same on a multiattach volume: a reset could race a new attachment (they come
    # without a status change), so it is left to the operator.
    sql(cloud, "UPDATE volumes SET status = 'attaching', attach_status = 'attaching', "
        "multiattach = :m, updated_at = :t WHERE id = :v", m=True, t=old, v=vols["multi"])
    # Storage work nobody holds: reported, never reset (the work may still be wanted).
    sql(cloud, "UPDATE volumes SET status = 'extending', updated_at = :t WHERE id = :v",
        t=old, v=vols["extending"])
    # A backup nobody makes: its row is reported, its volume's backing-up goes with it.
    backup = str(uuid.uuid4())
    sql(cloud, "UPDATE volumes SET status = 'backing-up', updated_at = :t WHERE id = :v",
        t=old, v=vols["backing"])
    sql(cloud, "INSERT INTO volume_backups (id, volume_id, project_id, user_id, size, "
        "status, is_incremental, metadata, task, created_at, updated_at) VALUES (:b, :v, "
        "'p', 'u', 1, 'creating', :f, '{}', '{}', :t, :t)", b=backup, v=vols["backing"],
        f=False, t=old)
    # An attach under way (its attachment is reserved) and a fresh attaching: left alone.
    sql(cloud, "UPDATE volumes SET status = 'attaching', attach_status = 'attaching', "
        "updated_at = :t WHERE id = :v", t=old, v=vols["reserved"])
    sql(cloud, "INSERT INTO volume_attachments (id, volume_id, instance_id, attach_status, "
        "attach_mode, connector, connection_info, created_at) VALUES (:a, :v, :i, "
        "'reserved', 'rw', '{}', '{}', :t)", a=str(uuid.uuid4()), v=vols["reserved"],
        i=idle, t=old)
    sql(cloud, "UPDATE volumes SET status = 'attaching', attach_status = 'attaching', "
        "updated_at = :t WHERE id = :v", t=ago(5), v=vols["fresh"])
    # Leases: one ran out on work that is over (a drain that no longer exists), one a
    # live conductor holds.
    sql(cloud, "INSERT INTO work_claims (kind, ident, owner, expires_at) VALUES "
        "('host-operation', '990001', 'conductor-dead', :t), "
        "('host-operation', '990002', 'conductor-live', :f)", t=ago(3600), f=ago(-3600))
    # A server task no workflow or outbox row accounts for.
    sql(cloud, "UPDATE compute_instances SET task_state = 'rebooting', updated_at = :t "
        "WHERE id = :i", t=old, i=idle)
    # A NIC attach retried for hours, held by a conductor right now.
    port = str(uuid.uuid4())
    sql(cloud, "INSERT INTO compute_interface_operations (instance_id, port_id, kind, "
        "request_id, created_at, lease_until, held_by) VALUES (:i, :p, 'attach', 'req-x', "
        ":t, :u, 'conductor@ctl9/0a1b')", i=sid, p=port, t=old, u=ago(-3600))
    # A drain paused long ago.
    sql(cloud, "INSERT INTO compute_host_operations (uuid, host, kind, status, policy, "
        "per_server, user_id, project_id, request_id, created_at, updated_at) VALUES "
        "(:u, 'c01', 'drain', 'paused', 'live', '{}', '', '', '', :t, :t)",
        u=str(uuid.uuid4()), t=old)

    code, out = doctor(cloud, capsys)
    assert code == 1, out
    lines = out.strip().splitlines()
    expect = {
        ("volume-stuck", f"volume {vols['attaching']}", "--fix will: set it back to available"),
        ("volume-stuck", f"volume {vols['detaching']}", "--fix will: set it back to in-use"),
        ("volume-stuck", f"volume {vols['extending']}", "openstack volume set --state error"),
        ("lease-stale", "lease host-operation/990001", "--fix will: release it"),
        ("server-task-stuck", f"server {idle}", f"openstack server set --state active {idle}"),
        ("interface-operation-stuck", f"server {sid}", "on host c01 has been retried"),
        ("host-operation-paused", "host c01", "`gureum host drain c01` to continue"),
        ("backup-stuck", f"backup {backup}", "openstack volume backup set --state error"),
        ("volume-stuck", f"volume {vols['multi']}", "to do: not repaired (multiattach)"),
    }
    for kind, subject, says in expect:
        assert any(line.startswith(f"{kind}: {subject} ") and says in line
                   for line in lines), (kind, subject, out)
    assert len(lines) == len(expect) + 1, out
    assert "held by conductor@ctl9/0a1b until" in next(
        line for line in lines if line.startswith("interface-operation-stuck"))
    assert "(for 3 h 0 min)" in next(line for line in lines if vols["extending"] in line)
    assert vols["reserved"] not in out and vols["fresh"] not in out and "990002" not in out
    assert f"volume-stuck: volume {vols['backing']}" not in out
    assert "9 problem(s), 3 of them repairable" in lines[-1]

    report = json.loads(doctor(cloud, capsys, "--json")[1])
    ages = {f["subject"]: f["age_seconds"] for f in report["findings"]}
    assert 3 * 3600 - 5 <= ages[f"volume {vols['attaching']}"] <= 3 * 3600 + 60, ages

    code, out = doctor(cloud, capsys, "--fix")
    assert code == 1, out
    assert out.count("; repaired: ") == 3, out
    assert "6 problem(s) (" in out.splitlines()[-1]
    assert volume_row(cloud, vols["multi"]) == ("attaching", "attaching")
    assert volume_row(cloud, vols["attaching"]) == ("available", "detached")
    assert volume_row(cloud, vols["detaching"]) == ("in-use", "attached")
    assert volume_row(cloud, vols["extending"])[0] == "extending"
    assert volume_row(cloud, vols["reserved"])[0] == "attaching"
    assert [r[0] for r in sql(cloud, "SELECT ident FROM work_claims WHERE kind = "
                              "'host-operation' ORDER BY ident")] == ["990002"]
    assert sql(cloud, "SELECT task_state FROM compute_instances WHERE id = :i",
               i=idle) == [("rebooting",)]
    # The repaired volumes work through the API again.
    assert wait_for(api, admin_token, "volume", vols["attaching"], "available")
    r = api.request("DELETE", f"/compute/v2.1/servers/{sid}/os-volume_attachments/"
                    f"{vols['detaching']}", admin_token, headers=MV)
    assert r.status_code == 202, r.text
    wait_for(api, admin_token, "volume", vols["detaching"], "available")

    # What the operator does for the rest; then the cloud is clean.
    sql(cloud, "UPDATE compute_instances SET task_state = NULL WHERE id = :i", i=idle)
    sql(cloud, "DELETE FROM compute_interface_operations WHERE port_id = :p", p=port)
    sql(cloud, "UPDATE compute_host_operations SET status = 'restored' WHERE host = 'c01'")
    sql(cloud, "DELETE FROM work_claims WHERE kind = 'host-operation'")
    sql(cloud, "DELETE FROM volume_attachments WHERE volume_id = :v", v=vols["reserved"])
    sql(cloud, "DELETE FROM volume_backups WHERE id = :b", b=backup)
    for name in ("extending", "reserved", "fresh", "backing", "multi"):
        sql(cloud, "UPDATE volumes SET status = 'available', attach_status = 'detached' "
            "WHERE id = :v", v=vols[name])
    code, out = doctor(cloud, capsys)
    assert code == 0, out


def test_volume_rows_of_moving_servers_are_left_alone_and_of_deleted_ones_repaired(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    moving = boot(api, admin_token, "vol-moving")["id"]
    gone = boot(api, admin_token, "vol-gone")["id"]
    for sid in (moving, gone):
        wait_status(api, admin_token, sid, {"ACTIVE"})
    mapping = ("INSERT INTO compute_block_device_mappings (uuid, instance_id, volume_id, "
               "source_type, destination_type, device_name, delete_on_termination, status, "
               "created_at, updated_at) VALUES (:u, :i, :v, 'volume', 'volume', '/dev/vdz', "
               ":f, 'attached', :t, :t)")
    for sid in (moving, gone):
        sql(cloud, mapping, u=str(uuid.uuid4()), i=sid, v=str(uuid.uuid4()), f=False,
            t=ago(60))
    # A cold migration in progress (its workflow owns the server's rows).
    sql(cloud, "INSERT INTO compute_migrations (uuid, instance_id, migration_type, status, "
        "source_compute, step, state, created_at, updated_at) VALUES (:u, :i, 'migration', "
        "'migrating', 'c01', '', '{}', :t, :t)", u=str(uuid.uuid4()), i=moving, t=ago(60))
    sql(cloud, "UPDATE compute_instances SET deleted = :d WHERE id = :i", d=True, i=gone)

    code, out = doctor(cloud, capsys)
    assert code == 1, out
    assert moving not in out.replace("left alone", ""), out
    assert "1 server(s) with a task or move in progress were left alone" in out
    assert f"mapping-volume-gone: server {gone} " in out and "the server is deleted" in out
    assert "--fix will: remove the mapping" in out

    code, out = doctor(cloud, capsys, "--fix")
    assert code == 0, out
    assert sql(cloud, "SELECT count(*) FROM compute_block_device_mappings WHERE "
               "instance_id = :i", i=gone) == [(0,)]
    assert sql(cloud, "SELECT count(*) FROM compute_block_device_mappings WHERE "
               "instance_id = :i", i=moving) == [(1,)]
    # The move ends (here: fails); the mapping is then reported, not repaired.
    sql(cloud, "UPDATE compute_migrations SET status = 'error' WHERE instance_id = :i",
        i=moving)
    code, out = doctor(cloud, capsys, "--fix")
    assert code == 1 and f"mapping-volume-gone: server {moving} " in out, out
    sql(cloud, "DELETE FROM compute_block_device_mappings WHERE instance_id = :i", i=moving)
    assert doctor(cloud, capsys)[0] == 0


def port_state(cloud: InProcessCloud, ids: list[str]) -> dict[str, tuple[str, str, str]]:
    rows = sql(cloud, "SELECT p.id, p.device_id, p.device_owner, coalesce(max(b.host), '') "
               "FROM network_ports p LEFT JOIN network_port_bindings b ON b.port_id = p.id "
               "GROUP BY p.id, p.device_id, p.device_owner")
    wanted = set(ids)
    return {r[0]: (r[1], r[2], r[3]) for r in rows if r[0] in wanted}


def test_doctor_fix_killed_mid_way_leaves_nothing_half_repaired_and_a_second_run_finishes(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    net = next(n for n in listing(api, admin_token, "network") if n["name"] == "private")
    ids = [create(api, admin_token, "port", network_id=net["id"], name=f"kill-{i}",
                  fixed_ips=[])["id"]
           for i in range(100)]
    # Each names a server that does not exist, bound to c01: --fix detaches each one
    # (device, owner and binding together) in its own transaction.
    for pid in ids:
        sql(cloud, "UPDATE network_ports SET device_id = :d, device_owner = 'compute:nova' "
            "WHERE id = :p", d=str(uuid.uuid4()), p=pid)
    sql(cloud, "UPDATE network_port_bindings SET host = 'c01' WHERE port_id IN ("
        + ", ".join(f"'{p}'" for p in ids) + ")")
    damaged = port_state(cloud, ids)
    assert all(owner == "compute:nova" and host == "c01"
               for _, owner, host in damaged.values()), damaged

    path = sa.engine.make_url(cloud.settings.database_url).database
    assert path
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gureum.cli.main import main; "
         "sys.exit(main(sys.argv[1:]))", "doctor", "--fix", "--data-dir",
         str(cloud.settings.data_dir), "--database-url", cloud.settings.database_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Watch (WAL: reading blocks no writer) and kill it the moment the first repairs
    # are in; the rest are still to do.
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    query = ("SELECT count(*) FROM network_ports WHERE device_id = '' AND id IN ("
             + ", ".join(f"'{p}'" for p in ids) + ")")
    repaired = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if conn.execute(query).fetchone()[0]:
                break
        proc.kill()
        proc.wait()
        repaired = conn.execute(query).fetchone()[0]
    finally:
        conn.close()
    assert proc.returncode == -9, proc.returncode
    assert 1 <= repaired < len(ids), repaired

    # Each port is either repaired in full or untouched.
    after = port_state(cloud, ids)
    done = {p for p, row in after.items() if row == ("", "", "")}
    untouched = {p for p, row in after.items() if row == damaged[p]}
    assert done | untouched == set(ids), {p: r for p, r in after.items()
                                          if p not in done | untouched}
    assert len(done) == repaired

    code, out = doctor(cloud, capsys, "--fix")
    assert code == 0, out
    assert out.count("port-orphaned: ") == len(ids) - repaired, out
    assert set(port_state(cloud, ids).values()) == {("", "", "")}
    code, out = doctor(cloud, capsys)
    assert code == 0 and "no problems found" in out, out
