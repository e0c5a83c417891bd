"""Hand-over after commit: nothing sent before it, nothing lost after it, done once.

The API writes work for the conductor as an outbox row in the same transaction
as the state change (gureum/outbox.py). Here the send after the commit fails on
purpose: the work still happens, exactly once, without restarting anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gureum import outbox
from gureum.bus import BusError
from gureum.db import Database
from tests.compute_helpers import MV, boot, wait_status
from tests.harness import Api, InProcessCloud, make_settings


class _NoConductor:
    """A bus whose every send to the conductor fails, as a broken link would."""

    def __init__(self) -> None:
        self.attempts = 0

    async def cast(self, topic: str, method: str, args: dict[str, Any],
                   server: str | None = None) -> None:
        self.attempts += 1
        raise BusError("injected: the hand-over message was lost")


@pytest.fixture(scope="module")
def ocloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(tmp_path_factory.mktemp("outbox"),
                             conductor={"outbox_sweep_interval": 0.2, "outbox_grace": 0.5})
    c = InProcessCloud(settings, hosts=1).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def oapi(ocloud: InProcessCloud) -> Iterator[Api]:
    api = Api(ocloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def oadmin(oapi: Api, ocloud: InProcessCloud) -> str:
    return oapi.token("admin", ocloud.admin_password, "admin")


def events(api: Api, token: str, server_id: str, action: str) -> list[dict[str, Any]]:
    actions = api.request("GET", f"/compute/v2.1/servers/{server_id}/os-instance-actions",
                          token, headers=MV).json()["instanceActions"]
    found = [a for a in actions if a["action"] == action]
    assert len(found) == 1, actions
    detail = api.request("GET", f"/compute/v2.1/servers/{server_id}/os-instance-actions/"
                         f"{found[0]['request_id']}", token, headers=MV).json()
    return list(detail["instanceAction"]["events"])


def test_work_whose_hand_over_was_lost_still_happens_once(ocloud: InProcessCloud, oapi: Api,
                                                          oadmin: str) -> None:
    assert ocloud.cloud is not None
    announcer = ocloud.cloud.db.outbox_notifier
    assert isinstance(announcer, outbox.Announcer)
    real_bus, broken = announcer.bus, _NoConductor()
    announcer.bus = broken  # type: ignore[assignment]
    try:
        server = boot(oapi, oadmin, "lost-boot")  # the build's hand-over is lost too
        sid = server["id"]
        wait_status(oapi, oadmin, sid, {"ACTIVE"}, timeout=30)
        r = oapi.request("POST", f"/compute/v2.1/servers/{sid}/action", oadmin,
                         json={"os-stop": None}, headers=MV)
        assert r.status_code == 202, r.text
        wait_status(oapi, oadmin, sid, {"SHUTOFF"}, timeout=30)
    finally:
        announcer.bus = real_bus
    assert broken.attempts >= 2  # both sends were tried, and failed
    stop = [e for e in events(oapi, oadmin, sid, "stop")
            if e["event"] == "compute_stop_instance"]
    assert len(stop) == 1 and stop[0]["result"] == "Success", stop
    with ocloud.cloud.db.session(write=False) as s:
        assert outbox.pending(s) == []


def test_a_delivered_hand_over_runs_once(ocloud: InProcessCloud, oapi: Api,
                                         oadmin: str) -> None:
    sid = boot(oapi, oadmin, "delivered")["id"]
    wait_status(oapi, oadmin, sid, {"ACTIVE"}, timeout=30)
    oapi.request("POST", f"/compute/v2.1/servers/{sid}/action", oadmin,
                 json={"os-stop": None}, headers=MV)
    wait_status(oapi, oadmin, sid, {"SHUTOFF"}, timeout=30)
    assert len([e for e in events(oapi, oadmin, sid, "stop")
                if e["event"] == "compute_stop_instance"]) == 1


def test_a_row_is_taken_by_one_taker_only(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.upgrade()
    with db.session() as s:
        mid = outbox.add(s, "run_action", {"instance_id": "x", "action": "stop",
                                           "request_id": "req-1"})
    with db.session() as s:
        assert outbox.take(s, mid) == ("run_action", {"instance_id": "x", "action": "stop",
                                                      "request_id": "req-1"})
    with db.session() as s:
        assert outbox.take(s, mid) is None


def test_nothing_is_announced_for_a_rolled_back_transaction(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.upgrade()
    told: list[list[int]] = []
    db.outbox_notifier = told.append
    with pytest.raises(RuntimeError), db.session() as s:
        outbox.add(s, "run_action", {"instance_id": "y"})
        raise RuntimeError("the request failed after writing its hand-over")
    with db.session(write=False) as s:
        assert outbox.pending(s) == []
    assert told == []
    with db.session() as s:
        mid = outbox.add(s, "delete_instance", {"instance_id": "y", "request_id": "r"})
    assert told == [[mid]]  # announced only after the commit


def test_unknown_methods_are_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.upgrade()
    with pytest.raises(ValueError), db.session() as s:
        outbox.add(s, "fake_inject", {})
