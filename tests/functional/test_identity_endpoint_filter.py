"""Endpoint groups and per-project catalogs (OS-EP-FILTER), found missing by the sdk's tests."""

from __future__ import annotations

import uuid

from tests.harness import Api, InProcessCloud

ID = "/identity/v3"
EP = f"{ID}/OS-EP-FILTER"


def make_service_with_endpoints(api: Api, token: str) -> tuple[str, str, str]:
    """A new service with a public and an internal endpoint: (service, public, internal)."""
    r = api.request("POST", f"{ID}/services", token,
                    json={"service": {"type": f"t-{uuid.uuid4().hex[:8]}", "name": "x"}})
    service_id = r.json()["service"]["id"]
    ids = []
    for interface in ("public", "internal"):
        r = api.request("POST", f"{ID}/endpoints", token, json={"endpoint": {
            "service_id": service_id, "interface": interface,
            "url": f"https://{interface}.example.com/v1"}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["endpoint"]["id"])
    return service_id, ids[0], ids[1]


def test_endpoint_group_lifecycle(api: Api, admin_token: str) -> None:
    service_id, public, internal = make_service_with_endpoints(api, admin_token)
    r = api.request("POST", f"{EP}/endpoint_groups", admin_token, json={"endpoint_group": {
        "name": "internal-only", "filters": {"interface": "internal"}}})
    assert r.status_code == 201, r.text
    group = r.json()["endpoint_group"]
    assert group["description"] is None and group["filters"] == {"interface": "internal"}
    r = api.request("GET", f"{EP}/endpoint_groups/{group['id']}/endpoints", admin_token)
    assert internal in {e["id"] for e in r.json()["endpoints"]}
    assert public not in {e["id"] for e in r.json()["endpoints"]}
    r = api.request("PATCH", f"{EP}/endpoint_groups/{group['id']}", admin_token,
                    json={"endpoint_group": {"description": "d", "filters": {
                        "interface": "public", "service_id": service_id}}})
    assert r.status_code == 200
    assert r.json()["endpoint_group"]["filters"] == {"interface": "public",
                                                     "service_id": service_id}
    r = api.request("GET", f"{EP}/endpoint_groups/{group['id']}/endpoints", admin_token)
    assert [e["id"] for e in r.json()["endpoints"]] == [public]
    r = api.request("GET", f"{EP}/endpoint_groups?name=internal-only", admin_token)
    assert [g["id"] for g in r.json()["endpoint_groups"]] == [group["id"]]
    assert api.request("DELETE", f"{EP}/endpoint_groups/{group['id']}",
                       admin_token).status_code == 204
    assert api.request("GET", f"{EP}/endpoint_groups/{group['id']}",
                       admin_token).status_code == 404


def test_endpoint_group_filters_are_required_and_checked(api: Api, admin_token: str) -> None:
    for filters in ({}, {"name": "x"}, {"interface": "sideways"}):
        r = api.request("POST", f"{EP}/endpoint_groups", admin_token,
                        json={"endpoint_group": {"name": "bad", "filters": filters}})
        assert r.status_code == 400, (filters, r.text)


def test_project_association_filters_the_token_catalog(api: Api, cloud: InProcessCloud,
                                                       admin_token: str) -> None:
    service_id, public, internal = make_service_with_endpoints(api, admin_token)
    r = api.request("POST", f"{ID}/projects", admin_token,
                    json={"project": {"name": f"filtered-{uuid.uuid4().hex[:6]}"}})
    project = r.json()["project"]
    me = api.request("GET", f"{ID}/auth/tokens", admin_token,
                     headers={"X-Subject-Token": admin_token}).json()["token"]["user"]["id"]
    member = api.request("GET", f"{ID}/roles?name=member", admin_token).json()["roles"][0]
    api.request("PUT", f"{ID}/projects/{project['id']}/users/{me}/roles/{member['id']}",
                admin_token)
    r = api.request("POST", f"{EP}/endpoint_groups", admin_token, json={"endpoint_group": {
        "name": "this-service", "filters": {"service_id": service_id}}})
    group = r.json()["endpoint_group"]
    link = f"{EP}/endpoint_groups/{group['id']}/projects/{project['id']}"
    assert api.request("PUT", link, admin_token).status_code == 204
    assert api.request("PUT", link, admin_token).status_code == 409
    assert api.request("GET", link, admin_token).json()["project_endpoint_group"] == {
        "endpoint_group_id": group["id"], "project_id": project["id"],
        "links": {"self": cloud.url + link}}
    r = api.request("GET", f"{EP}/projects/{project['id']}/endpoint_groups", admin_token)
    assert [g["id"] for g in r.json()["endpoint_groups"]] == [group["id"]]

    token = api.token("admin", cloud.admin_password, project["name"])
    r = api.request("GET", f"{ID}/auth/catalog", token)
    catalog = r.json()["catalog"]
    assert [svc["id"] for svc in catalog] == [service_id]
    assert {e["id"] for e in catalog[0]["endpoints"]} == {public, internal}
    # Other projects still see everything.
    r = api.request("GET", f"{ID}/auth/catalog", admin_token)
    assert {svc["type"] for svc in r.json()["catalog"]} >= {"identity", "compute"}

    assert api.request("DELETE", link, admin_token).status_code == 204
    # A direct endpoint association narrows it to one endpoint.
    direct = f"{EP}/projects/{project['id']}/endpoints/{public}"
    assert api.request("PUT", direct, admin_token).status_code == 204
    assert api.request("GET", direct, admin_token).status_code == 204
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"id": project["id"]}}}})
    catalog = r.json()["token"]["catalog"]
    assert [[e["id"] for e in svc["endpoints"]] for svc in catalog] == [[public]]
    r = api.request("GET", f"{EP}/endpoints/{public}/projects", admin_token)
    assert [p["id"] for p in r.json()["projects"]] == [project["id"]]
    assert api.request("DELETE", direct, admin_token).status_code == 204
    assert api.request("GET", direct, admin_token).status_code == 404


def test_member_may_not_manage_endpoint_groups(api: Api, demo_token: str) -> None:
    r = api.request("POST", f"{EP}/endpoint_groups", demo_token, json={"endpoint_group": {
        "name": "mine", "filters": {"interface": "public"}}})
    assert r.status_code == 403
    assert api.request("GET", f"{EP}/endpoint_groups", demo_token).status_code == 403
