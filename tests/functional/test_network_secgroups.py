"""Security groups and rules over the Networking API, ports' groups, and the rules the
data plane enforces for a port (``secgroups.rules_for_port``)."""

from __future__ import annotations

from typing import Any

from gureum.network import models as m
from gureum.network import secgroups
from tests.functional.network_helpers import (
    N,
    create,
    error,
    network_with_subnet,
    update,
    user_in_project,
)
from tests.harness import Api, InProcessCloud

SG = f"{N}/security-groups"
SGR = f"{N}/security-group-rules"


def sg(api: Api, token: str, status: int = 201, **body: Any) -> dict[str, Any]:
    r = api.request("POST", SG, token, json={"security_group": body})
    assert r.status_code == status, r.text
    return dict(r.json()["security_group"] if status == 201 else r.json())


def rule(api: Api, token: str, group_id: str, status: int = 201, **body: Any
         ) -> dict[str, Any]:
    body.setdefault("direction", "ingress")
    r = api.request("POST", SGR, token, json={"security_group_rule": {
        "security_group_id": group_id, **body}})
    assert r.status_code == status, r.text
    return dict(r.json()["security_group_rule"] if status == 201 else
                r.json()["NeutronError"])


def groups(api: Api, token: str, query: str = "") -> list[dict[str, Any]]:
    r = api.request("GET", f"{SG}?{query}", token)
    assert r.status_code == 200, r.text
    return list(r.json()["security_groups"])


def test_default_group_appears_on_first_list_with_neutrons_rules(
        api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "sg-first", "sg-first-project")
    (default,) = groups(api, token)
    assert groups(api, token) == [default]  # made once
    assert default["name"] == "default" and default["description"] == "Default security group"
    assert default["stateful"] is True and default["shared"] is False
    assert default["revision_number"] >= 1 and default["tags"] == []
    shapes = sorted((r["direction"], r["ethertype"], r["remote_group_id"], r["protocol"],
                     r["remote_ip_prefix"]) for r in default["security_group_rules"])
    assert shapes == [("egress", "IPv4", None, None, None), ("egress", "IPv6", None, None, None),
                      ("ingress", "IPv4", default["id"], None, None),
                      ("ingress", "IPv6", default["id"], None, None)]
    assert all(r["belongs_to_default_sg"] for r in default["security_group_rules"])
    r = api.request("DELETE", f"{SG}/{default['id']}", token)
    error(r, 409, "SecurityGroupCannotRemoveDefault")
    r = api.request("PUT", f"{SG}/{default['id']}", token,
                    json={"security_group": {"name": "renamed"}})
    error(r, 409, "SecurityGroupCannotUpdateDefault")
    changed = api.request("PUT", f"{SG}/{default['id']}", token,
                          json={"security_group": {"description": "mine"}}).json()
    assert changed["security_group"]["description"] == "mine"
    error(api.request("POST", SG, token, json={"security_group": {"name": "default"}}), 409,
          "SecurityGroupDefaultAlreadyExists")


def test_group_crud_filters_tags_and_other_projects(api: Api, demo_token: str,
                                                      admin_token: str) -> None:
    web = sg(api, demo_token, name="web", description="web servers", tags=["a"])
    assert web["tags"] == ["a"] and web["stateful"] is True
    assert sorted((r["direction"], r["ethertype"]) for r in web["security_group_rules"]) == [
        ("egress", "IPv4"), ("egress", "IPv6")]
    assert not any(r["belongs_to_default_sg"] for r in web["security_group_rules"])
    assert [g["id"] for g in groups(api, demo_token, "name=web")] == [web["id"]]
    assert [g["id"] for g in groups(api, demo_token, "tags=a")] == [web["id"]]
    assert groups(api, demo_token, "name=web&stateful=false") == []
    r = api.request("PUT", f"{SG}/{web['id']}/tags/b", demo_token)
    assert r.status_code == 201
    got = api.request("GET", f"{SG}/{web['id']}", demo_token).json()["security_group"]
    assert got["tags"] == ["a", "b"] and got["revision_number"] > web["revision_number"]
    changed = api.request("PUT", f"{SG}/{web['id']}", demo_token, json={"security_group": {
        "name": "web2", "stateful": False}}).json()["security_group"]
    assert changed["name"] == "web2" and changed["stateful"] is False
    error(api.request("PUT", f"{SG}/{web['id']}", demo_token,
                      json={"security_group": {"id": "x"}}), 400)
    other = user_in_project(api, admin_token, "sg-other", "sg-other-project")
    error(api.request("GET", f"{SG}/{web['id']}", other), 404, "SecurityGroupNotFound")
    error(api.request("DELETE", f"{SG}/{web['id']}", other), 404)
    assert web["id"] not in [g["id"] for g in groups(api, other)]
    assert web["id"] in [g["id"] for g in groups(api, admin_token)]
    error(api.request("POST", SG, demo_token, json={"security_group": {"nope": 1}}), 400)
    r = api.request("DELETE", f"{SG}/{web['id']}", demo_token)
    assert r.status_code == 204
    error(api.request("GET", f"{SG}/{web['id']}", demo_token), 404)


def test_rule_validation(api: Api, demo_token: str) -> None:
    g = sg(api, demo_token, name="rules")["id"]
    ssh = rule(api, demo_token, g, protocol="tcp", port_range_min=22, port_range_max=22,
               remote_ip_prefix="0.0.0.0/0")
    assert (ssh["ethertype"], ssh["protocol"], ssh["port_range_min"]) == ("IPv4", "tcp", 22)
    assert ssh["normalized_cidr"] == "0.0.0.0/0" and ssh["remote_group_id"] is None
    dup = rule(api, demo_token, g, 409, protocol="6", port_range_min=22, port_range_max=22)
    assert dup["type"] == "SecurityGroupRuleExists" and ssh["id"] in dup["message"]
    host = rule(api, demo_token, g, protocol="udp", port_range_min=53, port_range_max=53,
                remote_ip_prefix="10.1.2.3")
    assert host["remote_ip_prefix"] == "10.1.2.3/32"
    wide = rule(api, demo_token, g, protocol="icmp", port_range_min=8, port_range_max=0,
                remote_ip_prefix="10.9.9.9/24")
    assert wide["normalized_cidr"] == "10.9.9.0/24"
    v6 = rule(api, demo_token, g, ethertype="IPv6", protocol="icmp")
    assert (v6["ethertype"], v6["protocol"]) == ("IPv6", "ipv6-icmp")
    assert rule(api, demo_token, g, 409, ethertype="IPv6", protocol="58")["type"] == \
        "SecurityGroupRuleExists"
    rule(api, demo_token, g, protocol=132)  # a number: kept as a string
    for bad, kind in (
            ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20},
             "SecurityGroupInvalidPortRange"),
            ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 20},
             "SecurityGroupInvalidPortValue"),
            ({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000},
             "SecurityGroupInvalidPortValue"),
            ({"port_range_min": 1, "port_range_max": 2},
             "SecurityGroupProtocolRequiredWithPorts"),
            ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2},
             "SecurityGroupInvalidProtocolForPort"),
            ({"protocol": "icmp", "port_range_min": 300}, "SecurityGroupInvalidIcmpValue"),
            ({"protocol": "icmp", "port_range_max": 3}, "SecurityGroupMissingIcmpType"),
            ({"protocol": "bogus"}, "SecurityGroupRuleInvalidProtocol"),
            ({"protocol": 256}, "SecurityGroupRuleInvalidProtocol"),
            ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
             "SecurityGroupRuleParameterConflict"),
            ({"ethertype": "IPv4", "protocol": "ipv6-icmp"},
             "SecurityGroupEthertypeConflictWithProtocol"),
            ({"ethertype": "IPv5"}, "SecurityGroupRuleInvalidEtherType"),
            ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": g},
             "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
            ({"remote_ip_prefix": "nonsense"}, "HTTPBadRequest"),
            ({"direction": "sideways"}, "HTTPBadRequest")):
        assert rule(api, demo_token, g, 400, **bad)["type"] == kind, bad
    missing = rule(api, demo_token, "f" * 36, 404)
    assert missing["type"] == "SecurityGroupNotFound"
    assert rule(api, demo_token, g, 404, remote_group_id="f" * 36)["type"] == \
        "SecurityGroupNotFound"
    r = api.request("GET", f"{SGR}?security_group_id={g}&protocol=tcp", demo_token)
    assert [x["id"] for x in r.json()["security_group_rules"]] == [ssh["id"]]
    r = api.request("PUT", f"{SGR}/{ssh['id']}", demo_token,
                    json={"security_group_rule": {"description": "ssh"}})
    assert r.json()["security_group_rule"]["description"] == "ssh"
    r = api.request("PUT", f"{SGR}/{ssh['id']}", demo_token,
                    json={"security_group_rule": {"port_range_min": 23}})
    error(r, 400)
    assert api.request("DELETE", f"{SGR}/{ssh['id']}", demo_token).status_code == 204
    error(api.request("GET", f"{SGR}/{ssh['id']}", demo_token), 404,
          "SecurityGroupRuleNotFound")


def test_ports_get_the_default_group_and_groups_in_use_stay(
        api: Api, demo_token: str) -> None:
    net, _ = network_with_subnet(api, demo_token, "sgnet", "192.168.70.0/24")
    (default,) = groups(api, demo_token, "name=default")
    port = create(api, demo_token, "port", network_id=net["id"])
    assert port["security_groups"] == [default["id"]]
    app = sg(api, demo_token, name="app")
    bare = create(api, demo_token, "port", network_id=net["id"], security_groups=[])
    assert bare["security_groups"] == []
    mine = create(api, demo_token, "port", network_id=net["id"],
                  security_groups=[app["id"]])
    assert mine["security_groups"] == [app["id"]]
    r = api.request("GET", f"{N}/ports?security_groups={app['id']}", demo_token)
    assert [p["id"] for p in r.json()["ports"]] == [mine["id"]]
    error(api.request("DELETE", f"{SG}/{app['id']}", demo_token), 409, "SecurityGroupInUse")
    r = api.request("POST", f"{N}/ports", demo_token, json={"port": {
        "network_id": net["id"], "port_security_enabled": False,
        "security_groups": [app["id"]]}})
    error(r, 400, "PortSecurityAndIPRequiredForSecurityGroups")
    open_port = create(api, demo_token, "port", network_id=net["id"],
                       port_security_enabled=False)
    assert open_port["security_groups"] == []
    r = api.request("PUT", f"{N}/ports/{mine['id']}", demo_token,
                    json={"port": {"port_security_enabled": False}})
    error(r, 409, "PortSecurityPortHasSecurityGroup")
    both = update(api, demo_token, "port", mine["id"], security_groups=[app["id"],
                                                                         default["id"]])
    assert sorted(both["security_groups"]) == sorted([app["id"], default["id"]])
    off = update(api, demo_token, "port", mine["id"], security_groups=[],
                 port_security_enabled=False)
    assert off["security_groups"] == [] and off["port_security_enabled"] is False
    r = api.request("PUT", f"{N}/ports/{bare['id']}", demo_token,
                    json={"port": {"security_groups": ["f" * 36]}})
    error(r, 404, "SecurityGroupNotFound")
    assert api.request("DELETE", f"{N}/ports/{mine['id']}", demo_token).status_code == 204
    assert api.request("DELETE", f"{SG}/{app['id']}", demo_token).status_code == 204


def test_quotas_count_groups_and_rules(api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "sg-quota", "sg-quota-project")
    pid = api.request("GET", "/identity/v3/projects?name=sg-quota-project",
                      admin_token).json()["projects"][0]["id"]
    groups(api, token)  # the default group: 1 group, 4 rules
    r = api.request("PUT", f"{N}/quotas/{pid}", admin_token, json={"quota": {
        "security_group": 2, "security_group_rule": 7}})
    assert r.status_code == 200, r.text
    g = sg(api, token, name="one")  # 2 groups, 6 rules
    rule(api, token, g["id"], protocol="tcp", port_range_min=80, port_range_max=80)
    assert rule(api, token, g["id"], 409, protocol="tcp", port_range_min=81,
                port_range_max=81)["type"] == "OverQuota"
    error(api.request("POST", SG, token, json={"security_group": {"name": "two"}}), 409,
          "OverQuota")
    details = api.request("GET", f"{N}/quotas/{pid}/details", admin_token).json()["quota"]
    assert details["security_group"]["used"] == 2
    assert details["security_group_rule"]["used"] == 7


def _port(s: Any, port_id: str) -> m.Port:
    return s.get_one(m.Port, port_id)


def test_rules_for_port_expands_remote_groups(api: Api, demo_token: str,
                                              cloud: InProcessCloud) -> None:
    net, _ = network_with_subnet(api, demo_token, "enforce", "192.168.80.0/24")
    web = sg(api, demo_token, name="enforce-web")
    db = sg(api, demo_token, name="enforce-db")
    rule(api, demo_token, db["id"], protocol="tcp", port_range_min=5432,
         port_range_max=5432, remote_group_id=web["id"])
    rule(api, demo_token, db["id"], ethertype="IPv6", protocol="icmp",
         remote_group_id=web["id"])
    rule(api, demo_token, db["id"], protocol="icmp", port_range_min=8,
         remote_ip_prefix="10.0.0.7/8")
    w1 = create(api, demo_token, "port", network_id=net["id"], security_groups=[web["id"]],
                fixed_ips=[{"ip_address": "192.168.80.10"}],
                allowed_address_pairs=[{"ip_address": "172.16.0.0/24"}])
    create(api, demo_token, "port", network_id=net["id"], security_groups=[web["id"]],
           fixed_ips=[{"ip_address": "192.168.80.11"}])
    dbp = create(api, demo_token, "port", network_id=net["id"], security_groups=[db["id"]])
    nosec = create(api, demo_token, "port", network_id=net["id"], security_groups=[],
                   port_security_enabled=False)
    with cloud.cloud.db.session() as s:
        got = secgroups.rules_for_port(s, _port(s, dbp["id"]))
        open_rules = secgroups.rules_for_port(s, _port(s, nosec["id"]))
        web_rules = secgroups.rules_for_port(s, _port(s, w1["id"]))

    def r(direction: str, ether: str, proto: str | None, low: int | None, high: int | None,
          prefix: str | None) -> dict[str, Any]:
        return {"direction": direction, "ethertype": ether, "protocol": proto,
                "port_range_min": low, "port_range_max": high, "remote_ip_prefix": prefix}

    # the IPv6 rule from the web group allows nothing: the group has no IPv6 members
    assert sorted(got, key=str) == sorted([
        r("egress", "IPv4", None, None, None, None), r("egress", "IPv6", None, None, None, None),
        r("ingress", "IPv4", "tcp", 5432, 5432, "192.168.80.10/32"),
        r("ingress", "IPv4", "tcp", 5432, 5432, "172.16.0.0/24"),
        r("ingress", "IPv4", "tcp", 5432, 5432, "192.168.80.11/32"),
        r("ingress", "IPv4", "icmp", 8, None, "10.0.0.0/8")], key=str)
    assert open_rules == secgroups.NO_FILTERING
    assert {x["direction"] for x in web_rules} == {"egress"}


def test_odd_input_is_a_400_never_a_500(api: Api, demo_token: str) -> None:
    g = sg(api, demo_token, name="odd")["id"]
    for body in ({"port_range_min": "abc", "protocol": "tcp"}, {"protocol": True},
                 {"protocol": 3.5}, {"ethertype": 4}, {"remote_ip_prefix": "10.0.0.0/33"},
                 {"remote_ip_prefix": 7}, {"remote_group_id": ["x"]},
                 {"port_range_min": [1], "protocol": "tcp"}, {"description": "x" * 256},
                 {"protocol": "tcp\x00"}, {"remote_address_group_id": "x"}):
        r = api.request("POST", SGR, demo_token, json={"security_group_rule": {
            "security_group_id": g, "direction": "ingress", **body}})
        assert r.status_code == 400, (body, r.text)
    for body in ({"name": 5}, {"stateful": "maybe"}, {"name": "x" * 256}, {"tags": "a"}):
        r = api.request("POST", SG, demo_token, json={"security_group": body})
        assert r.status_code == 400, (body, r.text)
    for raw in ([], "x", {"security_group": []}, {"security_groups": [{"name": "a"}, 5]}):
        r = api.request("POST", SG, demo_token, json=raw)
        assert r.status_code == 400, (raw, r.text)
    r = api.request("POST", SG, demo_token, json={"security_groups": [
        {"name": "bulk1"}, {"name": "bulk2"}]})
    assert r.status_code == 201 and len(r.json()["security_groups"]) == 2
    r = api.request("GET", f"{SG}?stateful=maybe", demo_token)
    assert r.status_code == 400
    r = api.request("GET", f"{SG}?limit=1", demo_token)
    assert r.status_code == 200 and len(r.json()["security_groups"]) == 1
    assert r.json()["security_groups_links"][0]["rel"] == "next"
    r = api.request("GET", f"{SGR}?port_range_min=x", demo_token)
    assert r.status_code == 400
    r = api.request("GET", f"{SGR}?bogus=1", demo_token)
    assert r.status_code == 400
    some_rule = api.request("GET", SGR, demo_token).json()["security_group_rules"][0]
    error(api.request("GET", f"{SGR}/{some_rule['id']}/tags", demo_token), 404)  # no tags


DSGR = f"{N}/default-security-group-rules"


def test_default_rules_are_templates_of_new_groups(api: Api, demo_token: str,
                                                   admin_token: str) -> None:
    seeded = api.request("GET", DSGR, demo_token).json()["default_security_group_rules"]
    shapes = sorted((t["direction"], t["ethertype"], t["remote_group_id"],
                     t["used_in_default_sg"], t["used_in_non_default_sg"]) for t in seeded)
    assert shapes == [("egress", "IPv4", None, True, True), ("egress", "IPv6", None, True, True),
                      ("ingress", "IPv4", "PARENT", True, False),
                      ("ingress", "IPv6", "PARENT", True, False)]
    body = {"default_security_group_rule": {"direction": "ingress", "protocol": "tcp",
                                            "port_range_min": 22, "port_range_max": 22}}
    error(api.request("POST", DSGR, demo_token, json=body), 403)
    r = api.request("POST", DSGR, admin_token, json=body)
    assert r.status_code == 201, r.text
    ssh = r.json()["default_security_group_rule"]
    assert (ssh["used_in_default_sg"], ssh["used_in_non_default_sg"]) == (False, True)
    dup = api.request("POST", DSGR, admin_token, json=body)
    assert ssh["id"] in error(dup, 409, "DefaultSecurityGroupRuleExists")["message"]
    r = api.request("POST", DSGR, admin_token, json={"default_security_group_rule": {
        "direction": "ingress", "protocol": "icmp", "used_in_default_sg": True,
        "used_in_non_default_sg": False}})
    icmp = r.json()["default_security_group_rule"]
    error(api.request("POST", DSGR, admin_token, json={"default_security_group_rule": {
        "direction": "ingress", "protocol": "tcp", "port_range_min": 9,
        "port_range_max": 1}}), 400, "SecurityGroupInvalidPortRange")
    try:
        custom = sg(api, demo_token, name="templated")
        assert sorted(str(r["protocol"]) for r in custom["security_group_rules"]) == [
            "None", "None", "tcp"]
        token = user_in_project(api, admin_token, "sg-templ", "sg-templ-project")
        (default,) = groups(api, token)
        assert sorted(str(r["protocol"]) for r in default["security_group_rules"]) == [
            "None", "None", "None", "None", "icmp"]
        r = api.request("GET", f"{DSGR}?used_in_default_sg=false", demo_token)
        assert [t["id"] for t in r.json()["default_security_group_rules"]] == [ssh["id"]]
        error(api.request("GET", f"{DSGR}/{ssh['id']}/tags", demo_token), 404)
    finally:
        for t in (ssh, icmp):
            error(api.request("DELETE", f"{DSGR}/{t['id']}", demo_token), 403)
            assert api.request("DELETE", f"{DSGR}/{t['id']}", admin_token).status_code == 204
    error(api.request("GET", f"{DSGR}/{ssh['id']}", demo_token), 404,
          "DefaultSecurityGroupRuleNotFound")
    assert len(sg(api, demo_token, name="untemplated")["security_group_rules"]) == 2


def test_stateful_takes_neutrons_boolean_words(api: Api, demo_token: str) -> None:
    # neutron-lib's stateful-security-group converts with convert_to_boolean, as for
    # admin_state_up: the words and 0/1 are taken (openstacksdk and Terraform send
    # true/false, other clients strings); anything else is 400.
    made = sg(api, demo_token, name="words-sg", stateful="false")
    assert made["stateful"] is False
    for word, value in (("t", True), (0, False), ("Yes", True), ("off", False)):
        r = api.request("PUT", f"{SG}/{made['id']}", demo_token,
                        json={"security_group": {"stateful": word}})
        assert r.status_code == 200 and r.json()["security_group"]["stateful"] is value, r.text
    for bad in (None, "maybe", 2, 1.5, []):
        r = api.request("PUT", f"{SG}/{made['id']}", demo_token,
                        json={"security_group": {"stateful": bad}})
        assert r.status_code == 400 and "stateful" in r.text, (bad, r.text)
