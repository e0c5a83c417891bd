"""Every route refuses what it must: no token, a bad, expired or revoked token, the wrong role."""

from __future__ import annotations

import re
import time

import pytest

from gureum.api.web import Route
from gureum.identity.tokens import SCOPE_PROJECT, TokenPayload, new_audit_id
from tests.harness import Api, InProcessCloud


def all_routes(cloud: InProcessCloud) -> list[tuple[str, Route]]:
    assert cloud.cloud is not None
    out = []
    for family in cloud.cloud.app.families.values():
        for route in family.router.routes():
            out.append((family.prefix, route))
    return out


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)(:[^}]+)?}", "0f0f0f0f", path)


def expired_token(cloud: InProcessCloud, api: Api, admin_token: str) -> str:
    r = api.request("GET", "/identity/v3/auth/tokens", admin_token,
                    headers={"X-Subject-Token": admin_token})
    body = r.json()["token"]
    assert cloud.cloud is not None
    identity = cloud.cloud.app.state.identity
    now = time.time()
    payload = TokenPayload(body["user"]["id"], ("password",), SCOPE_PROJECT,
                           body["project"]["id"], now - 7200, now - 3600, (new_audit_id(),))
    return str(identity.codec.encode(payload))


def test_every_authenticated_route_needs_a_valid_token(cloud: InProcessCloud, api: Api,
                                                       admin_token: str) -> None:
    expired = expired_token(cloud, api, admin_token)
    checked = 0
    for prefix, route in all_routes(cloud):
        if not route.auth:
            continue
        url = prefix + concrete(route.pattern)
        for token in (None, "garbage", expired):
            r = api.request(route.method, url, token, json={})
            assert r.status_code == 401, (route.method, url, token and token[:10], r.text)
            if route.method != "HEAD":
                assert r.json()["error"]["code"] == 401
        checked += 1
    assert checked > 50


def test_discovery_needs_no_token(api: Api) -> None:
    for path, status in (("/identity/", 300), ("/identity/v3", 200), ("/compute/", 200),
                         ("/compute/v2.1", 200), ("/image/", 300), ("/network/", 200),
                         ("/volume/", 300)):
        r = api.request("GET", path)
        assert r.status_code == status, (path, r.text)


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/identity/v3/projects", {"project": {"name": "x"}}),
    ("POST", "/identity/v3/users", {"user": {"name": "x"}}),
    ("POST", "/identity/v3/domains", {"domain": {"name": "x"}}),
    ("POST", "/identity/v3/roles", {"role": {"name": "x"}}),
    ("POST", "/identity/v3/groups", {"group": {"name": "x"}}),
    ("POST", "/identity/v3/services", {"service": {"type": "x"}}),
    ("POST", "/identity/v3/regions", {"region": {}}),
    ("GET", "/identity/v3/users", None),
    ("GET", "/identity/v3/domains", None),
    ("GET", "/identity/v3/groups", None),
    ("GET", "/identity/v3/role_assignments", None),
    ("PATCH", "/identity/v3/projects/{demo}", {"project": {"description": "mine now"}}),
    ("DELETE", "/identity/v3/projects/{demo}", None),
])
def test_member_calling_admin_apis_is_403(api: Api, cloud: InProcessCloud, demo_token: str,
                                          method: str, path: str, body: object) -> None:
    demo_project = api.request("GET", "/identity/v3/auth/projects", demo_token
                               ).json()["projects"][0]["id"]
    r = api.request(method, path.replace("{demo}", demo_project), demo_token, json=body)
    assert r.status_code == 403, r.text
    assert "not authorized" in r.json()["error"]["message"]


def test_member_sees_itself_but_not_others(api: Api, admin_token: str, demo_token: str) -> None:
    me = api.request("GET", "/identity/v3/auth/tokens", demo_token,
                     headers={"X-Subject-Token": demo_token}).json()["token"]["user"]
    assert api.request("GET", f"/identity/v3/users/{me['id']}", demo_token).status_code == 200
    admin = api.request("GET", "/identity/v3/auth/tokens", admin_token,
                        headers={"X-Subject-Token": admin_token}).json()["token"]["user"]
    assert api.request("GET", f"/identity/v3/users/{admin['id']}",
                       demo_token).status_code == 403
    # ...and may not validate someone else's token.
    r = api.request("GET", "/identity/v3/auth/tokens", demo_token,
                    headers={"X-Subject-Token": admin_token})
    assert r.status_code == 403


def test_disabled_user_tokens_stop_working(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/identity/v3/users", admin_token, json={"user": {
        "name": "to-disable", "password": "pw", "default_project_id": None}})
    user_id = r.json()["user"]["id"]
    projects = api.request("GET", "/identity/v3/projects?name=demo", admin_token).json()
    demo_id = projects["projects"][0]["id"]
    roles = api.request("GET", "/identity/v3/roles?name=member", admin_token).json()["roles"]
    assert api.request("PUT", f"/identity/v3/projects/{demo_id}/users/{user_id}/roles/"
                       f"{roles[0]['id']}", admin_token).status_code == 204
    token = api.token("to-disable", "pw", "demo")
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 200
    assert api.request("PATCH", f"/identity/v3/users/{user_id}", admin_token,
                       json={"user": {"enabled": False}}).status_code == 200
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 401
    # Re-enabling does not bring the old token back.
    api.request("PATCH", f"/identity/v3/users/{user_id}", admin_token,
                json={"user": {"enabled": True}})
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 401
    assert api.token("to-disable", "pw", "demo")


def test_role_removal_takes_effect_on_existing_tokens(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/identity/v3/users", admin_token,
                    json={"user": {"name": "short-lived-role", "password": "pw"}})
    user_id = r.json()["user"]["id"]
    demo_id = api.request("GET", "/identity/v3/projects?name=demo",
                          admin_token).json()["projects"][0]["id"]
    member = api.request("GET", "/identity/v3/roles?name=member",
                         admin_token).json()["roles"][0]["id"]
    grant = f"/identity/v3/projects/{demo_id}/users/{user_id}/roles/{member}"
    api.request("PUT", grant, admin_token)
    token = api.token("short-lived-role", "pw", "demo")
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 200
    assert api.request("DELETE", grant, admin_token).status_code == 204
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 401


def test_password_change_revokes_old_tokens(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/identity/v3/users", admin_token,
                    json={"user": {"name": "changer", "password": "old-pw"}})
    user_id = r.json()["user"]["id"]
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": user_id, "password": "old-pw"}}}}})
    old = r.headers["x-subject-token"]
    r = api.request("POST", f"/identity/v3/users/{user_id}/password", old,
                    json={"user": {"original_password": "wrong", "password": "new-pw"}})
    assert r.status_code == 401
    r = api.request("POST", f"/identity/v3/users/{user_id}/password", old,
                    json={"user": {"original_password": "old-pw", "password": "new-pw"}})
    assert r.status_code == 204, r.text
    assert api.request("GET", f"/identity/v3/users/{user_id}", old).status_code == 401
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": user_id, "password": "new-pw"}}}}})
    assert r.status_code == 201


def test_unknown_path_and_method(api: Api, admin_token: str) -> None:
    assert api.request("GET", "/identity/v3/nothing-here", admin_token).status_code == 404
    r = api.request("PUT", "/identity/v3/users", admin_token, json={})
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert api.request("GET", "/nowhere").status_code == 404


@pytest.mark.parametrize("header,status", [
    ("compute latest extra", 400), ("compute 2.1.3", 400), ("compute LATEST", 400),
    ("compute  2.1", 200), ("latest extra", 200), ("compute 2.1, compute 9.9", 406),
])
def test_odd_microversion_headers_are_answered_as_nova_does(
        api: Api, demo_token: str, header: str, status: int) -> None:
    r = api.request("GET", "/compute/v2.1/flavors", demo_token,
                    headers={"OpenStack-API-Version": header})
    assert r.status_code == status, r.text
    if status == 400:
        assert "is of invalid format" in r.json()["badRequest"]["message"]
        assert "openstack-api-version" not in r.headers
    elif status == 200:
        assert r.headers["openstack-api-version"] == "compute 2.1"
