"""Routers, floating IPs, port forwardings, agents and L3/DHCP scheduling over HTTP (S6).

A cloud of two hosts whose network agents heartbeat every 0.5 s and count as
dead after 3 s, so failover is seen in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gureum.netagent.dataplane.noop import NoopDataPlane
from tests.functional.network_helpers import (
    N,
    create,
    delete,
    error,
    get,
    listing,
    network_with_subnet,
    update,
)
from tests.harness import Api, InProcessCloud, make_settings

DOWN_TIME = 3.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    data_dir: Path = tmp_path_factory.mktemp("l3")
    c = InProcessCloud(make_settings(data_dir, network={
        "agent_report_interval": 0.5, "agent_down_time": DOWN_TIME,
        "reschedule_interval": 0.5, "resync_interval": 2.0, "data_plane": "noop"}),
        hosts=2).start()
    yield c
    c.stop()


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(interval)


def public(api: Api, token: str) -> dict[str, Any]:
    (net,) = listing(api, token, "network", "name=public")
    return net


def put(api: Api, token: str, path: str, body: Any, status: int = 200) -> dict[str, Any]:
    r = api.request("PUT", f"{N}/{path}", token, json=body)
    assert r.status_code == status, r.text
    return dict(r.json())


def l3_agents(api: Api, admin: str, router_id: str) -> list[dict[str, Any]]:
    r = api.request("GET", f"{N}/routers/{router_id}/l3-agents", admin)
    assert r.status_code == 200, r.text
    return list(r.json()["agents"])


def test_extensions_and_the_public_network(api: Api, demo_token: str) -> None:
    aliases = {x["alias"] for x in api.request("GET", f"{N}/extensions",
                                               demo_token).json()["extensions"]}
    assert {"router", "extraroute", "extraroute-atomic", "l3-ha", "agent",
            "l3_agent_scheduler", "dhcp_agent_scheduler", "router_availability_zone",
            "floating-ip-port-forwarding", "fip-port-details", "ext-gw-mode"} <= aliases
    net = public(api, demo_token)
    assert net["router:external"] is True
    (sn,) = listing(api, demo_token, "subnet", f"network_id={net['id']}")
    assert sn["cidr"] == "172.24.4.0/24" and sn["enable_dhcp"] is False


def test_router_gateway_interfaces_and_routes(api: Api, demo_token: str,
                                              admin_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "rnet", "192.168.50.0/24")
    r = create(api, demo_token, "router", name="r1")
    assert r["external_gateway_info"] is None and r["routes"] == [] and "ha" not in r
    assert r["status"] == "ACTIVE" and r["admin_state_up"] is True
    info = put(api, demo_token, f"routers/{r['id']}/add_router_interface",
               {"subnet_id": sn["id"]})
    assert info["subnet_id"] == sn["id"] and info["id"] == r["id"]
    port = get(api, demo_token, "port", info["port_id"])
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == r["id"]
    assert port["fixed_ips"] == [{"subnet_id": sn["id"], "ip_address": "192.168.50.1"}]
    again = api.request("PUT", f"{N}/routers/{r['id']}/add_router_interface", demo_token,
                        json={"subnet_id": sn["id"]})
    error(again, 400)
    pub = public(api, demo_token)
    gw = update(api, demo_token, "router", r["id"],
                external_gateway_info={"network_id": pub["id"]})
    info_gw = gw["external_gateway_info"]
    assert info_gw["network_id"] == pub["id"] and info_gw["enable_snat"] is True
    (fixed,) = info_gw["external_fixed_ips"]
    assert fixed["ip_address"].startswith("172.24.4.")
    gw_ports = listing(api, admin_token, "port", f"device_id={r['id']}&"
                       "device_owner=network:router_gateway")
    assert [p["network_id"] for p in gw_ports] == [pub["id"]]
    # Only admin decides SNAT.
    error(api.request("PUT", f"{N}/routers/{r['id']}", demo_token, json={"router": {
        "external_gateway_info": {"network_id": pub["id"], "enable_snat": False}}}), 403)
    snat = update(api, admin_token, "router", r["id"], external_gateway_info={
        "network_id": pub["id"], "enable_snat": False})
    assert snat["external_gateway_info"]["enable_snat"] is False
    assert snat["external_gateway_info"]["external_fixed_ips"] == [fixed]
    # Static routes: the nexthop must be on an attached subnet.
    bad = api.request("PUT", f"{N}/routers/{r['id']}", demo_token, json={"router": {
        "routes": [{"destination": "10.9.0.0/16", "nexthop": "10.1.1.1"}]}})
    assert "nexthop" in error(bad, 400, "InvalidRoutes")["message"]
    routed = update(api, demo_token, "router", r["id"],
                    routes=[{"destination": "10.9.0.0/16", "nexthop": "192.168.50.20"}])
    assert routed["routes"] == [{"destination": "10.9.0.0/16", "nexthop": "192.168.50.20"}]
    added = put(api, demo_token, f"routers/{r['id']}/add_extraroutes", {"router": {
        "routes": [{"destination": "10.8.0.0/16", "nexthop": "192.168.50.21"}]}})["router"]
    assert len(added["routes"]) == 2
    in_use = api.request("PUT", f"{N}/routers/{r['id']}/remove_router_interface", demo_token,
                         json={"subnet_id": sn["id"]})
    error(in_use, 409, "RouterInterfaceInUseByRoute")
    error(api.request("DELETE", f"{N}/routers/{r['id']}", demo_token), 409, "RouterInUse")
    update(api, demo_token, "router", r["id"], routes=[])
    gone = put(api, demo_token, f"routers/{r['id']}/remove_router_interface",
               {"subnet_id": sn["id"]})
    assert gone["port_id"] == info["port_id"]
    get(api, demo_token, "port", info["port_id"], 404)
    missing = api.request("PUT", f"{N}/routers/{r['id']}/remove_router_interface",
                          demo_token, json={"subnet_id": sn["id"]})
    error(missing, 404, "RouterInterfaceNotFoundForSubnet")
    # By port: a port of the user's becomes the interface.
    own = create(api, demo_token, "port", network_id=net["id"])
    info = put(api, demo_token, f"routers/{r['id']}/add_router_interface",
               {"port_id": own["id"]})
    assert get(api, demo_token, "port", own["id"])["device_owner"] == \
        "network:router_interface"
    put(api, demo_token, f"routers/{r['id']}/remove_router_interface", {"port_id": own["id"]})
    update(api, demo_token, "router", r["id"], external_gateway_info={})
    assert get(api, demo_token, "router", r["id"])["external_gateway_info"] is None
    assert not listing(api, admin_token, "port", f"device_id={r['id']}")
    delete(api, demo_token, "router", r["id"])
    error(api.request("GET", f"{N}/routers/{r['id']}", demo_token), 404, "RouterNotFound")


def test_bad_router_input_is_a_400(api: Api, demo_token: str, admin_token: str) -> None:
    r = create(api, demo_token, "router", name="rbad")
    for body in ({}, {"subnet_id": "x", "port_id": "y"}, {"bogus": 1}):
        error(api.request("PUT", f"{N}/routers/{r['id']}/add_router_interface", demo_token,
                          json=body), 400)
    error(api.request("POST", f"{N}/routers", demo_token,
                      json={"router": {"name": "x", "ha": True}}), 403)
    private = listing(api, demo_token, "network", "name=private")[0]
    error(api.request("PUT", f"{N}/routers/{r['id']}", demo_token, json={"router": {
        "external_gateway_info": {"network_id": private["id"]}}}), 400)
    error(api.request("PUT", f"{N}/routers/{r['id']}", demo_token, json={"router": {
        "routes": [{"destination": "nope", "nexthop": "1.2.3.4"}]}}), 400)
    ha = create(api, admin_token, "router", name="rha", ha=True)
    assert ha["ha"] is True and ha["distributed"] is False
    delete(api, admin_token, "router", ha["id"])
    delete(api, demo_token, "router", r["id"])


def test_floating_ips_and_port_forwardings(api: Api, demo_token: str) -> None:
    pub = public(api, demo_token)
    net, sn = network_with_subnet(api, demo_token, "fnet", "192.168.60.0/24")
    vm_port = create(api, demo_token, "port", network_id=net["id"],
                     device_owner="compute:nova", device_id="vm-x")
    fip = create(api, demo_token, "floatingip", floating_network_id=pub["id"])
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    assert fip["floating_ip_address"].startswith("172.24.4.")
    assert fip["port_details"] is None and fip["port_forwardings"] == []
    # Not reachable: no router between the port's subnet and public.
    unreachable = api.request("PUT", f"{N}/floatingips/{fip['id']}", demo_token,
                              json={"floatingip": {"port_id": vm_port["id"]}})
    error(unreachable, 404, "ExternalGatewayForFloatingIPNotFound")
    r = create(api, demo_token, "router", name="rf",
               external_gateway_info={"network_id": pub["id"]})
    put(api, demo_token, f"routers/{r['id']}/add_router_interface", {"subnet_id": sn["id"]})
    bound = update(api, demo_token, "floatingip", fip["id"], port_id=vm_port["id"])
    assert bound["status"] == "ACTIVE" and bound["router_id"] == r["id"]
    assert bound["fixed_ip_address"] == vm_port["fixed_ips"][0]["ip_address"]
    assert bound["port_details"]["device_id"] == "vm-x"
    listed = listing(api, demo_token, "floatingip", f"port_id={vm_port['id']}")
    assert [f["id"] for f in listed] == [fip["id"]]
    error(api.request("PUT", f"{N}/routers/{r['id']}", demo_token,
                      json={"router": {"external_gateway_info": {}}}),
          409, "RouterExternalGatewayInUseByFloatingIp")
    free = update(api, demo_token, "floatingip", fip["id"], port_id=None)
    assert free["status"] == "DOWN" and free["router_id"] is None and free["port_id"] is None
    # Port forwardings on a second floating IP.
    fip2 = create(api, demo_token, "floatingip", floating_network_id=pub["id"])
    pf_path = f"{N}/floatingips/{fip2['id']}/port_forwardings"
    pf_body = {"protocol": "tcp", "internal_port": 22, "external_port": 2222,
               "internal_port_id": vm_port["id"],
               "internal_ip_address": vm_port["fixed_ips"][0]["ip_address"]}
    made = api.request("POST", pf_path, demo_token, json={"port_forwarding": pf_body})
    assert made.status_code == 201, made.text
    pf = made.json()["port_forwarding"]
    assert pf["external_port"] == 2222 and pf["internal_port"] == 22
    dup = api.request("POST", pf_path, demo_token, json={"port_forwarding": pf_body})
    error(dup, 400)
    changed = api.request("PUT", f"{pf_path}/{pf['id']}", demo_token,
                          json={"port_forwarding": {"external_port": 2200}})
    assert changed.json()["port_forwarding"]["external_port"] == 2200
    assert [p["id"] for p in api.request("GET", pf_path, demo_token).json()[
        "port_forwardings"]] == [pf["id"]]
    assert api.request("DELETE", f"{pf_path}/{pf['id']}", demo_token).status_code == 204
    error(api.request("GET", f"{pf_path}/{pf['id']}", demo_token), 404,
          "PortForwardingNotFound")
    for f in (fip, fip2):
        delete(api, demo_token, "floatingip", f["id"])
    error(api.request("GET", f"{N}/floatingips/{fip['id']}", demo_token), 404,
          "FloatingIPNotFound")
    put(api, demo_token, f"routers/{r['id']}/remove_router_interface", {"subnet_id": sn["id"]})
    delete(api, demo_token, "router", r["id"])


def test_router_quota(api: Api, demo_token: str, admin_token: str) -> None:
    demo = api.request("GET", "/identity/v3/projects?name=demo", admin_token).json()[
        "projects"][0]["id"]
    r = api.request("PUT", f"{N}/quotas/{demo}", admin_token,
                    json={"quota": {"router": 0}})
    assert r.status_code == 200, r.text
    try:
        error(api.request("POST", f"{N}/routers", demo_token,
                          json={"router": {"name": "over"}}), 409, "OverQuota")
    finally:
        api.request("DELETE", f"{N}/quotas/{demo}", admin_token)


def test_agents_list_show_update(api: Api, admin_token: str, demo_token: str) -> None:
    agents = wait_for(lambda: [a for a in listing(api, admin_token, "agent")
                               if a["binary"].startswith("neutron-")])
    assert {(a["host"], a["agent_type"], a["binary"]) for a in agents} == {
        (h, t, b) for h in ("c01", "c02") for t, b in (
            ("L3 agent", "neutron-l3-agent"), ("DHCP agent", "neutron-dhcp-agent"),
            ("Linux bridge agent", "neutron-linuxbridge-agent"))}
    assert all(a["alive"] and a["admin_state_up"] for a in agents)
    l3 = next(a for a in agents if a["agent_type"] == "L3 agent")
    assert l3["availability_zone"] == "nova" and l3["topic"] == "l3_agent"
    assert l3["configurations"]["agent_mode"] == "legacy"
    updated = update(api, admin_token, "agent", l3["id"], description="rack 1")
    assert updated["description"] == "rack 1"
    assert get(api, admin_token, "agent", l3["id"])["description"] == "rack 1"
    # A member: Neutron's list leaves out what get_agent hides, a show is a 404.
    assert listing(api, demo_token, "agent") == []
    error(api.request("GET", f"{N}/agents/{l3['id']}", demo_token), 404, "AgentNotFound")
    error(api.request("PUT", f"{N}/agents/{l3['id']}", demo_token,
                      json={"agent": {"description": "mine"}}), 403)
    only_l3 = listing(api, admin_token, "agent", "agent_type=L3+agent")
    assert {a["host"] for a in only_l3} == {"c01", "c02"}
    error(api.request("GET", f"{N}/agents/nope", admin_token), 404, "AgentNotFound")


def test_routers_are_scheduled_and_moved_by_hand(api: Api, admin_token: str,
                                                 demo_token: str) -> None:
    _net, sn = network_with_subnet(api, demo_token, "snet", "192.168.70.0/24")
    r = create(api, demo_token, "router", name="rs")
    assert l3_agents(api, admin_token, r["id"]) == []  # nothing to carry yet
    put(api, demo_token, f"routers/{r['id']}/add_router_interface", {"subnet_id": sn["id"]})
    (first,) = l3_agents(api, admin_token, r["id"])
    assert first["agent_type"] == "L3 agent" and first["alive"]
    other = next(a for a in listing(api, admin_token, "agent", "agent_type=L3+agent")
                 if a["id"] != first["id"])
    hosted = api.request("POST", f"{N}/agents/{other['id']}/l3-routers", admin_token,
                         json={"router_id": r["id"]})
    error(hosted, 409, "RouterHostedByL3Agent")
    gone = api.request("DELETE", f"{N}/agents/{first['id']}/l3-routers/{r['id']}",
                       admin_token)
    assert gone.status_code == 204, gone.text
    added = api.request("POST", f"{N}/agents/{other['id']}/l3-routers", admin_token,
                        json={"router_id": r["id"]})
    assert added.status_code == 201, added.text
    assert [a["id"] for a in l3_agents(api, admin_token, r["id"])] == [other["id"]]
    routers = api.request("GET", f"{N}/agents/{other['id']}/l3-routers",
                          admin_token).json()["routers"]
    assert r["id"] in [x["id"] for x in routers]
    dhcp = listing(api, admin_token, "agent", "agent_type=DHCP+agent")[0]
    error(api.request("POST", f"{N}/agents/{dhcp['id']}/l3-routers", admin_token,
                      json={"router_id": r["id"]}), 404, "InvalidL3Agent")


def test_networks_with_dhcp_get_a_dhcp_agent_and_port(api: Api, admin_token: str,
                                                      demo_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "dnet", "192.168.80.0/24")

    def served() -> list[dict[str, Any]]:
        r = api.request("GET", f"{N}/networks/{net['id']}/dhcp-agents", admin_token)
        return list(r.json()["agents"])

    (agent,) = wait_for(served)
    assert agent["agent_type"] == "DHCP agent"
    (port,) = wait_for(lambda: listing(api, admin_token, "port",
                                       f"network_id={net['id']}&device_owner=network:dhcp"))
    assert port["fixed_ips"][0]["subnet_id"] == sn["id"]
    nets = api.request("GET", f"{N}/agents/{agent['id']}/dhcp-networks",
                       admin_token).json()["networks"]
    assert net["id"] in [n["id"] for n in nets]
    # by hand, as for routers: a second agent takes the network on and gives it up
    other = next(a for a in listing(api, admin_token, "agent", "agent_type=DHCP+agent")
                 if a["id"] != agent["id"])
    hosting = f"{N}/agents/{other['id']}/dhcp-networks"
    error(api.request("POST", hosting, demo_token, json={"network_id": net["id"]}), 403,
          "PolicyNotAuthorized")
    error(api.request("GET", hosting, demo_token), 403, "PolicyNotAuthorized")
    error(api.request("POST", hosting, admin_token, json={}), 400)
    added = api.request("POST", hosting, admin_token, json={"network_id": net["id"]})
    assert added.status_code == 201 and added.json() is None, added.text
    error(api.request("POST", hosting, admin_token, json={"network_id": net["id"]}), 409,
          "NetworkHostedByDHCPAgent")
    served_by = {a["id"] for a in served()}
    assert {agent["id"], other["id"]} <= served_by
    gone = api.request("DELETE", f"{hosting}/{net['id']}", admin_token)
    assert gone.status_code == 204, gone.text
    error(api.request("DELETE", f"{hosting}/{net['id']}", admin_token), 404,
          "NetworkNotHostedByDhcpAgent")
    assert net["id"] not in [n["id"] for n in api.request(
        "GET", hosting, admin_token).json()["networks"]]
    l3 = listing(api, admin_token, "agent", "agent_type=L3+agent")[0]
    error(api.request("POST", f"{N}/agents/{l3['id']}/dhcp-networks", admin_token,
                      json={"network_id": net["id"]}), 404, "InvalidDHCPAgent")


def _agent_of(cloud: InProcessCloud, host: str) -> Any:
    assert cloud.cloud is not None
    return next(a for a in cloud.cloud.network_agents if a.host == host)


def test_the_host_state_reaches_the_data_plane(api: Api, cloud: InProcessCloud,
                                               admin_token: str, demo_token: str) -> None:
    pub = public(api, demo_token)
    _net, sn = network_with_subnet(api, demo_token, "hnet", "192.168.90.0/24")
    r = create(api, demo_token, "router", name="rh",
               external_gateway_info={"network_id": pub["id"]})
    put(api, demo_token, f"routers/{r['id']}/add_router_interface", {"subnet_id": sn["id"]})
    (agent,) = l3_agents(api, admin_token, r["id"])
    plane = _agent_of(cloud, agent["host"]).plane
    assert isinstance(plane, NoopDataPlane)

    def carried() -> dict[str, Any] | None:
        state = plane.state
        found = [x for x in (state or {}).get("routers", []) if x["id"] == r["id"]]
        return found[0] if found and found[0]["interfaces"] else None

    state = wait_for(carried)
    assert state["external"]["network_id"] == pub["id"]
    assert state["external"]["gateway_ip"] == "172.24.4.1"
    assert state["external"]["bridge"].startswith("brq")
    assert state["interfaces"][0]["cidr"] == "192.168.90.0/24"
    assert state["enable_snat"] is True


def test_routers_move_off_an_agent_that_stops_heartbeating(
        api: Api, cloud: InProcessCloud, admin_token: str, demo_token: str) -> None:
    """S6: the L3 agent carrying a router goes silent; within agent_down_time and one
    scheduling pass the router is on the other host's agent, and the silent one shows
    dead."""
    _net, sn = network_with_subnet(api, demo_token, "failnet", "192.168.100.0/24")
    r = create(api, demo_token, "router", name="rfail")
    put(api, demo_token, f"routers/{r['id']}/add_router_interface", {"subnet_id": sn["id"]})
    (before,) = l3_agents(api, admin_token, r["id"])
    victim = _agent_of(cloud, before["host"])
    victim.heartbeat_paused = True
    try:
        started = time.monotonic()

        def moved() -> list[dict[str, Any]] | None:
            now = l3_agents(api, admin_token, r["id"])
            return now if now and now[0]["host"] != before["host"] else None

        (after,) = wait_for(moved, timeout=DOWN_TIME + 6)
        took = time.monotonic() - started
        assert took <= DOWN_TIME + 0.5 + 3, took  # down time + a pass (+ heartbeat slack)
        assert after["alive"] is True
        dead = get(api, admin_token, "agent", before["id"])
        assert dead["alive"] is False
        other_plane = _agent_of(cloud, after["host"]).plane
        wait_for(lambda: any(x["id"] == r["id"]
                             for x in (other_plane.state or {}).get("routers", [])))
    finally:
        victim.heartbeat_paused = False
    wait_for(lambda: get(api, admin_token, "agent", before["id"])["alive"])


def test_gateway_on_an_external_network_without_subnets(api: Api, admin_token: str) -> None:
    """Neutron takes it: the gateway port simply has no address (sdk cloud.TestRouter)."""
    ext = create(api, admin_token, "network", name="bare-ext", **{"router:external": True})
    r = create(api, admin_token, "router", name="bare-gw",
               external_gateway_info={"network_id": ext["id"]})
    info = r["external_gateway_info"]
    assert info["network_id"] == ext["id"] and info["external_fixed_ips"] == []
    assert info["enable_snat"] is True and r["status"] == "ACTIVE"
    delete(api, admin_token, "router", r["id"])
    delete(api, admin_token, "network", ext["id"])


def test_route_nexthop_on_the_gateway_subnet(api: Api, admin_token: str) -> None:
    """A nexthop on the external subnet counts as connected; the gateway's own address
    is refused as used by the router (Neutron looks at all the router's ports)."""
    ext = create(api, admin_token, "network", name="gw-ext", **{"router:external": True})
    create(api, admin_token, "subnet", network_id=ext["id"], ip_version=4,
           cidr="10.7.7.0/24")
    r = create(api, admin_token, "router", name="gw-routes",
               external_gateway_info={"network_id": ext["id"]})
    gw_ip = r["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    routes = [{"destination": "10.7.7.0/24", "nexthop": "10.7.7.99"}]
    assert update(api, admin_token, "router", r["id"], routes=routes)["routes"] == routes
    body = error(api.request("PUT", f"{N}/routers/{r['id']}", admin_token, json={
        "router": {"routes": [{"destination": "10.9.0.0/16", "nexthop": gw_ip}]}}), 400,
        "InvalidRoutes")
    assert "used by router" in body["message"]
    update(api, admin_token, "router", r["id"], routes=[])
    delete(api, admin_token, "router", r["id"])
    delete(api, admin_token, "network", ext["id"])


def test_a_router_advertises_an_ipv6_slaac_subnet(api: Api, cloud: InProcessCloud,
                                                  admin_token: str, demo_token: str) -> None:
    """A router's leg takes the gateway address of a SLAAC subnet (Neutron's exception
    to "no fixed address on an automatic-address subnet"), and the host state hands the
    data plane the subnet's modes and DNS servers for its router advertisements."""
    net = create(api, demo_token, "network", name="v6net")
    sn = create(api, demo_token, "subnet", network_id=net["id"], ip_version=6,
                cidr="fd00:77::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac",
                dns_nameservers=["fd00::53"], name="v6net-subnet")
    r = create(api, demo_token, "router", name="r6")
    info = put(api, demo_token, f"routers/{r['id']}/add_router_interface",
               {"subnet_id": sn["id"]})
    port = get(api, demo_token, "port", info["port_id"])
    assert port["fixed_ips"] == [{"subnet_id": sn["id"], "ip_address": "fd00:77::1"}]
    # Any other port still may not name an address there.
    other = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"subnet_id": sn["id"],
                                                "ip_address": "fd00:77::9"}]}})
    error(other, 400)
    (agent,) = l3_agents(api, admin_token, r["id"])
    plane = _agent_of(cloud, agent["host"]).plane
    assert isinstance(plane, NoopDataPlane)

    def carried() -> dict[str, Any] | None:
        found = [x for x in (plane.state or {}).get("routers", []) if x["id"] == r["id"]]
        return found[0] if found and found[0]["interfaces"] else None

    (leg,) = wait_for(carried)["interfaces"]
    assert leg["ipv6_subnets"] == [{"id": sn["id"], "cidr": "fd00:77::/64",
                                    "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac",
                                    "dns_nameservers": ["fd00::53"]}]
