"""Bindings follow what a host reports about how it plugs ports (network/bindings.py).

A compute host whose driver plugs ports itself reports its VIF mechanism with
its resources; the conductor records it as the host's agent, and every port
bound to that host from then on gets that ``binding:vif_type`` and
``binding:vif_details`` (a bridge host: the network's ``brq…`` bridge). A host
that reported nothing keeps the Open vSwitch binding.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from gureum.network import models as m
from gureum.network import service as netsvc
from tests.functional.network_helpers import get, listing, project_id
from tests.harness import Api, InProcessCloud


def test_a_port_binds_the_way_its_host_plugs(cloud: InProcessCloud, api: Api,
                                            admin_token: str, demo_token: str) -> None:
    assert cloud.cloud is not None
    db = cloud.cloud.db
    demo = project_id(api, admin_token, "demo")
    private = next(n for n in listing(api, demo_token, "network") if n["name"] == "private")
    bridge_host, user_host = f"br-{uuid.uuid4().hex[:6]}", f"us-{uuid.uuid4().hex[:6]}"
    with db.session() as s:
        netsvc.report_host_vif(s, bridge_host, "gureum-compute", {
            "agent_type": "Linux bridge agent", "vif_type": "bridge",
            "vif_details": {"connectivity": "l2", "port_filter": False}})
        netsvc.report_host_vif(s, user_host, "gureum-compute", {
            "agent_type": "QEMU user networking", "vif_type": "user", "vif_details": {}})
        netsvc.report_host_vif(s, "ignored", "gureum-compute", {"vif_type": ""})
    vm = str(uuid.uuid4())
    with db.session() as s:
        (vif,) = netsvc.allocate_for_instance(s, instance_id=vm, project_id=demo,
                                              host=bridge_host,
                                              requests=[{"uuid": private["id"]}])
    assert vif["vif_type"] == "bridge"
    assert vif["vif_details"] == {"connectivity": "l2", "port_filter": False,
                                  "bridge_name": "brq" + private["id"][:11]}
    port = get(api, admin_token, "port", vif["port_id"])
    assert (port["binding:host_id"], port["binding:vif_type"]) == (bridge_host, "bridge")
    assert port["binding:vif_details"]["bridge_name"] == "brq" + private["id"][:11]

    # Moved to a host that plugs with QEMU's user networking: computed for it afresh.
    with db.session() as s:
        netsvc.bind_ports(s, vm, user_host)
        (moved,) = netsvc.network_info_for_instance(s, vm)
    assert (moved["vif_type"], moved["vif_details"]) == ("user", {})
    # A host that reported nothing (the fake driver's) binds as an Open vSwitch host.
    with db.session() as s:
        netsvc.bind_ports(s, vm, "c01")
        (fake,) = netsvc.network_info_for_instance(s, vm)
    assert fake["vif_type"] == "ovs" and fake["vif_details"]["bridge_name"] == "br-int"

    # A report again (the next heartbeat) updates the one row of the host.
    with db.session() as s:
        netsvc.report_host_vif(s, user_host, "gureum-compute", {
            "agent_type": "Linux bridge agent", "vif_type": "bridge", "vif_details": {}})
        rows = list(s.scalars(select(m.Agent).where(m.Agent.host == user_host)))
        assert [(r.agent_type, r.configurations["vif_type"]) for r in rows] == [
            ("Linux bridge agent", "bridge")]
        assert s.scalar(select(m.Agent).where(m.Agent.host == "ignored")) is None
        netsvc.deallocate_for_instance(s, vm)


def test_the_instance_network_info_follows_its_binding(cloud: InProcessCloud, api: Api,
                                                       admin_token: str, demo_token: str
                                                       ) -> None:
    """A move rebinds the ports (compute.guests.bind_network); the GuestSpec built after
    it carries the new host's binding, so the destination plugs what it reported."""
    from gureum.compute.guests import bind_network, guest_spec, unbind_network
    from gureum.compute.models import Instance

    assert cloud.cloud is not None
    db = cloud.cloud.db
    demo = project_id(api, admin_token, "demo")
    private = next(n for n in listing(api, demo_token, "network") if n["name"] == "private")
    host = f"br-{uuid.uuid4().hex[:6]}"
    r = api.request("POST", "/compute/v2.1/servers", demo_token, json={"server": {
        "name": "follows", "flavorRef": "42", "networks": [{"uuid": private["id"]}],
        "imageRef": next(i["id"] for i in api.request(
            "GET", "/image/v2/images?name=cirros", demo_token).json()["images"])}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    deadline = time.monotonic() + 30
    while api.request("GET", f"/compute/v2.1/servers/{sid}", demo_token).json()[
            "server"]["status"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with db.session() as s:
        netsvc.report_host_vif(s, host, "gureum-compute", {"vif_type": "bridge"})
    with db.session() as s:
        bind_network(s, sid, host)
    with db.session(write=False) as s:
        inst = s.get(Instance, sid)
        assert inst is not None and inst.project_id == demo
        (vif,) = guest_spec(inst).network_info
    assert (vif["binding_host_id"], vif["vif_type"]) == (host, "bridge")
    assert vif["vif_details"] == {"bridge_name": "brq" + private["id"][:11]}
    with db.session() as s:
        unbind_network(s, sid)
        inst = s.get(Instance, sid)
        assert inst is not None and inst.network_info[0]["vif_type"] == "unbound"
    assert api.request("DELETE", f"/compute/v2.1/servers/{sid}", demo_token).status_code == 204
