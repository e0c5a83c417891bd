"""Unified limits (/v3/registered_limits, /v3/limits), found missing by the sdk's tests."""

from __future__ import annotations

import uuid
from typing import Any

from tests.harness import Api

ID = "/identity/v3"


def new_service(api: Api, token: str) -> str:
    r = api.request("POST", f"{ID}/services", token,
                    json={"service": {"type": f"t-{uuid.uuid4().hex[:8]}", "name": "x"}})
    assert r.status_code == 201, r.text
    return str(r.json()["service"]["id"])


def new_project(api: Api, token: str) -> str:
    r = api.request("POST", f"{ID}/projects", token,
                    json={"project": {"name": f"p-{uuid.uuid4().hex[:8]}"}})
    assert r.status_code == 201, r.text
    return str(r.json()["project"]["id"])


def register(api: Api, token: str, **body: Any) -> Any:
    return api.request("POST", f"{ID}/registered_limits", token,
                       json={"registered_limits": [body]})


def test_registered_limit_lifecycle_has_keystones_shape(api: Api, admin_token: str) -> None:
    service_id = new_service(api, admin_token)
    r = register(api, admin_token, service_id=service_id, resource_name="cores",
                 default_limit=10)
    assert r.status_code == 201, r.text
    body = r.json()
    assert "links" not in body  # Keystone drops the collection links on create
    (created,) = body["registered_limits"]
    assert created["description"] is None and created["region_id"] is None
    assert created["default_limit"] == 10 and created["service_id"] == service_id
    rid = created["id"]
    r = api.request("PATCH", f"{ID}/registered_limits/{rid}", admin_token,
                    json={"registered_limit": {"description": "cores per project"}})
    assert r.status_code == 200 and r.json()["registered_limit"]["description"] == \
        "cores per project"
    listed = api.request("GET", f"{ID}/registered_limits?service_id={service_id}",
                         admin_token).json()["registered_limits"]
    assert [x["id"] for x in listed] == [rid]
    assert register(api, admin_token, service_id=service_id, resource_name="cores",
                    default_limit=1).status_code == 409
    assert api.request("DELETE", f"{ID}/registered_limits/{rid}",
                       admin_token).status_code == 204
    assert api.request("GET", f"{ID}/registered_limits/{rid}", admin_token).status_code == 404


def test_registered_limit_for_unknown_service_is_400(api: Api, admin_token: str) -> None:
    r = register(api, admin_token, service_id="nope", resource_name="cores", default_limit=1)
    assert r.status_code == 400
    assert "service_id" in r.json()["error"]["message"]


def test_project_limit_needs_a_registered_limit_and_pins_it(api: Api, admin_token: str,
                                                            demo_token: str) -> None:
    service_id, project_id = new_service(api, admin_token), new_project(api, admin_token)
    limit = {"service_id": service_id, "project_id": project_id, "resource_name": "ram",
             "resource_limit": 50}
    r = api.request("POST", f"{ID}/limits", admin_token, json={"limits": [limit]})
    assert r.status_code == 403  # Keystone's NoLimitReference
    rid = register(api, admin_token, service_id=service_id, resource_name="ram",
                   default_limit=10).json()["registered_limits"][0]["id"]
    r = api.request("POST", f"{ID}/limits", admin_token, json={"limits": [limit]})
    assert r.status_code == 201, r.text
    (created,) = r.json()["limits"]
    assert created["project_id"] == project_id and created["domain_id"] is None
    assert created["resource_limit"] == 50 and created["description"] is None
    assert api.request("POST", f"{ID}/limits", admin_token,
                       json={"limits": [limit]}).status_code == 409
    # A registered limit with overrides can neither be deleted nor moved.
    assert api.request("DELETE", f"{ID}/registered_limits/{rid}",
                       admin_token).status_code == 403
    r = api.request("PATCH", f"{ID}/limits/{created['id']}", admin_token,
                    json={"limit": {"description": "more ram"}})
    assert r.json()["limit"]["description"] == "more ram"
    # A member does not see other projects' limits.
    assert api.request("GET", f"{ID}/limits/{created['id']}", demo_token).status_code == 403
    assert api.request("GET", f"{ID}/limits", demo_token).json()["limits"] == []
    assert api.request("POST", f"{ID}/limits", demo_token,
                       json={"limits": [limit]}).status_code == 403
    # Deleting the project takes its limits along.
    assert api.request("DELETE", f"{ID}/projects/{project_id}", admin_token).status_code == 204
    assert api.request("GET", f"{ID}/limits/{created['id']}", admin_token).status_code == 404
    assert api.request("DELETE", f"{ID}/registered_limits/{rid}",
                       admin_token).status_code == 204


def test_limit_model_is_flat(api: Api, demo_token: str) -> None:
    r = api.request("GET", f"{ID}/limits/model", demo_token)
    assert r.status_code == 200
    assert r.json()["model"]["name"] == "flat"
