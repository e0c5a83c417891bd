"""The same cloud on PostgreSQL and MariaDB: migrations, bootstrap, tokens, CRUD.

Skipped (with the reason) when the database server is not running; `scripts/test`
starts the local services first.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gureum.cli.main import main
from tests.harness import Api, InProcessCloud, make_settings

SERVERS = {
    "postgresql": ("postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
                   "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", 5432),
    "mariadb": ("mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4",
                "mysql+pymysql://root@127.0.0.1:3306/mysql", 3306),
}


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=sorted(SERVERS), scope="module")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url, admin_url, port = SERVERS[request.param]
    if not reachable(port):
        pytest.skip(f"{request.param} is not running on 127.0.0.1:{port}")
    name = f"gureum_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield url.format(db=name)
    with admin.connect() as conn:
        if request.param == "postgresql":
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        else:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
    admin.dispose()


def test_cloud_runs_on_database(database_url: str,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = make_settings(tmp_path_factory.mktemp("db"), database={"url": database_url})
    cloud = InProcessCloud(settings, hosts=2).start()
    api = Api(cloud.url)
    try:
        admin = api.token("admin", cloud.admin_password, "admin")
        r = api.request("POST", "/identity/v3/projects", admin,
                        json={"project": {"name": "on-real-db", "tags": ["a"]}})
        assert r.status_code == 201, r.text
        assert api.request("POST", "/identity/v3/projects", admin, json={
            "project": {"name": "on-real-db"}}).status_code == 409
        r = api.request("POST", "/identity/v3/users", admin,
                        json={"user": {"name": "dbuser", "password": "pw"}})
        assert r.status_code == 201
        user_id = r.json()["user"]["id"]
        # Password change revokes with microsecond precision (MariaDB DATETIME(6)).
        r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {"id": user_id, "password": "pw"}}}}})
        token = r.headers["x-subject-token"]
        assert api.request("POST", f"/identity/v3/users/{user_id}/password", token, json={
            "user": {"original_password": "pw", "password": "pw2"}}).status_code == 204
        assert api.request("GET", f"/identity/v3/users/{user_id}", token).status_code == 401
        rows = api.request("GET", "/identity/v3/role_assignments?include_names=1",
                           admin).json()["role_assignments"]
        assert any(r["user"]["name"] == "admin" for r in rows)
        # PostgreSQL stores no NUL in text: one in a path, query or body is a 400 before
        # any query is made (it was a 500 there), on every database alike.
        for method, path, body in [
                ("GET", "/identity/v3/users/%00", None),
                ("GET", "/compute/v2.1/os-services?host=%00", None),
                ("POST", "/compute/v2.1/gureum-host-operations",
                 {"operation": {"host": "c01", "kind": "drain", "reason": "a\x00"}})]:
            r = api.request(method, path, admin, json=body)
            assert r.status_code == 400 and "NUL" in r.text, (path, r.text)
        # Compute on the same database: quota sums over JSON, claims, the boot workflow.
        from tests.compute_helpers import boot, wait_status

        server = boot(api, admin, "on-real-db")
        assert wait_status(api, admin, server["id"], {"ACTIVE"})["status"] == "ACTIVE"
        # A resize swaps claims through a stand-in consumer id that must fit the column.
        r = api.request("POST", f"/compute/v2.1/servers/{server['id']}/action", admin,
                        json={"resize": {"flavorRef": "2"}})
        assert r.status_code == 202, r.text
        assert wait_status(api, admin, server["id"], {"VERIFY_RESIZE", "ERROR"})[
            "status"] == "VERIFY_RESIZE"
        r = api.request("POST", f"/compute/v2.1/servers/{server['id']}/action", admin,
                        json={"confirmResize": None})
        assert r.status_code == 204, r.text
        assert wait_status(api, admin, server["id"], {"ACTIVE"})["flavor"]["original_name"] \
            == "m1.small"
        # gureum doctor on this database: a binding an upgrade emptied is found and
        # computed again for the server's host (its fix locks the server's row).
        net = api.request("GET", "/network/v2.0/networks?name=private", admin).json()[
            "networks"][0]["id"]
        wired = boot(api, admin, "wired", networks=[{"uuid": net}])
        host = wait_status(api, admin, wired["id"], {"ACTIVE"})["OS-EXT-SRV-ATTR:host"]
        (port,) = api.request("GET", f"/network/v2.0/ports?device_id={wired['id']}",
                              admin).json()["ports"]
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE network_port_bindings SET vif_details = '{}' "
                                 "WHERE port_id = :p"), {"p": port["id"]})
        engine.dispose()
        doctor = ["doctor", "--data-dir", str(settings.data_dir), "--database-url",
                  database_url]
        assert main(doctor) == 1
        assert main([*doctor, "--fix"]) == 0
        shown = api.request("GET", f"/network/v2.0/ports/{port['id']}", admin).json()["port"]
        assert shown["binding:host_id"] == host
        assert shown["binding:vif_details"] == port["binding:vif_details"]
        assert main(doctor) == 0
    finally:
        api.close()
        cloud.stop()
