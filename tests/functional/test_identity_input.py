"""Bad input to identity: control characters in names, typed resource options, immutable
resources. Every refusal is a 4xx naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import Api

V3 = "/identity/v3"

# (collection, wrapper key, body without the bad field, the name field)
CREATES = [
    ("domains", "domain", {}, "name"),
    ("projects", "project", {}, "name"),
    ("users", "user", {}, "name"),
    ("groups", "group", {}, "name"),
    ("roles", "role", {}, "name"),
    ("services", "service", {"type": "x-svc"}, "name"),
    ("services", "service", {}, "type"),
    ("regions", "region", {}, "id"),
    ("OS-EP-FILTER/endpoint_groups", "endpoint_group", {"filters": {}}, "name"),
    ("policies", "policy", {"blob": "{}"}, "type"),
]
BAD_NAMES = ["nul\x00name", "tab\tname", "new\nline", "bell\x07", "del\x7f", "esc\x1b[0m"]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=[repr(b) for b in BAD_NAMES])
@pytest.mark.parametrize(("collection", "key", "body", "field"), CREATES,
                         ids=[f"{c[0]}.{c[3]}" for c in CREATES])
def test_control_characters_in_names_are_400(api: Api, admin_token: str, collection: str,
                                             key: str, body: dict[str, Any], field: str,
                                             bad: str) -> None:
    r = api.request("POST", f"{V3}/{collection}", admin_token,
                    json={key: {**body, field: bad}})
    assert r.status_code == 400, r.text
    assert f"{key}.{field}" in r.json()["error"]["message"]


def test_control_characters_in_updates_tags_and_app_creds_are_400(
        api: Api, admin_token: str) -> None:
    r = api.request("POST", f"{V3}/projects", admin_token,
                    json={"project": {"name": "ctl-project"}})
    project = r.json()["project"]["id"]
    r = api.request("PATCH", f"{V3}/projects/{project}", admin_token,
                    json={"project": {"name": "bad\x00"}})
    assert r.status_code == 400 and "project.name" in r.json()["error"]["message"]
    r = api.request("PUT", f"{V3}/projects/{project}/tags", admin_token,
                    json={"tags": ["ok", "bad\x01tag"]})
    assert r.status_code == 400 and "tags.1" in r.json()["error"]["message"]
    assert api.request("PUT", f"{V3}/projects/{project}/tags/bad%00tag",
                       admin_token).status_code == 400
    admin_id = api.request("GET", f"{V3}/users?name=admin",
                           admin_token).json()["users"][0]["id"]
    r = api.request("POST", f"{V3}/users/{admin_id}/application_credentials", admin_token,
                    json={"application_credential": {"name": "ac\x00"}})
    assert r.status_code == 400
    assert "application_credential.name" in r.json()["error"]["message"]
    # Printable unicode is fine.
    r = api.request("POST", f"{V3}/projects", admin_token,
                    json={"project": {"name": "구름 프로젝트 ☁"}})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("option", "value"), [
    ("lock_password", "yes"), ("lock_password", 1),
    ("ignore_password_expiry", "true"), ("ignore_lockout_failure_attempts", 0),
    ("ignore_change_password_upon_first_use", []), ("multi_factor_auth_enabled", "no"),
    ("ignore_user_inactivity", {}), ("multi_factor_auth_rules", "password"),
    ("multi_factor_auth_rules", [["password"], "totp"]),
    ("multi_factor_auth_rules", [[]]), ("multi_factor_auth_rules", [["totp", "totp"]]),
    ("no_such_option", True),
])
def test_user_options_are_typed_as_keystones(api: Api, admin_token: str, option: str,
                                             value: Any) -> None:
    r = api.request("POST", f"{V3}/users", admin_token,
                    json={"user": {"name": f"opt-{option}", "options": {option: value}}})
    assert r.status_code == 400, r.text
    assert f"user.options.{option}" in r.json()["error"]["message"]


def test_user_options_set_and_null_removes(api: Api, admin_token: str) -> None:
    r = api.request("POST", f"{V3}/users", admin_token, json={"user": {
        "name": "opt-ok", "options": {"lock_password": True,
                                      "multi_factor_auth_rules": [["password", "totp"]]}}})
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert user["options"] == {"lock_password": True,
                               "multi_factor_auth_rules": [["password", "totp"]]}
    r = api.request("PATCH", f"{V3}/users/{user['id']}", admin_token,
                    json={"user": {"options": {"lock_password": None,
                                               "ignore_password_expiry": False}}})
    assert r.status_code == 200
    assert r.json()["user"]["options"] == {"multi_factor_auth_rules": [["password", "totp"]],
                                           "ignore_password_expiry": False}
    r = api.request("PATCH", f"{V3}/users/{user['id']}", admin_token,
                    json={"user": {"options": {"lock_password": "no"}}})
    assert r.status_code == 400 and "user.options.lock_password" in r.text


@pytest.mark.parametrize("collection,key", [("projects", "project"), ("domains", "domain"),
                                            ("roles", "role")])
def test_immutable_resources_change_only_by_unsetting_immutable(
        api: Api, admin_token: str, collection: str, key: str) -> None:
    r = api.request("POST", f"{V3}/{collection}", admin_token, json={key: {
        "name": f"frozen-{key}", "options": {"immutable": True}}})
    assert r.status_code == 201, r.text
    url = f"{V3}/{collection}/{r.json()[key]['id']}"
    assert api.request("POST", f"{V3}/{collection}", admin_token, json={key: {
        "name": "x", "options": {"immutable": "yes"}}}).status_code == 400
    assert api.request("POST", f"{V3}/{collection}", admin_token, json={key: {
        "name": "x", "options": {"frozen": True}}}).status_code == 400
    r = api.request("PATCH", url, admin_token, json={key: {"description": "changed"}})
    assert r.status_code == 403 and "immutable" in r.json()["error"]["message"]
    # Unsetting immutable together with another change is refused too (Keystone).
    r = api.request("PATCH", url, admin_token, json={key: {
        "options": {"immutable": False}, "description": "changed"}})
    assert r.status_code == 403
    if key == "domain":
        api.request("PATCH", url, admin_token, json={key: {"enabled": False}})
    assert api.request("DELETE", url, admin_token).status_code == 403
    r = api.request("PATCH", url, admin_token, json={key: {"options": {"immutable": None}}})
    assert r.status_code == 200, r.text
    assert r.json()[key]["options"] == {}
    assert api.request("PATCH", url, admin_token,
                       json={key: {"description": "changed"}}).status_code == 200
    if key == "domain":
        api.request("PATCH", url, admin_token, json={key: {"enabled": False}})
    assert api.request("DELETE", url, admin_token).status_code == 204
