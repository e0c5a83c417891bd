"""What a host enforces of security groups, over the Networking API: Neutron's rule
that a port's groups are all stateful or all stateless (409 SecurityGroupConflict),
a group in use keeps its statefulness (409 SecurityGroupInUse), the host state tells
the data plane which ports are stateless, and ``binding:vif_details.port_filter``
says what the host's network agent reports: true where its data plane enforces the
groups, false for the noop data plane."""

from __future__ import annotations

import uuid
from typing import Any

from gureum.netagent import L2_BINARY
from gureum.network import hoststate
from gureum.network import models as m
from gureum.network import service as netsvc
from tests.functional.network_helpers import N, create, error, get, listing, update
from tests.harness import Api, InProcessCloud

SG = f"{N}/security-groups"
MIXED = ("Error Cannot apply both stateful and stateless security groups on the same "
         "port at the same time while attempting the operation.")


def group(api: Api, token: str, name: str, stateful: bool) -> dict[str, Any]:
    r = api.request("POST", SG, token, json={"security_group": {"name": name,
                                                                "stateful": stateful}})
    assert r.status_code == 201, r.text
    return dict(r.json()["security_group"])


def change(api: Api, token: str, group_id: str, **body: Any) -> dict[str, Any]:
    r = api.request("PUT", f"{SG}/{group_id}", token, json={"security_group": body})
    assert r.status_code == 200, r.text
    return dict(r.json()["security_group"])


def private(api: Api, token: str) -> dict[str, Any]:
    return next(n for n in listing(api, token, "network") if n["name"] == "private")


def test_a_port_never_mixes_stateful_and_stateless_groups(
        api: Api, demo_token: str, admin_token: str, cloud: InProcessCloud) -> None:
    net = private(api, demo_token)
    loose = group(api, demo_token, f"loose-{uuid.uuid4().hex[:6]}", stateful=False)
    loose2 = group(api, demo_token, f"loose2-{uuid.uuid4().hex[:6]}", stateful=False)
    tight = group(api, demo_token, f"tight-{uuid.uuid4().hex[:6]}", stateful=True)
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "security_groups": [loose["id"], tight["id"]]}})
    assert error(r, 409, "SecurityGroupConflict")["message"] == MIXED
    port = create(api, demo_token, "port", network_id=net["id"],
                  security_groups=[loose["id"], loose2["id"]])
    r = api.request("PUT", f"{N}/ports/{port['id']}", demo_token,
                    json={"port": {"security_groups": [loose["id"], tight["id"]]}})
    assert error(r, 409, "SecurityGroupConflict")["message"] == MIXED
    assert sorted(get(api, demo_token, "port", port["id"])["security_groups"]) == \
        sorted([loose["id"], loose2["id"]])
    # A group in use keeps its statefulness (Neutron: SecurityGroupInUse); its name
    # may change, and an unused group may change both.
    r = api.request("PUT", f"{SG}/{loose['id']}", demo_token,
                    json={"security_group": {"stateful": True}})
    error(r, 409, "SecurityGroupInUse")
    renamed = change(api, demo_token, loose["id"], name="loose-x", stateful=False)
    assert renamed["stateful"] is False and renamed["name"] == "loose-x"
    assert change(api, demo_token, tight["id"], stateful=False)["stateful"] is False
    # Now all three are stateless: one port may have them all.
    both = update(api, demo_token, "port", port["id"],
                  security_groups=[loose["id"], loose2["id"], tight["id"]])
    assert len(both["security_groups"]) == 3

    # The host the port is bound to is told it is stateless; the project's default
    # group (stateful) makes another port stateful.
    bound = update(api, admin_token, "port", port["id"], **{"binding:host_id": "c01"})
    other = create(api, demo_token, "port", network_id=net["id"])
    update(api, admin_token, "port", other["id"], **{"binding:host_id": "c01"})
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        state = hoststate.network_state(s, "c01")
    flags = {p["id"]: p["stateful"] for p in state["ports"]}
    assert flags[bound["id"]] is False and flags[other["id"]] is True
    # A port given both kinds before the API refused it stays stateful, as enforced then.
    with cloud.cloud.db.session() as s:
        legacy = s.get_one(m.Port, other["id"])
        legacy.security_groups.append(s.get_one(m.SecurityGroup, loose["id"]))
    with cloud.cloud.db.session(write=False) as s:
        state = hoststate.network_state(s, "c01")
    assert {p["id"]: p["stateful"] for p in state["ports"]}[other["id"]] is True
    for ident in (port["id"], other["id"]):
        assert api.request("DELETE", f"{N}/ports/{ident}", demo_token).status_code == 204


def agent_port_filter(api: Api, token: str, host: str) -> Any:
    (agent,) = listing(api, token, "agent", f"host={host}&binary={L2_BINARY}")
    return agent["configurations"].get("port_filter")


def test_port_filter_is_what_the_hosts_network_agent_enforces(
        api: Api, admin_token: str, demo_token: str, cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    db, network = cloud.cloud.db, cloud.cloud.conductor.network
    net = private(api, demo_token)
    # c01 runs the noop data plane (the fake driver): its agent says it filters nothing.
    assert agent_port_filter(api, admin_token, "c01") is False
    port = create(api, demo_token, "port", network_id=net["id"])
    bound = update(api, admin_token, "port", port["id"], **{"binding:host_id": "c01"})
    assert bound["binding:vif_details"]["port_filter"] is False
    # A bridge host whose compute agent plugs taps (its own port_filter: false) and
    # whose network agent enforces the groups (linuxbridge with bridge netfilter).
    lb, plain = f"lb-{uuid.uuid4().hex[:6]}", f"nf-{uuid.uuid4().hex[:6]}"
    with db.session() as s:
        for host in (lb, plain):
            netsvc.report_host_vif(s, host, "gureum-compute", {
                "agent_type": "Linux bridge agent", "vif_type": "bridge",
                "vif_details": {"connectivity": "l2", "port_filter": False}})
    network.record_heartbeat(lb, {L2_BINARY: {"data_plane": "linuxbridge",
                                              "port_filter": True}}, True)
    network.record_heartbeat(plain, {L2_BINARY: {"data_plane": "noop",
                                                 "port_filter": False}}, True)
    assert agent_port_filter(api, admin_token, lb) is True
    moved = update(api, admin_token, "port", port["id"], **{"binding:host_id": lb})
    assert moved["binding:vif_type"] == "bridge"
    assert moved["binding:vif_details"] == {"connectivity": "l2", "port_filter": True,
                                            "bridge_name": "brq" + net["id"][:11]}
    # An inactive binding for another host is computed for that host, never copied.
    r = api.request("POST", f"{N}/ports/{port['id']}/bindings", admin_token,
                    json={"binding": {"host": plain}})
    assert r.status_code == 201, r.text
    assert r.json()["binding"]["vif_details"]["port_filter"] is False
    # The host's agent changes its word (bridge netfilter gone): the next binding says so.
    network.record_heartbeat(lb, {L2_BINARY: {"data_plane": "linuxbridge",
                                              "port_filter": False}}, False)
    update(api, admin_token, "port", port["id"], **{"binding:host_id": ""})
    again = update(api, admin_token, "port", port["id"], **{"binding:host_id": lb})
    assert again["binding:vif_details"]["port_filter"] is False
    assert api.request("DELETE", f"{N}/ports/{port['id']}", demo_token).status_code == 204
