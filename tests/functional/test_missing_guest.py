"""A guest that is really missing is a state to reconcile, never a 500 (issue 7).

The hypervisor loses a guest behind the cloud's back (its definition is gone).
The console output answers 404 as Nova does, the conductor records power state
NOSTATE and a fault as soon as an agent reports it, an action on the guest fails
cleanly, and a hard reboot rebuilds the guest from the database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.compute import states
from gureum.virt.fake import FakeDriver
from tests.compute_helpers import MV, boot, show, wait_status
from tests.harness import Api, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def mg_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("missing"))).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def mapi(mg_cloud: InProcessCloud) -> Iterator[Api]:
    api = Api(mg_cloud.url)
    yield api
    api.close()


def fake(c: InProcessCloud) -> FakeDriver:
    assert c.cloud is not None
    driver = c.cloud.agents[0].driver
    assert isinstance(driver, FakeDriver)
    return driver


def until(fn: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)
    return value


def test_a_missing_guest_is_reported_not_a_500(mg_cloud: InProcessCloud, mapi: Api) -> None:
    token = mapi.token("admin", mg_cloud.admin_password, "admin")
    sid = boot(mapi, token, "lost")["id"]
    wait_status(mapi, token, sid, {"ACTIVE"})
    fake(mg_cloud).lose_definition(sid)

    r = mapi.request("POST", f"/compute/v2.1/servers/{sid}/action", token,
                     json={"os-getConsoleOutput": {}}, headers=MV)
    assert r.status_code == 404, r.text
    assert r.json()["itemNotFound"]["message"] == f"Instance {sid} could not be found."
    server = until(lambda: (s := show(mapi, token, sid))["OS-EXT-STS:power_state"]
                   == states.NOSTATE and s)
    assert server["status"] == "ACTIVE"
    assert "missing from its host" in server["fault"]["message"]

    r = mapi.request("POST", f"/compute/v2.1/servers/{sid}/action", token,
                     json={"os-stop": None}, headers=MV)
    assert r.status_code == 202, r.text
    stopped = wait_status(mapi, token, sid, {"ACTIVE", "SHUTOFF"})
    assert stopped["status"] == "ACTIVE"  # nothing to stop: the action failed, cleanly
    message = stopped["fault"]["message"]  # the action's failure or the missing guest
    assert "is not on host" in message or "missing from its host" in message, message

    r = mapi.request("POST", f"/compute/v2.1/servers/{sid}/action", token,
                     json={"reboot": {"type": "HARD"}}, headers=MV)
    assert r.status_code == 202, r.text
    until(lambda: show(mapi, token, sid)["OS-EXT-STS:power_state"] == states.RUNNING)
    rebuilt = wait_status(mapi, token, sid, {"ACTIVE"})
    assert "fault" not in rebuilt
    r = mapi.request("POST", f"/compute/v2.1/servers/{sid}/action", token,
                     json={"os-getConsoleOutput": {}}, headers=MV)
    assert r.status_code == 200, r.text
