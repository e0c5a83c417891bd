"""Keystone's manager role in Nova's policies: a project manager migrates its servers
(cold and live, without naming a host); a member may not; naming a host is the admin's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compute_helpers import MV, boot, show, wait_status
from tests.functional.compute_api_helpers import module_cloud, project_id
from tests.harness import Api, InProcessCloud

V3 = "/identity/v3"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=2)


def _manager_token(api: Api, admin: str) -> str:
    r = api.request("POST", f"{V3}/users", admin,
                    json={"user": {"name": "proj-manager", "password": "pm-pw"}})
    user = r.json()["user"]["id"]
    manager = api.request("GET", f"{V3}/roles?name=manager", admin).json()["roles"][0]["id"]
    demo = project_id(api, admin, "demo")
    assert api.request("PUT", f"{V3}/projects/{demo}/users/{user}/roles/{manager}",
                       admin).status_code == 204
    return api.token("proj-manager", "pm-pw", "demo")


def _action(api: Api, token: str, server_id: str, body: dict[str, object]) -> int:
    r = api.request("POST", f"/compute/v2.1/servers/{server_id}/action", token, json=body,
                    headers=MV)
    return r.status_code


def test_project_manager_migrates_servers_member_may_not(api: Api, admin_token: str,
                                                         demo_token: str) -> None:
    manager = _manager_token(api, admin_token)
    server = boot(api, demo_token, "managed-vm")
    first = wait_status(api, demo_token, server["id"], {"ACTIVE"})
    other = "c02" if show(api, admin_token, server["id"])["OS-EXT-SRV-ATTR:host"] == "c01" \
        else "c01"
    live = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
    # A member (demo) may do neither.
    assert _action(api, demo_token, server["id"], {"migrate": None}) == 403
    assert _action(api, demo_token, server["id"], live) == 403
    # A manager may not pick the host...
    assert _action(api, manager, server["id"], {"migrate": {"host": other}}) == 403
    assert _action(api, manager, server["id"], {
        "os-migrateLive": {"host": other, "block_migration": "auto"}}) == 403
    # ...but live-migrates and cold-migrates where the scheduler says.
    assert _action(api, manager, server["id"], live) == 202
    wait_status(api, manager, server["id"], {"ACTIVE"})
    moved = show(api, admin_token, server["id"])["OS-EXT-SRV-ATTR:host"]
    assert moved == other
    assert _action(api, manager, server["id"], {"migrate": None}) == 202
    resized = wait_status(api, manager, server["id"], {"VERIFY_RESIZE"})
    assert resized["id"] == first["id"]
    assert _action(api, manager, server["id"], {"confirmResize": None}) == 204
