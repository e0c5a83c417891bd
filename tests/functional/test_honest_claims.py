"""An action the host's driver cannot do is refused as Nova refuses it (issue 7).

Before, changePassword and trigger_crash_dump answered 202 and recorded
"Success" while nothing happened. Now the API reads the capabilities the host's
agent reported: changePassword is Nova's 501 "Unable to set password on
instance", trigger_crash_dump Nova's 400 "Triggering crash dump is not
supported", and any other action whose capability the host lacks a 501, all
before anything changes. On a host whose driver does declare them, they reach
the driver (changePassword waits for it, as Nova's call does; a failure is 409).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gureum.compute.models import ComputeNode, Instance, InstanceAction
from gureum.virt.driver import DriverError
from gureum.virt.fake import FakeDriver
from tests.compute_helpers import boot, wait_status
from tests.harness import Api, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def hcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("honest")), hosts=1).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def happi(hcloud: InProcessCloud) -> Iterator[Api]:
    api = Api(hcloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def hadmin(happi: Api, hcloud: InProcessCloud) -> str:
    return happi.token("admin", hcloud.admin_password, "admin")


@pytest.fixture(scope="module")
def server(happi: Api, hadmin: str) -> str:
    sid = str(boot(happi, hadmin, "honest")["id"])
    wait_status(happi, hadmin, sid, {"ACTIVE"})
    return sid


def act(api: Api, token: str, sid: str, body: dict[str, Any], version: str = "2.100"
        ) -> Any:
    return api.request("POST", f"/compute/v2.1/servers/{sid}/action", token, json=body,
                       headers={"OpenStack-API-Version": f"compute {version}"})


def set_caps(cloud: InProcessCloud, **caps: bool) -> dict[str, bool]:
    """Make c01's reported capabilities say something else; returns the old ones."""
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        node = s.scalar(select(ComputeNode).where(ComputeNode.host == "c01"))
        assert node is not None and node.capabilities is not None
        old = dict(node.capabilities)
        node.capabilities = {**old, **caps}
    return old


def restore_caps(cloud: InProcessCloud, old: dict[str, bool]) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        node = s.scalar(select(ComputeNode).where(ComputeNode.host == "c01"))
        assert node is not None
        node.capabilities = old


def driver(cloud: InProcessCloud) -> FakeDriver:
    assert cloud.cloud is not None
    d = cloud.cloud.agents[0].driver
    assert isinstance(d, FakeDriver)
    return d


def actions_named(cloud: InProcessCloud, sid: str, name: str) -> list[InstanceAction]:
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        return list(s.scalars(select(InstanceAction).where(
            InstanceAction.instance_id == sid, InstanceAction.action == name)))


def test_change_password_is_501_when_the_driver_cannot(hcloud: InProcessCloud, happi: Api,
                                                        hadmin: str, server: str) -> None:
    r = act(happi, hadmin, server, {"changePassword": {"adminPass": "n3w"}})
    assert r.status_code == 501, r.text
    assert r.json() == {"notImplemented": {"code": 501,
                                           "message": "Unable to set password on instance"}}
    after = wait_status(happi, hadmin, server, {"ACTIVE"})
    assert after["OS-EXT-STS:task_state"] is None
    assert actions_named(hcloud, server, "changePassword") == []  # nothing recorded


def test_trigger_crash_dump_is_400_when_the_driver_cannot(hcloud: InProcessCloud,
                                                          happi: Api, hadmin: str,
                                                          server: str) -> None:
    r = act(happi, hadmin, server, {"trigger_crash_dump": None}, "2.17")
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["message"] == "Triggering crash dump is not supported"
    assert actions_named(hcloud, server, "trigger_crash_dump") == []


def test_an_action_the_host_lacks_is_501_and_changes_nothing(hcloud: InProcessCloud,
                                                             happi: Api, hadmin: str,
                                                             server: str) -> None:
    old = set_caps(hcloud, supports_pause=False, supports_rescue=False,
                   supports_console_output=False)
    try:
        r = act(happi, hadmin, server, {"pause": None})
        assert r.status_code == 501, r.text
        r = act(happi, hadmin, server, {"rescue": None})
        assert r.status_code == 501, r.text
        assert "rescue operation is not implemented" in r.json()["notImplemented"]["message"]
        r = act(happi, hadmin, server, {"os-getConsoleOutput": {}})
        assert r.status_code == 501, r.text
        assert wait_status(happi, hadmin, server, {"ACTIVE"})["OS-EXT-STS:task_state"] is None
    finally:
        restore_caps(hcloud, old)
    assert act(happi, hadmin, server, {"pause": None}).status_code == 202
    wait_status(happi, hadmin, server, {"PAUSED"})
    assert act(happi, hadmin, server, {"unpause": None}).status_code == 202
    wait_status(happi, hadmin, server, {"ACTIVE"})


def test_a_driver_that_can_gets_the_calls(hcloud: InProcessCloud, happi: Api, hadmin: str,
                                          server: str, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    seen: list[tuple[str, str]] = []
    fake = driver(hcloud)

    async def set_password(guest_id: str, password: str) -> None:
        seen.append(("password", password))

    async def crash(guest_id: str) -> None:
        seen.append(("nmi", guest_id))

    monkeypatch.setattr(fake, "set_admin_password", set_password)
    monkeypatch.setattr(fake, "trigger_crash_dump", crash)
    # The driver declares them too: the agent's periodic report must say the same as
    # the row this test writes, or a report in between takes them back.
    monkeypatch.setattr(fake, "capabilities", {
        **fake.capabilities, "supports_set_admin_password": True,
        "supports_trigger_crash_dump": True})
    old = set_caps(hcloud, supports_set_admin_password=True, supports_trigger_crash_dump=True)
    try:
        r = act(happi, hadmin, server, {"changePassword": {"adminPass": "n3w"}})
        assert r.status_code == 202, r.text
        assert ("password", "n3w") in seen  # done before the answer, as Nova's call
        r = act(happi, hadmin, server, {"trigger_crash_dump": None}, "2.17")
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 10
        while ("nmi", server) not in seen:  # run by the conductor, after the 202
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        wait_status(happi, hadmin, server, {"ACTIVE"})

        async def broken(guest_id: str, password: str) -> None:
            raise DriverError("the guest agent did not answer")

        monkeypatch.setattr(fake, "set_admin_password", broken)
        r = act(happi, hadmin, server, {"changePassword": {"adminPass": "x"}})
        assert r.status_code == 409, r.text
        assert "the guest agent did not answer" in r.json()["conflictingRequest"]["message"]
        assert wait_status(happi, hadmin, server, {"ACTIVE"})["OS-EXT-STS:task_state"] is None
    finally:
        restore_caps(hcloud, old)
    assert hcloud.cloud is not None
    with hcloud.cloud.db.session(write=False) as s:
        inst = s.get(Instance, server)
        assert inst is not None and inst.task_state is None
        # The password is never stored anywhere: not in the outbox, not in the events.
        dumped = str([(a.message, a.action) for a in s.scalars(select(InstanceAction))])
        assert "n3w" not in dumped
