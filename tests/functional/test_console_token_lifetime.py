"""Console tokens end with their guest's console, as Nova's do
(``clean_console_auths_for_instance``): deleting a server removes its tokens, and a
move to another host removes those given out for the old one. Two fake hosts whose
drivers name a VNC console (nothing connects to it here: os-console-auth-tokens
shows what a token opens, 404 once it is gone)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import select

from gureum.compute.models import ComputeNode
from gureum.console.models import ConsoleAuthToken
from gureum.virt.driver import GuestNotFound, VncConsole
from gureum.virt.fake import FakeDriver
from tests.compute_helpers import boot, show, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, module_cloud
from tests.harness import Api, InProcessCloud

LATEST = {"OpenStack-API-Version": "compute 2.100"}
VNC = {"remote_console": {"protocol": "vnc", "type": "novnc"}}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    for c in module_cloud(tmp_path_factory, hosts=2):
        assert c.cloud is not None
        for agent in c.cloud.agents:
            driver = agent.driver
            assert isinstance(driver, FakeDriver)
            driver.capabilities = {**FakeDriver.capabilities, "supports_vnc_console": True}
            driver.get_vnc_console = _console_of(driver)  # type: ignore[method-assign]
        with c.cloud.db.session() as s:  # without waiting for the next report
            for node in s.scalars(select(ComputeNode)):
                node.capabilities = {**(node.capabilities or {}),
                                     "supports_vnc_console": True}
        yield c


def _console_of(driver: FakeDriver) -> Any:
    async def get_vnc_console(guest_id: str) -> VncConsole:
        if guest_id not in driver.guests:
            raise GuestNotFound(guest_id)
        return VncConsole("127.0.0.1", 5999)
    return get_vnc_console


def console_token(api: Api, token: str, server_id: str) -> str:
    r = api.request("POST", f"/compute/v2.1/servers/{server_id}/remote-consoles", token,
                    json=VNC, headers=LATEST)
    assert r.status_code == 200, r.text
    path = unquote(parse_qs(urlsplit(r.json()["remote_console"]["url"]).query)["path"][0])
    return path.rsplit("token=", 1)[1]


def shown(api: Api, admin: str, console: str) -> int:
    return api.request("GET", f"/compute/v2.1/os-console-auth-tokens/{console}", admin,
                       headers=LATEST).status_code


def rows_for(cloud: InProcessCloud, server_id: str) -> list[str]:
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        return list(s.scalars(select(ConsoleAuthToken.compute_host).where(
            ConsoleAuthToken.instance_uuid == server_id)))


def test_deleting_a_server_removes_its_console_tokens(
        api: Api, admin_token: str, cloud: InProcessCloud) -> None:
    gone = boot(api, admin_token, "console-gone")["id"]
    kept = boot(api, admin_token, "console-kept")["id"]
    for sid in (gone, kept):
        wait_status(api, admin_token, sid, {"ACTIVE"})
    first, second = (console_token(api, admin_token, gone) for _ in range(2))
    other = console_token(api, admin_token, kept)
    assert {shown(api, admin_token, t) for t in (first, second, other)} == {200}
    assert len(rows_for(cloud, gone)) == 2

    assert api.request("DELETE", f"/compute/v2.1/servers/{gone}",
                       admin_token).status_code == 204
    wait_gone(api, admin_token, gone)
    assert rows_for(cloud, gone) == []
    assert shown(api, admin_token, first) == shown(api, admin_token, second) == 404
    # Another server's token is untouched.
    assert shown(api, admin_token, other) == 200


def test_a_live_migration_removes_the_tokens_of_the_old_host(
        api: Api, admin_token: str, cloud: InProcessCloud) -> None:
    sid = boot(api, admin_token, "console-moves")["id"]
    wait_status(api, admin_token, sid, {"ACTIVE"})
    source = show(api, admin_token, sid)["OS-EXT-SRV-ATTR:host"]
    old = console_token(api, admin_token, sid)
    assert rows_for(cloud, sid) == [source]

    call(api, "POST", f"/servers/{sid}/action", admin_token, "2.30", 202,
         json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    deadline = time.monotonic() + 60
    while (dest := show(api, admin_token, sid))["OS-EXT-SRV-ATTR:host"] == source \
            or dest["status"] != "ACTIVE":
        assert time.monotonic() < deadline, dest
        time.sleep(0.1)
    assert shown(api, admin_token, old) == 404
    assert rows_for(cloud, sid) == []
    # A console asked for on the new host works as before.
    new = console_token(api, admin_token, sid)
    assert shown(api, admin_token, new) == 200
    assert rows_for(cloud, sid) == [dest["OS-EXT-SRV-ATTR:host"]]
