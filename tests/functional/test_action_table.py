"""The API guards read the action table: every (vm_state, task_state, action) pair.

The conductor is replaced by a sink that accepts and drops every message, so an
accepted action changes nothing but its task_state; the test then puts the
server into the next state by hand. 409 exactly where the table says no.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gureum.compute import states
from gureum.compute.models import Instance
from gureum.db import utcnow
from tests.compute_helpers import MV, image_id
from tests.harness import Api, InProcessCloud, make_settings


class Sink:
    """Answers every conductor method with nothing."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def accept(**kwargs: Any) -> None:
            return None
        return accept


@pytest.fixture(scope="module")
def table_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("table")), hosts=2).start()
    assert c.cloud is not None
    c.run(c.cloud.conductor.stop())
    c.run(c.cloud.bus.serve("conductor", "sink", Sink()))
    yield c
    c.run(c.cloud.bus.unserve("conductor", "sink"))
    c.run(c.cloud.conductor.start())
    c.stop()


@pytest.fixture(scope="module")
def env(table_cloud: InProcessCloud) -> Iterator[dict[str, Any]]:
    api = Api(table_cloud.url)
    admin = api.token("admin", table_cloud.admin_password, "admin")
    cirros = image_id(api, admin)
    r = api.request("POST", "/compute/v2.1/servers", admin, headers=MV, json={
        "server": {"name": "table", "flavorRef": "1", "imageRef": cirros,
                   "networks": "none"}})
    assert r.status_code == 202, r.text
    yield {"api": api, "admin": admin, "id": r.json()["server"]["id"], "image": cirros}
    api.close()


# (action in the table, HTTP method, body or None for DELETE)
REQUESTS: list[tuple[str, dict[str, Any] | None]] = [
    ("stop", {"os-stop": None}), ("start", {"os-start": None}),
    ("reboot", {"reboot": {"type": "SOFT"}}), ("reboot_hard", {"reboot": {"type": "HARD"}}),
    ("pause", {"pause": None}), ("unpause", {"unpause": None}),
    ("suspend", {"suspend": None}), ("resume", {"resume": None}),
    ("rescue", {"rescue": None}), ("unrescue", {"unrescue": None}),
    ("resize", {"resize": {"flavorRef": "2"}}), ("migrate", {"migrate": None}),
    ("confirmResize", {"confirmResize": None}), ("revertResize", {"revertResize": None}),
    ("os-migrateLive", {"os-migrateLive": {"host": None, "block_migration": "auto"}}),
    ("shelve", {"shelve": None}), ("unshelve", {"unshelve": None}),
    ("createImage", {"createImage": {"name": "snap"}}),
    ("changePassword", {"changePassword": {"adminPass": "x"}}),
    ("trigger_crash_dump", {"trigger_crash_dump": None}),
    ("rebuild", {"rebuild": {"imageRef": "IMAGE"}}),
    ("forceDelete", {"forceDelete": None}), ("delete", None),
]
TASK_STATES = [None, states.POWERING_OFF, states.MIGRATING]


def set_state(cloud: InProcessCloud, server_id: str, vm_state: str,
              task_state: str | None) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        inst = s.get(Instance, server_id)
        assert inst is not None
        inst.vm_state, inst.task_state = vm_state, task_state
        inst.host, inst.node, inst.launched_at = "c01", "c01", utcnow()
        inst.locked = False


@pytest.mark.parametrize("action,body", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_api_refuses_exactly_where_the_table_does(table_cloud: InProcessCloud,
                                                  env: dict[str, Any], action: str,
                                                  body: dict[str, Any] | None) -> None:
    api: Api = env["api"]
    sid = env["id"]
    if body is not None and "rebuild" in body:
        body = {"rebuild": {"imageRef": env["image"]}}
    mismatches = []
    for vm_state in states.VM_STATES:
        if vm_state == states.DELETED:
            continue  # a deleted server is a 404, not a state
        for task_state in TASK_STATES:
            set_state(table_cloud, sid, vm_state, task_state)
            if body is None:
                r = api.request("DELETE", f"/compute/v2.1/servers/{sid}", env["admin"],
                                headers=MV)
            else:
                r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", env["admin"],
                                json=body, headers=MV)
            try:
                states.check(action, sid, vm_state, task_state, launched=True)
                allowed = True
            except states.ActionNotAllowed:
                allowed = False
            if action == "delete" and task_state == states.DELETING:
                allowed = True
            got = r.status_code != 409
            # 501: allowed from this state, but the host's driver cannot do it
            # (changePassword on the fake driver, as Nova without a guest agent).
            if got != allowed or (r.status_code >= 500 and r.status_code != 501):
                mismatches.append((vm_state, task_state, r.status_code, r.text[:120]))
            elif not allowed:
                message = r.json()["conflictingRequest"]["message"]
                assert message.startswith("Cannot '"), message
    assert not mismatches, mismatches
