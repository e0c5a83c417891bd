"""Metadata definitions (/image/v2/metadefs): namespaces and their parts, policy, errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.harness import Api

NS = "/image/v2/metadefs/namespaces"


def new_namespace(api: Api, admin: str, **body: Any) -> dict[str, Any]:
    body.setdefault("namespace", f"OS::Test::{uuid.uuid4().hex[:10]}")
    r = api.request("POST", NS, admin, json=body)
    assert r.status_code == 201, r.text
    ns: dict[str, Any] = r.json()
    return ns


def test_namespace_lifecycle(api: Api, admin_token: str, cloud: Any) -> None:
    ns = new_namespace(api, admin_token, display_name="Hypervisor", description="d",
                       visibility="public", resource_type_associations=[
                           {"name": "OS::Glance::Image", "prefix": "hw_"}],
                       properties={"cpu_policy": {"title": "CPU", "type": "string",
                                                  "enum": ["dedicated", "shared"]}},
                       objects=[{"name": "CPU", "required": ["cpu_policy"],
                                 "properties": {"cpu_policy": {"title": "P",
                                                               "type": "string"}}}],
                       tags=[{"name": "fast"}])
    name = ns["namespace"]
    assert ns["self"] == f"/v2/metadefs/namespaces/{name}"
    assert ns["schema"] == "/v2/schemas/metadefs/namespace"
    assert (ns["visibility"], ns["protected"]) == ("public", False)
    shown = api.request("GET", f"{NS}/{name}", admin_token).json()
    assert shown["properties"]["cpu_policy"]["enum"] == ["dedicated", "shared"]
    assert [o["name"] for o in shown["objects"]] == ["CPU"]
    assert shown["tags"] == [{"name": "fast"}]
    assert shown["resource_type_associations"][0]["prefix"] == "hw_"
    prefixed = api.request("GET", f"{NS}/{name}?resource_type=OS::Glance::Image",
                           admin_token).json()
    assert "hw_cpu_policy" in prefixed["properties"]
    assert prefixed["objects"][0]["required"] == ["hw_cpu_policy"]
    r = api.request("GET", f"{NS}/{name}/properties/hw_cpu_policy?resource_type="
                    "OS::Glance::Image", admin_token)
    assert r.status_code == 200 and r.json()["name"] == "cpu_policy"

    listed = api.request("GET", f"{NS}?resource_types=OS::Glance::Image", admin_token).json()
    assert name in {n["namespace"] for n in listed["namespaces"]}
    assert listed["schema"] == "/v2/schemas/metadefs/namespaces"
    assert "properties" not in listed["namespaces"][0]

    r = api.request("PUT", f"{NS}/{name}", admin_token,
                    json={"namespace": name, "display_name": "New", "protected": True})
    assert r.status_code == 200, r.text
    assert (r.json()["display_name"], r.json()["visibility"]) == ("New", "private")
    assert api.request("DELETE", f"{NS}/{name}", admin_token).status_code == 403
    assert api.request("DELETE", f"{NS}/{name}/objects", admin_token).status_code == 403
    api.request("PUT", f"{NS}/{name}", admin_token, json={"namespace": name})
    assert api.request("DELETE", f"{NS}/{name}", admin_token).status_code == 204
    assert api.request("GET", f"{NS}/{name}", admin_token).status_code == 404


def test_visibility_and_admin_only_writes(api: Api, admin_token: str, demo_token: str) -> None:
    private = new_namespace(api, admin_token)["namespace"]
    public = new_namespace(api, admin_token, visibility="public")["namespace"]
    assert api.request("GET", f"{NS}/{private}", demo_token).status_code == 404
    assert api.request("GET", f"{NS}/{private}/objects", demo_token).status_code == 404
    assert api.request("GET", f"{NS}/{public}", demo_token).status_code == 200
    names = {n["namespace"] for n in api.request("GET", NS, demo_token).json()["namespaces"]}
    assert public in names and private not in names
    assert api.request("POST", NS, demo_token, json={"namespace": "mine"}).status_code == 403
    for method, path, body in [
        ("PUT", f"{NS}/{public}", {"namespace": public}),
        ("DELETE", f"{NS}/{public}", None),
        ("POST", f"{NS}/{public}/objects", {"name": "o"}),
        ("POST", f"{NS}/{public}/properties", {"name": "p", "title": "t", "type": "string"}),
        ("POST", f"{NS}/{public}/tags/t1", None),
        ("POST", f"{NS}/{public}/resource_types", {"name": "OS::Nova::Flavor"}),
    ]:
        r = api.request(method, path, demo_token, json=body)
        assert r.status_code == 403, (method, path, r.text)


def test_objects(api: Api, admin_token: str) -> None:
    name = new_namespace(api, admin_token)["namespace"]
    url = f"{NS}/{name}/objects"
    r = api.request("POST", url, admin_token, json={
        "name": "obj", "description": "d",
        "properties": {"ram": {"title": "RAM", "type": "integer", "minimum": 0}}})
    assert r.status_code == 201, r.text
    assert r.json()["self"] == f"/v2/metadefs/namespaces/{name}/objects/obj"
    assert api.request("POST", url, admin_token, json={"name": "obj"}).status_code == 409
    r = api.request("POST", url, admin_token, json={"name": "bad", "properties": {
        "x": {"type": "string"}}})
    assert r.status_code == 400 and "title" in r.json()["message"]
    r = api.request("PUT", f"{url}/obj", admin_token, json={"name": "renamed",
                                                            "description": "e"})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    assert api.request("GET", f"{url}/obj", admin_token).status_code == 404
    listed = api.request("GET", url, admin_token).json()
    assert [o["name"] for o in listed["objects"]] == ["renamed"]
    assert api.request("DELETE", f"{url}/renamed", admin_token).status_code == 204
    assert api.request("DELETE", f"{url}/renamed", admin_token).status_code == 404


def test_properties(api: Api, admin_token: str) -> None:
    name = new_namespace(api, admin_token)["namespace"]
    url = f"{NS}/{name}/properties"
    prop = {"name": "port", "title": "Port", "type": "string", "enum": ["80", "443"]}
    r = api.request("POST", url, admin_token, json=prop)
    assert r.status_code == 201 and r.json() == prop
    assert api.request("POST", url, admin_token, json=prop).status_code == 409
    assert api.request("GET", url, admin_token).json() == {"properties": {"port": {
        "title": "Port", "type": "string", "enum": ["80", "443"]}}}
    r = api.request("PUT", f"{url}/port", admin_token, json={**prop, "title": "New"})
    assert r.status_code == 200 and r.json()["title"] == "New"
    assert api.request("GET", f"{url}/port", admin_token).json()["title"] == "New"
    assert api.request("DELETE", f"{url}/port", admin_token).status_code == 204
    assert api.request("GET", f"{url}/port", admin_token).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"title": "t", "type": "string"}, "name"),
    ({"name": "p", "type": "string"}, "title"),
    ({"name": "p", "title": "t", "type": "text"}, "type"),
    ({"name": "p", "title": "t", "type": "string", "pattern": "(["}, "pattern"),
    ({"name": "x" * 81, "title": "t", "type": "string"}, "name"),
    ({"name": "p", "title": "t", "type": "string", "surprise": 1}, "surprise"),
])
def test_property_bodies_are_validated(api: Api, admin_token: str, body: dict[str, Any],
                                       field: str) -> None:
    name = new_namespace(api, admin_token)["namespace"]
    r = api.request("POST", f"{NS}/{name}/properties", admin_token, json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["message"]


def test_tags(api: Api, admin_token: str) -> None:
    name = new_namespace(api, admin_token)["namespace"]
    url = f"{NS}/{name}/tags"
    assert api.request("POST", f"{url}/t1", admin_token).status_code == 201
    assert api.request("POST", f"{url}/T1", admin_token).status_code == 409
    r = api.request("POST", url, admin_token, json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201 and r.json() == {"tags": [{"name": "a"}, {"name": "b"}]}
    assert {t["name"] for t in api.request("GET", url, admin_token).json()["tags"]} == {"a", "b"}
    r = api.request("POST", url, admin_token, json={"tags": [{"name": "c"}]},
                    headers={"X-Openstack-Append": "True"})
    assert r.status_code == 201
    assert {t["name"] for t in api.request("GET", url, admin_token).json()["tags"]} == {
        "a", "b", "c"}
    r = api.request("PUT", f"{url}/a", admin_token, json={"name": "z"})
    assert r.status_code == 200 and r.json()["name"] == "z"
    assert api.request("GET", f"{url}/z", admin_token).json()["name"] == "z"
    assert api.request("DELETE", f"{url}/z", admin_token).status_code == 204
    assert api.request("DELETE", url, admin_token).status_code == 204
    assert api.request("GET", url, admin_token).json() == {"tags": []}
    r = api.request("POST", url, admin_token, json={"tags": [{"name": "d"}, {"name": "D"}]})
    assert r.status_code == 409


def test_resource_type_associations(api: Api, admin_token: str) -> None:
    name = new_namespace(api, admin_token)["namespace"]
    url = f"{NS}/{name}/resource_types"
    kind = f"OS::Test::{uuid.uuid4().hex[:6]}"
    r = api.request("POST", url, admin_token, json={"name": kind, "prefix": "t_"})
    assert r.status_code == 201 and r.json()["name"] == kind
    assert api.request("POST", url, admin_token, json={"name": kind}).status_code == 409
    assoc = api.request("GET", url, admin_token).json()["resource_type_associations"]
    assert [(a["name"], a["prefix"]) for a in assoc] == [(kind, "t_")]
    kinds = api.request("GET", "/image/v2/metadefs/resource_types", admin_token).json()
    assert kind in {k["name"] for k in kinds["resource_types"]}
    assert api.request("DELETE", f"{url}/{kind}", admin_token).status_code == 204
    assert api.request("DELETE", f"{url}/{kind}", admin_token).status_code == 404


def test_namespace_errors(api: Api, admin_token: str) -> None:
    taken = new_namespace(api, admin_token)["namespace"]
    assert api.request("POST", NS, admin_token, json={"namespace": taken}).status_code == 409
    for body, field in [({}, "namespace"), ({"namespace": "x" * 81}, "namespace"),
                        ({"namespace": "n", "visibility": "shared"}, "visibility"),
                        ({"namespace": "n", "bogus": 1}, "bogus")]:
        r = api.request("POST", NS, admin_token, json=body)
        assert r.status_code == 400 and field in r.json()["message"], r.text
    r = api.request("POST", NS, admin_token, json={"namespace": "n", "self": "/x"})
    assert r.status_code == 403
    for query in ("limit=x", "sort_dir=up", "sort_key=owner", "visibility=shared"):
        assert api.request("GET", f"{NS}?{query}", admin_token).status_code == 400, query
    assert api.request("GET", f"{NS}/does-not-exist", admin_token).status_code == 404


def test_metadef_schemas(api: Api, demo_token: str) -> None:
    for name in ("namespace", "namespaces", "object", "objects", "property", "properties",
                 "resource_type", "resource_types", "tag", "tags"):
        r = api.request("GET", f"/image/v2/schemas/metadefs/{name}", demo_token)
        assert r.status_code == 200, name
    ns = api.request("GET", "/image/v2/schemas/metadefs/namespace", demo_token).json()
    assert ns["required"] == ["namespace"] and "property" in ns["definitions"]
    assert api.request("GET", "/image/v2/schemas/metadefs/nope", demo_token).status_code == 404


@pytest.mark.parametrize("raw", [
    '{"namespace": "nan-ns", "properties": {"p": {"title": "t", "type": "number", '
    '"minimum": NaN}}}',
    '{"namespace": "nul-ns", "description": "a\\u0000b"}',
    '{"namespace": "long-prefix", "resource_type_associations": [{"name": "OS::X", '
    '"prefix": "' + "p" * 81 + '"}]}',
])
def test_unstorable_values_are_400(api: Api, admin_token: str, raw: str) -> None:
    r = api.request("POST", NS, admin_token, content=raw,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
