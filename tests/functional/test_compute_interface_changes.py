"""A server's NICs when their ports change under it, and after a crash (fake driver).

* Deleting an attached port through the Networking API (Neutron's
  ``network-vif-deleted`` to Nova) unplugs its NIC from the guest and drops it from
  the server's addresses and os-interface; a stopped server started again has no NIC
  for it. Before the fix the guest kept the NIC for good.
* ``POST /v2.1/os-server-external-events`` (admin): Nova's shape, 200/207 and the
  per-event codes; ``network-vif-deleted`` for a port that is gone unplugs it.
* The device role tag of an interface (2.49 attach, 2.42 server create) is stored
  and shown by os-interface from 2.70 (it was accepted and dropped).
* An attach, detach, rollback or unplug whose process died (its row left, nothing
  in the outbox) is finished by a conductor's restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from gureum import outbox
from gureum.agent.service import AgentEndpoint
from gureum.compute import interfaces as ifaces
from gureum.compute.models import InterfaceOperation
from gureum.db.base import utcnow
from gureum.network import models as nm
from gureum.virt.driver import GuestSpec
from gureum.virt.fake import FakeDriver
from gureum.virt.qemu.driver import QemuDriver
from tests.compute_helpers import boot, image_id, wait_status
from tests.harness import Api, InProcessCloud, make_settings

C = "/compute/v2.1"
N = "/network/v2.0"


@pytest.fixture(scope="module")
def icloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("ifaces"))).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def iapi(icloud: InProcessCloud) -> Iterator[Api]:
    api = Api(icloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def admin(iapi: Api, icloud: InProcessCloud) -> str:
    return iapi.token("admin", icloud.admin_password, "admin")


@pytest.fixture(scope="module")
def demo(iapi: Api, icloud: InProcessCloud) -> str:
    return iapi.token("demo", icloud.demo_password, "demo")


def fake(c: InProcessCloud) -> FakeDriver:
    assert c.cloud is not None
    driver = c.cloud.agents[0].driver
    assert isinstance(driver, FakeDriver)
    return driver


def until(fn: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)
    return value


def call(api: Api, method: str, path: str, token: str, mv: str = "2.1",
         **kw: Any) -> Any:
    return api.request(method, path, token, headers={"OpenStack-API-Version":
                                                      f"compute {mv}"}, **kw)


def private(api: Api, token: str) -> str:
    r = api.request("GET", f"{N}/networks?name=private", token)
    return str(r.json()["networks"][0]["id"])


def new_port(api: Api, token: str, name: str) -> dict[str, Any]:
    r = api.request("POST", f"{N}/ports", token,
                    json={"port": {"network_id": private(api, token), "name": name}})
    assert r.status_code == 201, r.text
    return dict(r.json()["port"])


def server(api: Api, token: str, name: str) -> str:
    sid = str(boot(api, token, name, networks=[{"uuid": private(api, token)}])["id"])
    wait_status(api, token, sid, {"ACTIVE"})
    return sid


def attach(api: Api, token: str, sid: str, port_id: str, mv: str = "2.1",
           **extra: Any) -> Any:
    return call(api, "POST", f"{C}/servers/{sid}/os-interface", token, mv,
                json={"interfaceAttachment": {"port_id": port_id, **extra}})


def addresses(api: Api, token: str, sid: str) -> set[str]:
    r = call(api, "GET", f"{C}/servers/{sid}", token)
    return {a["addr"] for net in r.json()["server"]["addresses"].values() for a in net}


def listed(api: Api, token: str, sid: str) -> set[str]:
    r = call(api, "GET", f"{C}/servers/{sid}/os-interface", token)
    return {i["port_id"] for i in r.json()["interfaceAttachments"]}


def operations(c: InProcessCloud) -> int:
    assert c.cloud is not None
    with c.cloud.db.session(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(InterfaceOperation)) or 0)


def test_deleting_an_attached_port_unplugs_its_nic(icloud: InProcessCloud, iapi: Api,
                                                   demo: str) -> None:
    sid = server(iapi, demo, "vif-deleted")
    port = new_port(iapi, demo, "goes-away")
    assert attach(iapi, demo, sid, port["id"]).status_code == 200
    assert port["id"] in fake(icloud).interfaces(sid)
    ip = port["fixed_ips"][0]["ip_address"]
    assert ip in addresses(iapi, demo, sid)

    r = iapi.request("DELETE", f"{N}/ports/{port['id']}", demo)
    assert r.status_code == 204, r.text
    # The server's addresses drop it in the same transaction; the guest's NIC goes a
    # moment later (the conductor, through the outbox).
    assert ip not in addresses(iapi, demo, sid)
    assert port["id"] not in listed(iapi, demo, sid)
    until(lambda: port["id"] not in fake(icloud).interfaces(sid))
    until(lambda: operations(icloud) == 0)
    assert len(fake(icloud).interfaces(sid)) == 1  # its first NIC stays
    assert call(iapi, "GET", f"{C}/servers/{sid}", demo).json()["server"]["status"] == "ACTIVE"


def test_a_stopped_server_started_again_has_no_nic_for_a_deleted_port(
        icloud: InProcessCloud, iapi: Api, demo: str) -> None:
    sid = server(iapi, demo, "vif-deleted-stopped")
    port = new_port(iapi, demo, "goes-while-stopped")
    assert attach(iapi, demo, sid, port["id"]).status_code == 200
    call(iapi, "POST", f"{C}/servers/{sid}/action", demo, json={"os-stop": None})
    wait_status(iapi, demo, sid, {"SHUTOFF"})
    assert iapi.request("DELETE", f"{N}/ports/{port['id']}", demo).status_code == 204
    until(lambda: operations(icloud) == 0)
    call(iapi, "POST", f"{C}/servers/{sid}/action", demo, json={"os-start": None})
    wait_status(iapi, demo, sid, {"ACTIVE"})
    assert port["id"] not in fake(icloud).interfaces(sid)
    assert port["id"] not in listed(iapi, demo, sid)


def test_external_events_as_nova_answers_them(icloud: InProcessCloud, iapi: Api,
                                              admin: str, demo: str) -> None:
    sid = server(iapi, demo, "events")
    (first,) = listed(iapi, demo, sid)
    path = f"{C}/os-server-external-events"
    body = {"events": [{"name": "network-changed", "server_uuid": sid, "tag": first}]}
    assert call(iapi, "POST", path, demo, json=body).status_code == 403
    r = call(iapi, "POST", path, admin, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"events": [{"name": "network-changed", "server_uuid": sid,
                                    "tag": first, "status": "completed", "code": 200}]}

    missing = "00000000-0000-4000-8000-000000000000"
    r = call(iapi, "POST", path, admin, json={"events": [
        {"name": "network-vif-plugged", "server_uuid": sid, "status": "completed"},
        {"name": "network-vif-unplugged", "server_uuid": missing}]})
    assert r.status_code == 207, r.text
    codes = [(e["code"], e["status"]) for e in r.json()["events"]]
    assert codes == [(200, "completed"), (404, "failed")]
    for bad in ({"events": []}, {"events": [{"name": "volume-deleted", "server_uuid": sid}]},
                {"events": [{"name": "network-changed"}]},
                {"events": [{"name": "network-changed", "server_uuid": sid, "x": 1}]}):
        assert call(iapi, "POST", path, admin, json=bad).status_code == 400, bad

    # network-vif-deleted for a port still attached changes nothing; for one that is
    # gone, its NIC is unplugged.
    vif_deleted = {"events": [{"name": "network-vif-deleted", "server_uuid": sid,
                               "tag": first}]}
    assert call(iapi, "POST", path, admin, json=vif_deleted).status_code == 200
    time.sleep(0.3)
    assert first in fake(icloud).interfaces(sid)
    assert icloud.cloud is not None
    with icloud.cloud.db.session() as s:  # gone behind Compute's back (a Neutron)
        s.execute(delete(nm.Port).where(nm.Port.id == first))
    assert call(iapi, "POST", path, admin, json=vif_deleted).status_code == 200
    until(lambda: first not in fake(icloud).interfaces(sid))
    assert listed(iapi, demo, sid) == set()


def test_interface_tags_are_kept_and_shown_from_2_70(icloud: InProcessCloud, iapi: Api,
                                                     demo: str) -> None:
    net = private(iapi, demo)
    r = call(iapi, "POST", f"{C}/servers", demo, "2.37", json={"server": {
        "name": "tagged-early", "flavorRef": "1", "networks": [{"uuid": net, "tag": "x"}]}})
    assert r.status_code == 400 and "tag" in r.text, r.text
    r = call(iapi, "POST", f"{C}/servers", demo, "2.42", json={"server": {
        "name": "tagged", "flavorRef": "1", "imageRef": image_id(iapi, demo),
        "networks": [{"uuid": net, "tag": "eth-boot"}]}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_status(iapi, demo, sid, {"ACTIVE"})
    port = new_port(iapi, demo, "tagged-port")
    assert attach(iapi, demo, sid, port["id"], "2.48", tag="db").status_code == 400
    r = attach(iapi, demo, sid, port["id"], "2.49", tag="db")
    assert r.status_code == 200, r.text
    assert "tag" not in r.json()["interfaceAttachment"]
    r = call(iapi, "GET", f"{C}/servers/{sid}/os-interface", demo, "2.70")
    tags = {i["port_id"]: i["tag"] for i in r.json()["interfaceAttachments"]}
    assert tags[port["id"]] == "db" and sorted(tags.values()) == ["db", "eth-boot"]
    r = call(iapi, "GET", f"{C}/servers/{sid}/os-interface/{port['id']}", demo, "2.69")
    assert "tag" not in r.json()["interfaceAttachment"]
    # Detached, the port is the project's again: its tag goes with the attachment.
    r = call(iapi, "DELETE", f"{C}/servers/{sid}/os-interface/{port['id']}", demo)
    assert r.status_code == 202, r.text
    assert icloud.cloud is not None
    with icloud.cloud.db.session(write=False) as s:
        row = s.get(nm.Port, port["id"])
        assert row is not None and row.device_tag is None and row.device_id == ""


def test_config_drive_lists_tagged_nics() -> None:
    spec = GuestSpec(id="g1", name="g1", vcpus=1, memory_mb=64, root_gb=1, network_info=[
        {"port_id": "p1", "mac_address": "fa:16:3e:00:00:01", "tag": "web"},
        {"port_id": "p2", "mac_address": "fa:16:3e:00:00:02", "tag": None}])
    devices = QemuDriver._meta_data(spec)["devices"]
    assert devices == [{"type": "nic", "bus": "pci", "mac": "fa:16:3e:00:00:01",
                        "tags": ["web"]}]


def _left_behind(c: InProcessCloud, sid: str, port_id: str, kind: str) -> None:
    """The row a process killed in the middle leaves: no lease, no outbox message."""
    assert c.cloud is not None
    with c.cloud.db.session() as s:
        s.add(InterfaceOperation(instance_id=sid, port_id=port_id, kind=kind,
                                 request_id="req-dead", created_at=utcnow()))
        s.flush()
        s.execute(delete(outbox.OutboxMessage))


def _restart_conductor(c: InProcessCloud) -> None:
    assert c.cloud is not None
    c.run(c.cloud.conductor._interfaces_due())


def test_work_a_dead_process_left_is_finished_by_the_conductor(
        icloud: InProcessCloud, iapi: Api, demo: str) -> None:
    sid = server(iapi, demo, "left-behind")
    driver = fake(icloud)
    # An attach cut after the port was taken: finished (plugged once, listed).
    p1 = new_port(iapi, demo, "half-attached")
    assert icloud.cloud is not None
    with icloud.cloud.db.session() as s:
        row = s.get(nm.Port, p1["id"])
        assert row is not None
        row.device_id, row.device_owner, row.device_index = sid, "compute:nova", 5
    _left_behind(icloud, sid, p1["id"], ifaces.ATTACH)
    _restart_conductor(icloud)
    until(lambda: operations(icloud) == 0)
    assert p1["id"] in driver.interfaces(sid)
    assert p1["id"] in listed(iapi, demo, sid)

    # Its rollback (the agent never answered the attach): unplugged, the port free.
    _left_behind(icloud, sid, p1["id"], ifaces.ROLLBACK)
    _restart_conductor(icloud)
    until(lambda: operations(icloud) == 0)
    assert p1["id"] not in driver.interfaces(sid)
    r = iapi.request("GET", f"{N}/ports/{p1['id']}", demo).json()["port"]
    assert r["device_id"] == "" and r["device_owner"] == ""

    # A detach cut before its outcome was recorded: the NIC goes, then the port.
    assert attach(iapi, demo, sid, p1["id"]).status_code == 200
    _left_behind(icloud, sid, p1["id"], ifaces.DETACH)
    _restart_conductor(icloud)
    until(lambda: operations(icloud) == 0)
    assert p1["id"] not in driver.interfaces(sid)
    assert p1["id"] not in listed(iapi, demo, sid)

    # An unplug of a deleted port whose conductor died before asking the host.
    assert attach(iapi, demo, sid, p1["id"]).status_code == 200
    with icloud.cloud.db.session() as s:
        s.execute(delete(nm.Port).where(nm.Port.id == p1["id"]))
    _left_behind(icloud, sid, p1["id"], ifaces.UNPLUG)
    _restart_conductor(icloud)
    until(lambda: operations(icloud) == 0)
    assert p1["id"] not in driver.interfaces(sid)


def test_an_unplug_waits_for_a_host_that_does_not_answer(icloud: InProcessCloud,
                                                         iapi: Api, demo: str) -> None:
    sid = server(iapi, demo, "host-away")
    port = new_port(iapi, demo, "unplug-later")
    assert attach(iapi, demo, sid, port["id"]).status_code == 200
    assert icloud.cloud is not None
    agent = icloud.cloud.agents[0]
    icloud.run(icloud.cloud.bus.unserve("compute", agent.host))
    try:
        assert iapi.request("DELETE", f"{N}/ports/{port['id']}", demo).status_code == 204
        time.sleep(1.0)
        assert operations(icloud) == 1  # kept, tried again later
        assert port["id"] in fake(icloud).interfaces(sid)
    finally:
        icloud.run(icloud.cloud.bus.serve("compute", agent.host, AgentEndpoint(agent),
                                          agent.admission))
    with icloud.cloud.db.session() as s:  # no need to wait out the retry delay
        s.execute(InterfaceOperation.__table__.update().values(lease_until=None))
    _restart_conductor(icloud)
    until(lambda: port["id"] not in fake(icloud).interfaces(sid))
    until(lambda: operations(icloud) == 0)


@pytest.fixture(scope="module")
def slow_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    """The host plugs NICs slower than the API waits for its agent."""
    c = InProcessCloud(make_settings(
        tmp_path_factory.mktemp("ifaces-slow"),
        compute={"rpc_timeout": 1.0, "fake_delays": "attach_interface:3"})).start()
    yield c
    c.stop()


def test_an_attach_the_agent_does_not_answer_is_rolled_back(slow_cloud: InProcessCloud
                                                            ) -> None:
    """No answer in time (an agent killed or stuck in the plug): 409, and once the host
    is done the NIC is unplugged again and the port is free; the guest never keeps a
    NIC without a port."""
    api = Api(slow_cloud.url)
    try:
        demo = api.token("demo", slow_cloud.demo_password, "demo")
        sid = server(api, demo, "slow-plug")
        port = new_port(api, demo, "never-answered")
        r = attach(api, demo, sid, port["id"])
        assert r.status_code == 409 and "Failed to attach" in r.text, r.text
        until(lambda: operations(slow_cloud) == 0)
        assert port["id"] not in fake(slow_cloud).interfaces(sid)
        shown = api.request("GET", f"{N}/ports/{port['id']}", demo).json()["port"]
        assert shown["device_id"] == ""
        assert port["id"] not in listed(api, demo, sid)
        events = call(api, "GET", f"{C}/servers/{sid}/os-instance-actions", demo).json()
        assert "attach_interface" in [a["action"] for a in events["instanceActions"]]
    finally:
        api.close()


def test_an_unplug_the_guest_refuses_is_tried_again(icloud: InProcessCloud, iapi: Api,
                                                    demo: str) -> None:
    """The guest does not let the NIC go (suspended, or it did not release the device):
    the port is gone all the same, so the unplug is kept and tried again later."""
    sid = server(iapi, demo, "holds-on")
    port = new_port(iapi, demo, "held")
    assert attach(iapi, demo, sid, port["id"]).status_code == 200
    fake(icloud).inject("detach_interface", "the guest did not release the device")
    assert iapi.request("DELETE", f"{N}/ports/{port['id']}", demo).status_code == 204
    until(lambda: ("detach_interface", sid) in fake(icloud).calls)
    time.sleep(0.5)
    assert operations(icloud) == 1 and port["id"] in fake(icloud).interfaces(sid)
    assert port["id"] not in listed(iapi, demo, sid)
    assert icloud.cloud is not None
    with icloud.cloud.db.session() as s:  # the retry's time has come
        s.execute(InterfaceOperation.__table__.update().values(lease_until=None))
    _restart_conductor(icloud)
    until(lambda: port["id"] not in fake(icloud).interfaces(sid))
    until(lambda: operations(icloud) == 0)


@pytest.fixture(scope="module")
def plug_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    """The host takes two seconds to plug a NIC (the API waits for it)."""
    c = InProcessCloud(make_settings(
        tmp_path_factory.mktemp("ifaces-plug"),
        compute={"fake_delays": "attach_interface:2"})).start()
    yield c
    c.stop()


def test_a_port_deleted_while_it_is_plugged_is_unplugged_after(plug_cloud: InProcessCloud
                                                               ) -> None:
    """The port goes while the host plugs it: the attach answers 404 PortNotFound and,
    once the plug is done, the NIC is unplugged again (never before: the unplug waits
    for the attach's request to hand it over)."""
    api = Api(plug_cloud.url)
    try:
        demo = api.token("demo", plug_cloud.demo_password, "demo")
        sid = server(api, demo, "race")
        port = new_port(api, demo, "deleted-midway")
        answers: list[Any] = []
        thread = threading.Thread(target=lambda: answers.append(
            attach(api, demo, sid, port["id"])))
        thread.start()
        until(lambda: operations(plug_cloud) == 1)
        assert api.request("DELETE", f"{N}/ports/{port['id']}", demo).status_code == 204
        thread.join(30)
        (r,) = answers
        assert r.status_code == 404, r.text
        until(lambda: operations(plug_cloud) == 0)
        assert port["id"] not in fake(plug_cloud).interfaces(sid)
        assert listed(api, demo, sid) == set(fake(plug_cloud).interfaces(sid))
    finally:
        api.close()
