"""Property-based fuzzing: no request body, query or path a client sends gets a 500.

Hypothesis draws a route of every API family, fills its path with real ids
(of resources made for the fuzzing, never the admin's own), and sends random
JSON bodies shaped like OpenStack requests and random query strings, as admin
and as a member. Every answer must be below 500 and carry a fault body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gureum.api.web import Route
from tests.harness import Api, InProcessCloud, make_settings

FIELDS = ["name", "domain_id", "project_id", "parent_id", "enabled", "password",
          "description", "user", "project", "domain", "role", "group", "id", "type",
          "service_id", "interface", "url", "region_id", "tags", "options", "secret",
          "roles", "expires_at", "auth", "identity", "methods", "scope", "token",
          "original_password", "default_project_id", "visibility", "disk_format",
          "container_format", "protected", "min_disk", "min_ram", "op", "path", "value",
          "member", "status", "os_hidden", "unrestricted", "access_rules", "region",
          "parent_region_id", "email", "is_domain", "system", "all",
          # networking
          "network", "networks", "subnet", "port", "ports", "network_id", "subnet_id",
          "fixed_ips", "ip_address", "cidr", "ip_version", "gateway_ip", "allocation_pools",
          "start", "end", "mac_address", "device_id", "device_owner", "admin_state_up",
          "shared", "router:external", "mtu", "binding:host_id", "binding:profile",
          "provider:network_type", "provider:segmentation_id", "quota", "sort_key",
          "page_reverse", "fields", "tags-any"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                    st.sampled_from(["", "default", "admin", "public", "private", "raw",
                                     "password", "token", "x" * 300, "\x00", "é", "/", "..",
                                     "2020-01-01T00:00:00Z", "replace", "add", "remove"]))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)),
    max_leaves=20)


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("fuzz"))).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def fuzz_env(fuzz_cloud: InProcessCloud) -> Iterator[dict[str, Any]]:
    api = Api(fuzz_cloud.url)
    admin = api.token("admin", fuzz_cloud.admin_password, "admin")
    ids: dict[str, str] = {}

    def made(path: str, key: str, body: dict[str, Any]) -> str:
        r = api.request("POST", path, admin, json={key: body})
        assert r.status_code == 201, r.text
        return str(r.json()[key]["id"])

    ids["domain_id"] = made("/identity/v3/domains", "domain", {"name": "fuzz-domain"})
    ids["project_id"] = made("/identity/v3/projects", "project", {"name": "fuzz-project"})
    ids["user_id"] = made("/identity/v3/users", "user", {"name": "fuzz-user", "password": "pw"})
    ids["group_id"] = made("/identity/v3/groups", "group", {"name": "fuzz-group"})
    ids["role_id"] = ids["prior_id"] = made("/identity/v3/roles", "role", {"name": "fuzz-a"})
    ids["implied_id"] = made("/identity/v3/roles", "role", {"name": "fuzz-b"})
    ids["service_id"] = made("/identity/v3/services", "service", {"type": "fuzz"})
    ids["endpoint_id"] = made("/identity/v3/endpoints", "endpoint", {
        "service_id": ids["service_id"], "interface": "public", "url": "http://fuzz"})
    ids["region_id"] = made("/identity/v3/regions", "region", {"id": "fuzz-region"})
    r = api.request("POST", "/image/v2/images", admin, json={"name": "fuzz-image"})
    if r.status_code == 201:
        ids["image_id"] = r.json()["id"]
    r = api.request("POST", "/network/v2.0/networks", admin, json={"network": {
        "name": "fuzz-net"}})
    if r.status_code == 201:
        ids["network_id"] = ids["resource_id"] = r.json()["network"]["id"]
        ids["subnet_id"] = made("/network/v2.0/subnets", "subnet", {
            "network_id": ids["network_id"], "ip_version": 4, "cidr": "10.250.0.0/24"})
        ids["port_id"] = made("/network/v2.0/ports", "port", {"network_id": ids["network_id"]})
        ids["alias"] = "binding"
    demo = api.token("demo", fuzz_cloud.demo_password, "demo")
    routes: list[tuple[str, Route]] = []
    assert fuzz_cloud.cloud is not None
    for family in fuzz_cloud.cloud.app.families.values():
        for route in family.router.routes():
            if route.method == "DELETE":
                continue  # deleting the fixtures would only make later draws 404
            routes.append((family.prefix, route))
    yield {"api": api, "admin": admin, "demo": demo, "ids": ids, "routes": routes}
    api.close()


def fill(pattern: str, ids: dict[str, str], fuzzed: str | None) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if fuzzed is not None and name == "tag":
            return quote(fuzzed, safe="")
        return ids.get(name, "does-not-exist")
    return re.sub(r"{(\w+)(:[^}]+)?}", one, pattern)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_client_input_causes_a_500(fuzz_env: dict[str, Any], data: st.DataObject) -> None:
    api: Api = fuzz_env["api"]
    prefix, route = data.draw(st.sampled_from(fuzz_env["routes"]), label="route")
    as_admin = data.draw(st.booleans(), label="as_admin")
    token = fuzz_env["admin"] if as_admin else fuzz_env["demo"]
    body = data.draw(json_values, label="body")
    query_keys = [*FIELDS, "limit", "marker", "sort", "effective", "include_names", "user.id",
                  "nocatalog"]
    query = data.draw(st.dictionaries(st.sampled_from(query_keys), st.text(max_size=12),
                                      max_size=3), label="query")
    tag = data.draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                                   blacklist_characters="/?#%"),
                            min_size=1, max_size=10), label="tag")
    path = prefix + fill(route.pattern, fuzz_env["ids"], tag)
    if route.pattern.endswith("/password"):
        return  # a random password change would lock the fixture user out of nothing useful
    headers = {"X-Subject-Token": fuzz_env["admin"]} if "auth/tokens" in path else {}
    if data.draw(st.integers(0, 9), label="raw") == 0:
        raw = data.draw(st.binary(max_size=64), label="raw body")
        r = api.request(route.method, path, token, content=raw, params=query,
                        headers={**headers, "content-type": "application/json"})
    else:
        r = api.request(route.method, path, token, json=body, params=query, headers=headers)
    assert r.status_code < 500, (route.method, path, body, query, r.status_code, r.text)
    if r.status_code >= 400 and route.method != "HEAD":
        assert r.json(), r.text


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_json_is_400_on_every_route(fuzz_env: dict[str, Any], depth: int
                                                  ) -> None:
    api: Api = fuzz_env["api"]
    answered: dict[int, int] = {}
    for prefix, route in fuzz_env["routes"]:
        if route.method not in ("POST", "PUT", "PATCH") or route.stream:
            continue
        path = prefix + fill(route.pattern, fuzz_env["ids"], None)
        if route.pattern.endswith("/password"):
            continue
        headers = {"content-type": "application/json"}
        if prefix == "/image" and route.method == "PATCH":
            headers["content-type"] = "application/openstack-images-v2.1-json-patch"
        r = api.request(route.method, path, fuzz_env["admin"], content=nested(depth),
                        headers=headers)
        assert r.status_code < 500, (route.method, path, r.status_code, r.text)
        answered[r.status_code] = answered.get(r.status_code, 0) + 1
        if r.status_code == 400:
            assert "nested deeper than 64 levels" in r.text, (route.method, path, r.text)
    assert answered.get(400, 0) > 50, answered
    r = api.request("POST", "/identity/v3/auth/tokens", content=nested(depth),
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested deeper" in r.json()["error"]["message"]
