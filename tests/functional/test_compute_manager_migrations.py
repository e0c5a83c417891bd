"""Nova's project-manager rules for migrations: a project manager lists its servers'
live migrations and its project's moves, forces one to complete and aborts one
(PROJECT_MANAGER_OR_ADMIN), never sees the hosts (the host fields are null, as
Nova's index:host rule leaves them), and may not show one or list other projects'
moves (the admin's). Live migrations take 30 s here unless forced or aborted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.compute_helpers import boot, show, wait_status
from tests.functional.compute_api_helpers import call, module_cloud, project_id
from tests.harness import Api, InProcessCloud

V3 = "/identity/v3"
HOST_FIELDS = ("source_compute", "source_node", "dest_compute", "dest_node", "dest_host")
SLOW = 30.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=2,
                            compute={"fake_delays": f"live_migrate:{SLOW}"})


@pytest.fixture(scope="module")
def manager(api: Api, admin_token: str) -> str:
    r = api.request("POST", f"{V3}/users", admin_token,
                    json={"user": {"name": "mig-manager", "password": "mm-pw"}})
    user = r.json()["user"]["id"]
    role = api.request("GET", f"{V3}/roles?name=manager",
                       admin_token).json()["roles"][0]["id"]
    demo = project_id(api, admin_token, "demo")
    assert api.request("PUT", f"{V3}/projects/{demo}/users/{user}/roles/{role}",
                       admin_token).status_code == 204
    return api.token("mig-manager", "mm-pw", "demo")


def _live_migrate(api: Api, token: str, server_id: str) -> dict[str, Any]:
    """Start a live migration; its row once it is running."""
    call(api, "POST", f"/servers/{server_id}/action", token, "2.30", 202,
         json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    deadline = time.monotonic() + 15
    while True:
        rows = call(api, "GET", f"/servers/{server_id}/migrations", token, "2.80",
                    200).json()["migrations"]
        running = [m for m in rows if m["status"] == "running"]
        if running:
            return dict(running[0])
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def test_manager_watches_and_forces_a_live_migration_without_seeing_hosts(
        api: Api, admin_token: str, demo_token: str, manager: str) -> None:
    server = boot(api, demo_token, "mig-forced")
    source = wait_status(api, demo_token, server["id"], {"ACTIVE"})
    source_host = show(api, admin_token, server["id"])["OS-EXT-SRV-ATTR:host"]
    assert source["id"] == server["id"]
    started = time.monotonic()
    mig = _live_migrate(api, manager, server["id"])
    path = f"/servers/{server['id']}/migrations"
    # The manager's list: the move and its progress, every host field null.
    assert all(mig[name] is None for name in HOST_FIELDS), mig
    deadline = time.monotonic() + 10
    while not mig["memory_processed_bytes"]:  # the source's agent reports as it goes
        assert time.monotonic() < deadline, mig
        time.sleep(0.2)
        (mig,) = call(api, "GET", path, manager, "2.80", 200).json()["migrations"]
    assert 0 < mig["memory_processed_bytes"] <= mig["memory_total_bytes"]
    assert mig["memory_remaining_bytes"] == (mig["memory_total_bytes"]
                                             - mig["memory_processed_bytes"])
    assert mig["server_uuid"] == server["id"] and mig["project_id"]
    # The admin's list: the hosts.
    (seen,) = call(api, "GET", path, admin_token, "2.80", 200).json()["migrations"]
    assert seen["source_compute"] == source_host and seen["dest_compute"] not in (
        None, source_host)
    # Showing one is the admin's; a member does none of it.
    call(api, "GET", f"{path}/{mig['id']}", manager, "2.80", 403)
    shown = call(api, "GET", f"{path}/{mig['id']}", admin_token, "2.80", 200).json()
    assert shown["migration"]["source_compute"] == source_host
    call(api, "GET", path, demo_token, "2.80", 403)
    call(api, "POST", f"{path}/{mig['id']}/action", demo_token, "2.22", 403,
         json={"force_complete": None})
    # os-migrations: the manager names its project; others' moves and all are the admin's.
    demo = project_id(api, admin_token, "demo")
    rows = call(api, "GET", f"/os-migrations?project_id={demo}", manager, "2.80",
                200).json()["migrations"]
    assert [m["id"] for m in rows] == [mig["id"]]
    assert all(rows[0][name] is None for name in HOST_FIELDS)
    call(api, "GET", "/os-migrations", manager, "2.80", 403)
    admin_project = project_id(api, admin_token, "admin")
    call(api, "GET", f"/os-migrations?project_id={admin_project}", manager, "2.80", 403)
    call(api, "GET", f"/os-migrations?project_id={demo}", demo_token, "2.80", 403)
    (listed,) = call(api, "GET", f"/os-migrations?project_id={demo}", admin_token, "2.80",
                     200).json()["migrations"]
    assert listed["source_compute"] == source_host
    # The manager forces it to complete: done long before the 30 s copy.
    call(api, "POST", f"{path}/{mig['id']}/action", manager, "2.22", 202,
         json={"force_complete": None})
    wait_status(api, demo_token, server["id"], {"ACTIVE"}, timeout=SLOW)
    assert time.monotonic() - started < SLOW
    assert show(api, admin_token, server["id"])["OS-EXT-SRV-ATTR:host"] != source_host


def test_manager_aborts_a_live_migration_member_may_not(
        api: Api, admin_token: str, demo_token: str, manager: str) -> None:
    server = boot(api, demo_token, "mig-aborted")
    wait_status(api, demo_token, server["id"], {"ACTIVE"})
    source_host = show(api, admin_token, server["id"])["OS-EXT-SRV-ATTR:host"]
    mig = _live_migrate(api, manager, server["id"])
    path = f"/servers/{server['id']}/migrations/{mig['id']}"
    call(api, "DELETE", path, demo_token, "2.24", 403)
    call(api, "DELETE", path, manager, "2.24", 202)
    wait_status(api, demo_token, server["id"], {"ACTIVE"}, timeout=SLOW)
    assert show(api, admin_token, server["id"])["OS-EXT-SRV-ATTR:host"] == source_host
    rows = call(api, "GET", f"/os-migrations?project_id={project_id(api, admin_token, 'demo')}"
                f"&instance_uuid={server['id']}", manager, "2.80", 200).json()["migrations"]
    assert [(m["id"], m["status"]) for m in rows] == [(mig["id"], "cancelled")]
