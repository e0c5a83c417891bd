"""Reset-state and delete racing every step of every workflow (property-based).

Every write of an instance's vm_state/task_state is a compare-and-swap on the
task_state the writer expects. Here hypothesis picks a workflow (resize, cold
migration, live migration, evacuation), a step, a moment (just entered, or
just finished) and an interfering request (reset-state to active or error, or
delete), and fires that request from inside the running workflow. Whatever it
picks, afterwards:

* the interfering request was answered 2xx (and its effect stands) or 409
  (and nothing changed): no write was silently lost;
* no task_state stays set; a deleted server stays deleted;
* the guest runs on at most one host, the host the database names has a copy
  (never lost), a deleted server leaves no copy behind;
* every host's usage is the sum of its allocations, and a migration that ended
  holds none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gureum.compute import states
from gureum.compute.models import Allocation, Instance, Migration
from gureum.workflows.engine import TERMINAL, Run, Workflow
from gureum.workflows.evacuate import EvacuateWorkflow
from gureum.workflows.live import LiveMigrationWorkflow
from gureum.workflows.resize import ResizeWorkflow
from tests.compute_helpers import MV, boot, wait_gone, wait_status
from tests.functional.test_workflows import (
    check_claims,
    copies,
    db_get,
    last_migration,
    running_copies,
    wait_for,
)
from tests.harness import Api, InProcessCloud, make_settings

WORKFLOWS: dict[str, type[Workflow]] = {
    "resize": ResizeWorkflow, "migrate": ResizeWorkflow, "live": LiveMigrationWorkflow,
    "evacuate": EvacuateWorkflow,
}
INTERFERENCE = ("reset-active", "reset-error", "delete")


@pytest.fixture(scope="module")
def race_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(tmp_path_factory.mktemp("races"), compute={
        "shutdown_timeout": 1.0, "shutdown_retry_interval": 0.2})
    c = InProcessCloud(settings, hosts=3).start()
    yield c
    Workflow.step_hook = None
    c.stop()


@pytest.fixture(scope="module")
def rapi(race_cloud: InProcessCloud) -> Iterator[Api]:
    api = Api(race_cloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def radmin(rapi: Api, race_cloud: InProcessCloud) -> str:
    return rapi.token("admin", race_cloud.admin_password, "admin")


@dataclass
class Interference:
    """What to do, where, and what came of it."""

    server_id: str
    step: str
    when: str  # "enter" | "done"
    op: str
    api: Api
    token: str
    status: int | None = None  # the interfering request's answer
    fired: list[str] = field(default_factory=list)

    def request(self) -> int:
        sid = self.server_id
        if self.op == "delete":
            r = self.api.request("DELETE", f"/compute/v2.1/servers/{sid}", self.token,
                                 headers=MV)
        else:
            r = self.api.request("POST", f"/compute/v2.1/servers/{sid}/action", self.token,
                                 json={"os-resetState": {"state": self.op.split("-")[1]}},
                                 headers=MV)
        assert r.status_code in (202, 204, 409), r.text
        return r.status_code


def install(plan: Interference) -> None:
    async def hook(wf: Workflow, run: Run, when: str, step: str) -> None:
        if (run.instance_id == plan.server_id and when == plan.when and step == plan.step
                and not plan.fired):
            plan.fired.append(step)
            plan.status = await asyncio.to_thread(plan.request)
    Workflow.step_hook = hook


def service_id(api: Api, token: str, host: str) -> str:
    r = api.request("GET", "/compute/v2.1/os-services?binary=nova-compute", token, headers=MV)
    return str(next(s["id"] for s in r.json()["services"] if s["host"] == host))


def force_down(api: Api, token: str, host: str, down: bool) -> None:
    r = api.request("PUT", f"/compute/v2.1/os-services/{service_id(api, token, host)}", token,
                    json={"forced_down": down}, headers=MV)
    assert r.status_code == 200, r.text


def start_workflow(api: Api, token: str, kind: str, sid: str) -> None:
    body: dict[str, Any] = {
        "resize": {"resize": {"flavorRef": "42"}},
        "migrate": {"migrate": None},
        "live": {"os-migrateLive": {"host": None, "block_migration": "auto"}},
        "evacuate": {"evacuate": {}},
    }[kind]
    r = api.request("POST", f"/compute/v2.1/servers/{sid}/action", token, json=body,
                    headers=MV)
    assert r.status_code in (200, 202), r.text


def settled(cloud: InProcessCloud, sid: str) -> bool:
    """Nothing is running any more for this server."""
    def check(s: Any) -> bool:
        inst = s.get(Instance, sid)
        if inst is None or inst.deleted:
            return True
        if inst.task_state is not None:
            return False
        mig = s.scalar(select(Migration).where(Migration.instance_id == sid)
                       .order_by(Migration.id.desc()).limit(1))
        return mig is None or mig.status in TERMINAL or mig.status == "finished"
    return bool(db_get(cloud, check))


steps = st.sampled_from(sorted(WORKFLOWS)).flatmap(
    lambda kind: st.tuples(st.just(kind),
                           st.sampled_from([s.name for s in WORKFLOWS[kind].steps]),
                           st.sampled_from(["enter", "done"]),
                           st.sampled_from(INTERFERENCE)))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=steps)
def test_reset_state_and_delete_never_lose_a_write(race_cloud: InProcessCloud, rapi: Api,
                                                  radmin: str,
                                                  case: tuple[str, str, str, str]) -> None:
    kind, step, when, op = case
    server = boot(rapi, radmin, f"race-{kind}-{step}-{when}-{op}")
    sid = server["id"]
    server = wait_status(rapi, radmin, sid, {"ACTIVE"})
    source = server["OS-EXT-SRV-ATTR:host"]
    plan = Interference(sid, step, when, op, Api(race_cloud.url), radmin)
    install(plan)
    if kind == "evacuate":
        force_down(rapi, radmin, source, True)
    try:
        start_workflow(rapi, radmin, kind, sid)
        wait_for(lambda: settled(race_cloud, sid), timeout=60, what=f"{kind} to settle")
        if plan.status == 204:
            wait_gone(rapi, radmin, sid)
    finally:
        Workflow.step_hook = None
        plan.api.close()
        if kind == "evacuate":
            force_down(rapi, radmin, source, False)

    inst = db_get(race_cloud, lambda s: s.get(Instance, sid))
    mig = last_migration(race_cloud, sid)
    assert mig is not None
    if plan.status == 204:  # the delete won: gone for good, nothing left on any host
        assert inst.deleted and inst.vm_state == states.DELETED and inst.task_state is None
        hosts = [h for h in copies(race_cloud, sid) if not (kind == "evacuate"
                                                            and h == source)]
        assert hosts == [], f"copies left on {hosts}"
    else:
        assert not inst.deleted
        assert inst.task_state is None, f"task_state {inst.task_state} stayed set"
        if plan.status == 202:  # the reset won: its vm_state stands
            assert inst.vm_state == op.split("-")[1], (inst.vm_state, mig.status)
        live = [h for h in running_copies(race_cloud, sid)
                if not (kind == "evacuate" and h == source)]
        assert len(live) <= 1, f"running on {live}"
        assert inst.host in copies(race_cloud, sid), "the database names a host without it"
        if mig.status == "finished":
            assert inst.vm_state in (states.RESIZED, states.ACTIVE, states.ERROR)
    if mig.status in TERMINAL:
        held = db_get(race_cloud, lambda s: s.scalars(select(Allocation).where(
            Allocation.consumer_id == mig.uuid)).all())
        assert held == [], f"migration {mig.status} still holds {held}"
    check_claims(race_cloud)
    # Leave the cloud clean for the next example.
    if not inst.deleted:
        if mig.status == "finished" and inst.vm_state == states.RESIZED:
            rapi.request("POST", f"/compute/v2.1/servers/{sid}/action", radmin,
                         json={"confirmResize": None}, headers=MV)
            wait_status(rapi, radmin, sid, {"ACTIVE", "SHUTOFF", "ERROR"})
        rapi.request("DELETE", f"/compute/v2.1/servers/{sid}", radmin, headers=MV)
        wait_gone(rapi, radmin, sid)
