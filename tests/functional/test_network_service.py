"""The service Compute calls: validate, allocate, bind, unbind, deallocate, find by IP.

Each test opens its own transaction on the cloud's database, as the conductor
does, and checks what the Networking API shows afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gureum.errors import Conflict, Forbidden, InvalidInput
from gureum.network import models as m
from gureum.network import service as netsvc
from tests.functional.network_helpers import (
    create,
    get,
    listing,
    network_with_subnet,
    project_id,
)
from tests.harness import Api, InProcessCloud


@pytest.fixture
def session(cloud: InProcessCloud) -> Iterator[Session]:
    """A read-only transaction: writes through the API must not wait for it."""
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        yield s


@pytest.fixture(scope="module")
def demo(api: Api, admin_token: str) -> str:
    return project_id(api, admin_token, "demo")


@pytest.fixture(scope="module")
def private(api: Api, demo_token: str) -> str:
    return str(next(n for n in listing(api, demo_token, "network")
                if n["name"] == "private")["id"])


def instance() -> str:
    return str(uuid.uuid4())


def test_validate_accepts_what_nova_accepts(session: Session, demo: str, private: str
                                           ) -> None:
    for requests in ("none", "auto", [], [{"uuid": private}],
                     [{"uuid": private, "fixed_ip": "10.0.0.40"}, {"uuid": private}]):
        netsvc.validate_requested_networks(session, demo, False, requests)


def test_validate_answers_with_novas_errors(api: Api, cloud: InProcessCloud, demo: str,
                                            private: str, admin_token: str,
                                            demo_token: str) -> None:
    theirs = create(api, admin_token, "network", name="admins-own")
    used = create(api, demo_token, "port", network_id=private, device_id="someone")
    taken = used["fixed_ips"][0]["ip_address"]
    missing = str(uuid.uuid4())
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        def check(requests: Any, project: str = demo, is_admin: bool = False) -> None:
            netsvc.validate_requested_networks(s, project, is_admin, requests)

        with pytest.raises(InvalidInput, match=f"^Network {missing} could not be found.$"):
            check([{"uuid": missing}])
        with pytest.raises(InvalidInput, match=f"^Port id {missing} could not be found.$"):
            check([{"port": missing}])
        # Another project's private network does not exist for demo.
        with pytest.raises(InvalidInput, match="could not be found"):
            check([{"uuid": theirs["id"]}])
        with pytest.raises(InvalidInput, match="requires a subnet"):
            check([{"uuid": theirs["id"]}], is_admin=True)
        with pytest.raises(Conflict, match=f"^Port {used['id']} is still in use.$"):
            check([{"port": used["id"]}])
        with pytest.raises(InvalidInput, match=f"Fixed IP address {taken} is already in use"):
            check([{"uuid": private, "fixed_ip": taken}])
        with pytest.raises(InvalidInput, match="not a valid IP"):
            check([{"uuid": private, "fixed_ip": "192.0.2.1"}])
        with pytest.raises(InvalidInput):
            check([{"tag": "x"}])
        with pytest.raises(InvalidInput, match="Unable to automatically allocate a network"):
            check("auto", project="a-project-with-nothing")
        check([], project="a-project-with-nothing")
        check(None, project="a-project-with-nothing")


def test_auto_with_two_networks_is_ambiguous(api: Api, admin_token: str,
                                             cloud: InProcessCloud) -> None:
    admin_project = project_id(api, admin_token, "admin")
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        s.add_all([m.Network(project_id=admin_project, name=f"amb{i}", network_type="local")
                   for i in range(2)])
        s.flush()
        with pytest.raises(Conflict, match="More than one possible network found"):
            netsvc.validate_requested_networks(s, admin_project, True, "auto")
        s.rollback()


def test_port_quota_is_checked_for_every_instance(api: Api, admin_token: str,
                                                  cloud: InProcessCloud, private: str,
                                                  demo: str) -> None:
    r = api.request("PUT", f"/network/v2.0/quotas/{demo}", admin_token,
                    json={"quota": {"port": 1}})
    assert r.status_code == 200
    try:
        assert cloud.cloud is not None
        with cloud.cloud.db.session() as s, pytest.raises(Forbidden, match="Maximum number"):
            netsvc.validate_requested_networks(s, demo, False, [{"uuid": private}], count=50)
    finally:
        api.request("DELETE", f"/network/v2.0/quotas/{demo}", admin_token)


def test_allocate_bind_and_deallocate(cloud: InProcessCloud, api: Api, admin_token: str,
                                      demo_token: str, demo: str, private: str) -> None:
    assert cloud.cloud is not None
    db = cloud.cloud.db
    net, sn = network_with_subnet(api, demo_token, "svc-lan", "172.30.0.0/24")
    mine = create(api, demo_token, "port", network_id=net["id"], name="keep-me",
                  fixed_ips=[{"ip_address": "172.30.0.77"}])
    vm = instance()
    with db.session() as s:
        info = netsvc.allocate_for_instance(
            s, instance_id=vm, project_id=demo, host="c01",
            requests=[{"uuid": private, "fixed_ip": "10.0.0.50"}, {"port": mine["id"]},
                      {"uuid": net["id"]}])
    assert [v["network_name"] for v in info] == ["private", "svc-lan", "svc-lan"]
    first, kept, third = info
    assert first["fixed_ips"] == [{"ip_address": "10.0.0.50",
                                   "subnet_id": first["fixed_ips"][0]["subnet_id"],
                                   "version": 4}]
    assert first["mtu"] == 1450 and first["vif_type"] == "ovs"
    assert first["binding_host_id"] == "c01" and first["preexisting"] is False
    assert kept["port_id"] == mine["id"] and kept["preexisting"] is True
    assert third["fixed_ips"][0]["subnet_id"] == sn["id"]
    assert first["subnets"][0]["gateway_ip"] == "10.0.0.1"
    port = get(api, admin_token, "port", first["port_id"])
    assert port["device_id"] == vm and port["device_owner"] == "compute:nova"
    assert port["binding:host_id"] == "c01" and port["status"] == "ACTIVE"
    # c01's network agent runs the noop data plane: no security groups enforced there.
    assert port["binding:vif_details"]["port_filter"] is False
    # A retried allocation gets the same ports.
    with db.session() as s:
        again = netsvc.allocate_for_instance(s, instance_id=vm, project_id=demo,
                                             requests=[{"uuid": private}])
        assert [v["port_id"] for v in again] == [v["port_id"] for v in info]
        assert netsvc.network_info_for_instance(s, vm) == again
        assert netsvc.instance_ids_with_ip(s, "10.0.0.50") == [vm]
        assert vm in netsvc.instance_ids_with_ip(s, r"172\.30\.0\.7")
        assert vm in netsvc.instance_ids_with_ip(s, "172.30.0.")
        assert netsvc.instance_ids_with_ip(s, "10.0.0.5[") == []  # not a regex: a literal
    # Unbind, then deallocate: Compute's ports go, the user's port stays (S11).
    with db.session() as s:
        netsvc.unbind_ports(s, vm)
        assert all(v["binding_host_id"] is None and v["vif_type"] == "unbound"
                   for v in netsvc.network_info_for_instance(s, vm))
    with db.session() as s:
        netsvc.deallocate_for_instance(s, vm)
        assert netsvc.network_info_for_instance(s, vm) == []
    get(api, admin_token, "port", first["port_id"], status=404)
    get(api, admin_token, "port", third["port_id"], status=404)
    left = get(api, admin_token, "port", mine["id"])
    assert (left["device_id"], left["device_owner"], left["binding:host_id"]) == ("", "", "")
    assert left["fixed_ips"][0]["ip_address"] == "172.30.0.77" and left["status"] == "DOWN"
    # ...and the kept port can go to the next server, with its address (S11).
    with db.session() as s:
        info = netsvc.allocate_for_instance(s, instance_id=instance(), project_id=demo,
                                            requests=[{"port": mine["id"]}])
    assert info[0]["fixed_ips"][0]["ip_address"] == "172.30.0.77"


def test_binding_is_computed_for_the_new_host_never_copied(cloud: InProcessCloud,
                                                            demo: str, private: str) -> None:
    """S5: a port whose stored vif_details went empty gets them back when bound again."""
    assert cloud.cloud is not None
    db = cloud.cloud.db
    vm = instance()
    with db.session() as s:
        info = netsvc.allocate_for_instance(s, instance_id=vm, project_id=demo,
                                            requests=[{"uuid": private}], host="c01")
        port = s.get(m.Port, info[0]["port_id"])
        assert port is not None
        binding = port.active_binding()
        assert binding is not None
        binding.vif_details = {}  # what an old upgrade left behind
    with db.session() as s:
        netsvc.bind_ports(s, vm, "c02")
        (vif,) = netsvc.network_info_for_instance(s, vm)
        assert vif["binding_host_id"] == "c02"
        assert vif["vif_details"]["port_filter"] is True
        port = s.get(m.Port, vif["port_id"])
        assert port is not None and [b.host for b in port.bindings] == ["c02"]
        netsvc.deallocate_for_instance(s, vm)


def test_failed_allocation_leaves_nothing(cloud: InProcessCloud, api: Api, demo_token: str,
                                          demo: str) -> None:
    assert cloud.cloud is not None
    net, _ = network_with_subnet(api, demo_token, "svc-full", "172.31.0.0/30")
    vm = instance()
    with pytest.raises(Conflict, match="No more IP addresses"), \
            cloud.cloud.db.session() as s:
        netsvc.allocate_for_instance(s, instance_id=vm, project_id=demo,
                                     requests=[{"uuid": net["id"]}, {"uuid": net["id"]}])
    assert listing(api, demo_token, "port", f"device_id={vm}") == []


def test_auto_picks_the_projects_network(cloud: InProcessCloud, api: Api, admin_token: str
                                         ) -> None:
    project = uuid.uuid4().hex
    net = create(api, admin_token, "network", name="only", project_id=project)
    create(api, admin_token, "subnet", network_id=net["id"], ip_version=4,
           cidr="172.29.0.0/24", project_id=project)
    shared = create(api, admin_token, "network", name="everyones", shared=True)
    create(api, admin_token, "subnet", network_id=shared["id"], ip_version=4,
           cidr="172.28.0.0/24")
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        info: list[dict[str, Any]] = netsvc.allocate_for_instance(
            s, instance_id=instance(), project_id=project, requests="auto",
            availability_zone="zone-b")
        assert [v["network_id"] for v in info] == [net["id"]]
        port = s.get(m.Port, info[0]["port_id"])
        assert port is not None and port.device_owner == "compute:zone-b"
        assert port.project_id == project
        # A project with no network of its own gets the shared one.
        info = netsvc.allocate_for_instance(s, instance_id=instance(),
                                            project_id=uuid.uuid4().hex, requests="auto")
        assert [v["network_id"] for v in info] == [shared["id"]]
        assert netsvc.allocate_for_instance(s, instance_id=instance(), project_id=project,
                                            requests="none") == []
        s.rollback()
    # Leave no shared network behind for the other tests of this module.
    r = api.request("DELETE", f"/network/v2.0/networks/{shared['id']}", admin_token)
    assert r.status_code == 204, r.text


def test_conductor_allocates_with_the_rights_the_api_checked(cloud: InProcessCloud, api: Api,
                                                             admin_token: str, demo: str,
                                                             private: str) -> None:
    """An admin's server on demo's network: validated at the API, allocated as asked."""
    admin_project = project_id(api, admin_token, "admin")
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        netsvc.validate_requested_networks(s, admin_project, True, [{"uuid": private}])
        with pytest.raises(InvalidInput, match="could not be found"):
            netsvc.allocate_for_instance(s, instance_id=instance(), project_id=admin_project,
                                         requests=[{"uuid": private}], is_admin=False)
        info = netsvc.allocate_for_instance(s, instance_id=instance(),
                                            project_id=admin_project,
                                            requests=[{"uuid": private}])
        assert info[0]["network_id"] == private
        port = s.get(m.Port, info[0]["port_id"])
        assert port is not None and port.project_id == admin_project
        s.rollback()
