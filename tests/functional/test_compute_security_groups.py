"""Nova's security-group surface over the networking service's groups: server create's
``security_groups``, addSecurityGroup/removeSecurityGroup, the server's groups, and the
os-security-groups proxy (before 2.36 only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.compute_helpers import boot, image_id, show, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud
from tests.harness import Api, InProcessCloud

N = "/network/v2.0"


@pytest.fixture(scope="module")
def sg_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=1)


@pytest.fixture(scope="module")
def capi(sg_cloud: InProcessCloud) -> Iterator[Api]:
    api = Api(sg_cloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def demo(capi: Api, sg_cloud: InProcessCloud) -> str:
    return capi.token("demo", sg_cloud.demo_password, "demo")


def _group(api: Api, token: str, name: str) -> dict[str, Any]:
    r = api.request("POST", f"{N}/security-groups", token,
                    json={"security_group": {"name": name}})
    assert r.status_code == 201, r.text
    return dict(r.json()["security_group"])


def _private(api: Api, token: str) -> str:
    nets = api.request("GET", f"{N}/networks?name=private", token).json()["networks"]
    return str(nets[0]["id"])


def _port_groups(api: Api, token: str, server_id: str) -> list[list[str]]:
    r = api.request("GET", f"{N}/ports?device_id={server_id}", token)
    return [sorted(p["security_groups"]) for p in r.json()["ports"]]


def test_server_create_applies_groups_and_actions_change_them(capi: Api, demo: str) -> None:
    web = _group(capi, demo, "web")
    _group(capi, demo, "db")
    r = capi.request("POST", "/compute/v2.1/servers", demo, json={"server": {
        "name": "bad-sg", "flavorRef": "1", "imageRef": image_id(capi, demo),
        "networks": [{"uuid": _private(capi, demo)}],
        "security_groups": [{"name": "nope"}]}})
    assert r.status_code == 400 and "nope" in fault(r)
    server = boot(capi, demo, "sgvm", image=image_id(capi, demo),
                  networks=[{"uuid": _private(capi, demo)}],
                  security_groups=[{"name": "web"}])
    assert server["security_groups"] == [{"name": "web"}]
    wait_status(capi, demo, server["id"], {"ACTIVE"})
    assert _port_groups(capi, demo, server["id"]) == [[web["id"]]]
    assert show(capi, demo, server["id"])["security_groups"] == [{"name": "web"}]

    action = f"/servers/{server['id']}/action"
    call(capi, "POST", action, demo, status=202, json={"addSecurityGroup": {"name": "db"}})
    listed = call(capi, "GET", f"/servers/{server['id']}/os-security-groups", demo,
                  status=200).json()["security_groups"]
    assert sorted(g["name"] for g in listed) == ["db", "web"]
    assert all(g["rules"] == [] for g in listed)  # egress rules are not Nova's
    assert sorted(x["name"] for x in show(capi, demo, server["id"])["security_groups"]) == [
        "db", "web"]
    r = call(capi, "POST", action, demo, json={"addSecurityGroup": {"name": "ghost"}})
    assert r.status_code == 404
    call(capi, "POST", action, demo, status=202,
         json={"removeSecurityGroup": {"name": "web"}})
    assert [x["name"] for x in show(capi, demo, server["id"])["security_groups"]] == ["db"]
    r = call(capi, "POST", action, demo, json={"removeSecurityGroup": {"name": "web"}})
    assert r.status_code == 404
    r = call(capi, "POST", action, demo, json={"addSecurityGroup": {}})
    assert r.status_code == 400
    # A stateless group cannot join the stateful ones (Neutron's 409 to the port update).
    r = capi.request("POST", f"{N}/security-groups", demo,
                     json={"security_group": {"name": "loose", "stateful": False}})
    assert r.status_code == 201, r.text
    r = call(capi, "POST", action, demo, json={"addSecurityGroup": {"name": "loose"}})
    assert r.status_code == 409 and "stateful and stateless" in fault(r)
    assert [x["name"] for x in show(capi, demo, server["id"])["security_groups"]] == ["db"]
    # A group a server's ports are in cannot go.
    r = capi.request("DELETE", f"{N}/security-groups/{web['id']}", demo)
    assert r.status_code == 204
    db = next(g for g in listed if g["name"] == "db")
    r = capi.request("DELETE", f"{N}/security-groups/{db['id']}", demo)
    assert r.status_code == 409


def test_server_without_named_groups_gets_the_default(capi: Api, demo: str) -> None:
    server = boot(capi, demo, "plain", image=image_id(capi, demo),
                  networks=[{"uuid": _private(capi, demo)}])
    wait_status(capi, demo, server["id"], {"ACTIVE"})
    (default,) = capi.request("GET", f"{N}/security-groups?name=default",
                              demo).json()["security_groups"]
    assert _port_groups(capi, demo, server["id"]) == [[default["id"]]]
    assert show(capi, demo, server["id"])["security_groups"] == [{"name": "default"}]


def test_os_security_groups_proxy_before_2_36(capi: Api, demo: str) -> None:
    made = call(capi, "POST", "/os-security-groups", demo, "2.35", status=200, json={
        "security_group": {"name": "legacy", "description": "old API"}}).json()
    group = made["security_group"]
    assert group["name"] == "legacy" and group["rules"] == [] and group["tenant_id"]
    rule = call(capi, "POST", "/os-security-group-rules", demo, "2.35", status=200, json={
        "security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp",
                                "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}}
                ).json()["security_group_rule"]
    assert rule["ip_range"] == {"cidr": "10.0.0.0/8"} and rule["from_port"] == 22
    assert rule["parent_group_id"] == group["id"] and rule["group"] == {}
    ping = call(capi, "POST", "/os-security-group-rules", demo, "2.35", status=200, json={
        "security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "icmp",
                                "from_port": -1, "to_port": -1, "group_id": group["id"]}}
                ).json()["security_group_rule"]
    assert (ping["from_port"], ping["to_port"]) == (-1, -1)
    assert ping["group"]["name"] == "legacy" and ping["ip_range"] == {}
    dup = call(capi, "POST", "/os-security-group-rules", demo, "2.35", json={
        "security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp",
                                "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}})
    assert dup.status_code == 400 and "already exists" in fault(dup)
    shown = call(capi, "GET", f"/os-security-groups/{group['id']}", demo, "2.35",
                 status=200).json()["security_group"]
    assert sorted(r["ip_protocol"] for r in shown["rules"]) == ["icmp", "tcp"]
    names = [g["name"] for g in call(capi, "GET", "/os-security-groups", demo, "2.35",
                                     status=200).json()["security_groups"]]
    assert "default" in names and "legacy" in names
    call(capi, "PUT", f"/os-security-groups/{group['id']}", demo, "2.35", status=200,
         json={"security_group": {"name": "legacy2", "description": "renamed"}})
    assert call(capi, "POST", "/os-security-groups", demo, "2.35", json={
        "security_group": {"name": "x"}}).status_code == 400
    default = next(g for g in call(capi, "GET", "/os-security-groups", demo, "2.35").json()[
        "security_groups"] if g["name"] == "default")
    assert call(capi, "DELETE", f"/os-security-groups/{default['id']}", demo,
                "2.35").status_code == 400
    call(capi, "DELETE", f"/os-security-group-rules/{rule['id']}", demo, "2.35", status=202)
    call(capi, "DELETE", f"/os-security-group-rules/{rule['id']}", demo, "2.35", status=404)
    call(capi, "GET", "/os-security-groups/" + "f" * 36, demo, "2.35", status=404)
    for method, path in (("GET", "/os-security-groups"), ("POST", "/os-security-groups"),
                         ("GET", f"/os-security-groups/{group['id']}"),
                         ("POST", "/os-security-group-rules")):
        call(capi, method, path, demo, "2.36", status=404, json={})
    call(capi, "DELETE", f"/os-security-groups/{group['id']}", demo, "2.35", status=202)
