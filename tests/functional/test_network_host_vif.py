"""Bindings follow what a host reports about how it plugs ports (network/bindings.py).

A compute host whose driver plugs ports itself reports its VIF mechanism with
its resources; the conductor records it as the host's agent, and every port
bound to that host from then on gets that ``binding:vif_type`` and
``binding:vif_details`` (a bridge host: the network's ``brq…`` bridge). A host
that reported nothing keeps the Open vSwitch binding.
"""

from __future__ import annotations

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
