"""`gureum doctor`: damage made with plain SQL on a running cloud is found, repaired by
--fix (the API then shows the right binding), and a second run is clean (S5)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gureum.cli.main import main
from tests.compute_helpers import MV, boot, show, wait_status
from tests.functional.network_helpers import N, create, get, listing
from tests.functional.volume_helpers import create_volume, wait_for
from tests.harness import Api, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("doctor")), hosts=2).start()
    yield c
    c.stop()


@pytest.fixture(scope="module", autouse=True)
def agents_reported(api: Api, admin_token: str) -> None:
    """Each host's L2 agent has said whether it filters ports before the first boot: a
    report that comes later changes what a binding to the host should be, and doctor
    rightly reports the bindings made before it."""
    deadline = time.monotonic() + 30
    while True:
        agents = api.request("GET", f"{N}/agents", admin_token).json()["agents"]
        said = {a["host"] for a in agents if "port_filter" in a["configurations"]}
        if {"c01", "c02"} <= said:
            return
        assert time.monotonic() < deadline, agents
        time.sleep(0.2)


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


def port_of(api: Api, token: str, server_id: str) -> dict[str, Any]:
    ports = listing(api, token, "port", f"device_id={server_id}")
    assert len(ports) == 1, ports
    return ports[0]


def test_doctor_finds_and_repairs_disagreeing_rows(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    net = next(n for n in listing(api, admin_token, "network") if n["name"] == "private")
    names = ("vif", "host", "none", "stale", "several", "gone")
    made = {n: boot(api, admin_token, f"doc-{n}", networks=[{"uuid": net["id"]}])["id"]
            for n in names}
    servers = {n: wait_status(api, admin_token, sid, {"ACTIVE"}) for n, sid in made.items()}
    hosts = {n: s["OS-EXT-SRV-ATTR:host"] for n, s in servers.items()}
    other = {n: "c02" if h == "c01" else "c01" for n, h in hosts.items()}
    ports = {n: port_of(api, admin_token, sid)["id"] for n, sid in made.items()}
    # What each host's agents compute for a port bound there (port_filter as the
    # host's network agent enforces security groups).
    computed = {n: get(api, admin_token, "port", ports[n])["binding:vif_details"]
                for n in names}
    assert all("port_filter" in d for d in computed.values()), computed
    volume = create_volume(api, admin_token, size=1, name="doc-vol")["id"]
    wait_for(api, admin_token, "volume", volume, "available")
    r = api.request("POST", f"/compute/v2.1/servers/{made['gone']}/os-volume_attachments",
                    admin_token, json={"volumeAttachment": {"volumeId": volume}}, headers=MV)
    assert r.status_code == 200, r.text
    wait_for(api, admin_token, "volume", volume, "in-use")
    mine = create(api, admin_token, "port", network_id=net["id"], name="user-port")
    mine_ips = mine["fixed_ips"]

    # A healthy cloud is clean (no false alarm on fresh rows).
    code, out = doctor(cloud, capsys)
    assert code == 0, out
    assert "no problems found" in out

    # The damage, as an upgrade, a crash or a hand-written UPDATE leaves it.
    sql(cloud, "UPDATE network_port_bindings SET vif_details = '{}' WHERE port_id = :p",
        p=ports["vif"])
    sql(cloud, "UPDATE network_port_bindings SET host = :h WHERE port_id = :p",
        h=other["host"], p=ports["host"])
    sql(cloud, "DELETE FROM network_port_bindings WHERE port_id = :p", p=ports["none"])
    for name, status in (("stale", "INACTIVE"), ("several", "ACTIVE")):
        sql(cloud, "INSERT INTO network_port_bindings (port_id, host, status, vif_type, "
            "vnic_type, profile, vif_details) VALUES (:p, :h, :s, 'ovs', 'normal', '{}', "
            "'{}')", p=ports[name], h=other[name], s=status)
    sql(cloud, "UPDATE compute_instances SET deleted = :t WHERE id = :i", t=True,
        i=made["gone"])
    sql(cloud, "UPDATE network_ports SET device_id = :d, device_owner = 'compute:nova' "
        "WHERE id = :p", d=str(uuid.uuid4()), p=mine["id"])

    code, out = doctor(cloud, capsys)
    assert code == 1, out
    lines = out.strip().splitlines()
    expect = {("binding-vif", ports["vif"]), ("binding-host", ports["host"]),
              ("binding-missing", ports["none"]), ("binding-stale-inactive", ports["stale"]),
              ("binding-several", ports["several"]), ("port-orphaned", ports["gone"]),
              ("port-orphaned", mine["id"]), ("attachment-orphaned", volume)}
    for kind, subject in expect:
        assert any(line.startswith(f"{kind}: ") and subject in line for line in lines), (
            kind, out)
    assert len(lines) == len(expect) + 1, out
    vif_line = next(line for line in lines if line.startswith("binding-vif"))
    assert "lacks" in vif_line and "port_filter" in vif_line and hosts["vif"] in vif_line
    assert "8 problem(s), 8 of them repairable: run `gureum doctor --fix`" in lines[-1]

    code, out = doctor(cloud, capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["clean"] is False
    assert {(f["kind"], f["subject"].split()[1]) for f in report["findings"]} == expect
    assert all(f["fixable"] for f in report["findings"])

    code, out = doctor(cloud, capsys, "--fix")
    assert code == 0, out
    assert out.count("; repaired: ") == len(expect), out
    assert "repaired 8 finding(s); no problems found" in out

    # The rows, through the API as `openstack port show` reads them.
    for name in ("vif", "host", "none", "stale", "several"):
        shown = get(api, admin_token, "port", ports[name])
        assert shown["binding:host_id"] == hosts[name], (name, shown)
        assert shown["binding:vif_details"] == computed[name], (name, shown)
        assert shown["binding:vif_type"] == "ovs" and shown["status"] == "ACTIVE"
        r = api.request("GET", f"{N}/ports/{ports[name]}/bindings", admin_token)
        assert [(b["host"], b["status"]) for b in r.json()["bindings"]] == [
            (hosts[name], "ACTIVE")], name
        # What the host plugs from at the next start says the same.
        info = sql(cloud, "SELECT network_info FROM compute_instances WHERE id = :i",
                   i=made[name])[0][0]
        vif = json.loads(info)[0] if isinstance(info, str) else info[0]
        assert vif["binding_host_id"] == hosts[name]
        assert vif["vif_details"] == computed[name]
    # Ports of servers that are gone: detached, the user's port and its addresses kept.
    for pid in (ports["gone"], mine["id"]):
        shown = get(api, admin_token, "port", pid)
        assert (shown["device_id"], shown["device_owner"], shown["binding:host_id"]) == (
            "", "", ""), shown
    assert get(api, admin_token, "port", mine["id"])["fixed_ips"] == mine_ips
    assert wait_for(api, admin_token, "volume", volume, "available")["attachments"] == []

    code, out = doctor(cloud, capsys)
    assert code == 0 and "no problems found" in out, out


def test_busy_servers_are_left_alone_and_unfixable_findings_keep_exit_1(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    net = next(n for n in listing(api, admin_token, "network") if n["name"] == "private")
    sid = boot(api, admin_token, "doc-busy", networks=[{"uuid": net["id"]}])["id"]
    host = wait_status(api, admin_token, sid, {"ACTIVE"})["OS-EXT-SRV-ATTR:host"]
    pid = port_of(api, admin_token, sid)["id"]
    computed = get(api, admin_token, "port", pid)["binding:vif_details"]
    sql(cloud, "UPDATE network_port_bindings SET vif_details = '{}' WHERE port_id = :p", p=pid)
    # A task in progress: the rows may be in between; the workflow owns them.
    sql(cloud, "UPDATE compute_instances SET task_state = 'migrating' WHERE id = :i", i=sid)
    code, out = doctor(cloud, capsys, "--fix")
    assert code == 0, out
    assert "1 server(s) with a task or move in progress were left alone" in out
    assert get(api, admin_token, "port", pid)["binding:vif_details"] == {}
    sql(cloud, "UPDATE compute_instances SET task_state = NULL WHERE id = :i", i=sid)
    # A mapping whose volume is gone is reported, not repaired: exit 1 after --fix too.
    sql(cloud, "INSERT INTO compute_block_device_mappings (uuid, instance_id, volume_id, "
        "source_type, destination_type, device_name, delete_on_termination, status, "
        "created_at, updated_at) VALUES (:u, :i, :v, 'volume', 'volume', '/dev/vdz', :f, "
        "'attached', :t, :t)", u=str(uuid.uuid4()), i=sid, v=str(uuid.uuid4()), f=False,
        t="2026-12-01 00:00:00")
    code, out = doctor(cloud, capsys, "--fix")
    assert code == 1, out
    assert f"binding-vif: port {pid}" in out and "mapping-volume-gone: server" in out
    assert "1 problem(s) (" in out.splitlines()[-1]
    assert get(api, admin_token, "port", pid)["binding:vif_details"] == computed
    assert show(api, admin_token, sid)["OS-EXT-SRV-ATTR:host"] == host
    sql(cloud, "DELETE FROM compute_block_device_mappings WHERE instance_id = :i", i=sid)


def network_info(cloud: InProcessCloud, server_id: str) -> list[dict[str, Any]]:
    (info,) = sql(cloud, "SELECT network_info FROM compute_instances WHERE id = :i",
                  i=server_id)[0]
    return list(json.loads(info) if isinstance(info, str) else info)


def test_a_stale_network_info_is_rebuilt_from_the_ports(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    net = next(n for n in listing(api, admin_token, "network") if n["name"] == "private")
    sid = boot(api, admin_token, "doc-cache", networks=[{"uuid": net["id"]}])["id"]
    wait_status(api, admin_token, sid, {"ACTIVE"})
    info = network_info(cloud, sid)
    stale = [dict(vif, vif_details={}) for vif in info]
    sql(cloud, "UPDATE compute_instances SET network_info = :n WHERE id = :i",
        n=json.dumps(stale), i=sid)
    code, out = doctor(cloud, capsys)
    assert code == 1 and f"network-info-stale: server {sid}" in out, out
    code, out = doctor(cloud, capsys, "--fix")
    assert code == 0, out
    assert network_info(cloud, sid) == info


def test_a_database_without_the_schema_says_what_to_do(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "gureum.db"
    code = main(["doctor", "--data-dir", str(tmp_path), "--database-url",
                 f"sqlite:///{missing}"])
    err = capsys.readouterr().err
    assert code == 2 and f"there is no database at {missing}" in err and "--data-dir" in err
    assert not missing.parent.exists()  # looking did not make one
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").dispose()
    empty.touch()
    code = main(["doctor", "--data-dir", str(tmp_path), "--database-url",
                 f"sqlite:///{empty}"])
    err = capsys.readouterr().err
    assert code == 2 and "has no gureum schema" in err and "--database-url" in err


def test_an_attachment_without_its_mapping_is_reported_not_repaired(
        cloud: InProcessCloud, api: Api, admin_token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last: what it leaves is for the operator."""
    sid = boot(api, admin_token, "doc-disk")["id"]
    wait_status(api, admin_token, sid, {"ACTIVE"})
    volume = create_volume(api, admin_token, size=1, name="doc-disk")["id"]
    wait_for(api, admin_token, "volume", volume, "available")
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                    admin_token, json={"volumeAttachment": {"volumeId": volume}}, headers=MV)
    assert r.status_code == 200, r.text
    wait_for(api, admin_token, "volume", volume, "in-use")
    code, out = doctor(cloud, capsys)
    assert code == 0, out
    sql(cloud, "DELETE FROM compute_block_device_mappings WHERE instance_id = :i", i=sid)
    code, out = doctor(cloud, capsys, "--fix")
    assert code == 1, out
    assert f"attachment-unmapped: volume {volume} attachment" in out
    assert f"to server {sid}, which has no block device mapping" in out
    assert "volume attachment delete" in out
    assert wait_for(api, admin_token, "volume", volume, "in-use")
