"""Tokens over real HTTP: issue, validate, revoke, rescope, and the 401s."""

from __future__ import annotations

from tests.harness import Api, InProcessCloud, password_auth


def test_password_token_is_project_scoped_with_catalog(api: Api, cloud: InProcessCloud) -> None:
    r = api.request("POST", "/identity/v3/auth/tokens",
                    json=password_auth("admin", cloud.admin_password, "admin"))
    assert r.status_code == 201
    assert r.headers["x-subject-token"]
    assert r.headers["x-openstack-request-id"].startswith("req-")
    token = r.json()["token"]
    assert token["methods"] == ["password"]
    assert token["project"]["name"] == "admin"
    assert {"admin", "member", "reader"} <= {role["name"] for role in token["roles"]}
    assert {svc["type"] for svc in token["catalog"]} >= {"identity", "compute", "image",
                                                         "network", "block-storage"}
    assert token["expires_at"].endswith("Z") and token["issued_at"].endswith("Z")


def test_validate_then_revoke(api: Api, cloud: InProcessCloud, admin_token: str) -> None:
    subject = api.token("demo", cloud.demo_password, "demo")
    r = api.request("GET", "/identity/v3/auth/tokens", admin_token,
                    headers={"X-Subject-Token": subject})
    assert r.status_code == 200, r.text
    assert r.json()["token"]["user"]["name"] == "demo"
    assert api.request("HEAD", "/identity/v3/auth/tokens", admin_token,
                       headers={"X-Subject-Token": subject}).status_code == 200
    assert api.request("DELETE", "/identity/v3/auth/tokens", admin_token,
                       headers={"X-Subject-Token": subject}).status_code == 204
    r = api.request("GET", "/identity/v3/auth/tokens", admin_token,
                    headers={"X-Subject-Token": subject})
    assert r.status_code == 404
    # The revoked token no longer authenticates anything.
    assert api.request("GET", "/identity/v3/auth/projects", subject).status_code == 401


def test_no_token_and_garbage_token_are_401(api: Api) -> None:
    r = api.request("GET", "/identity/v3/users")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401
    assert "www-authenticate" in r.headers
    assert api.request("GET", "/identity/v3/users", "not-a-token").status_code == 401


def test_rescope_keeps_expiry_and_audit_chain(api: Api, cloud: InProcessCloud) -> None:
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"},
            "password": cloud.admin_password}}},
        "scope": "unscoped"}})
    assert r.status_code == 201, r.text
    unscoped = r.json()["token"]
    assert "project" not in unscoped and "catalog" not in unscoped
    r2 = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": r.headers["x-subject-token"]}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
    # admin has no role on demo
    assert r2.status_code == 401
    r3 = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": r.headers["x-subject-token"]}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert r3.status_code == 201, r3.text
    scoped = r3.json()["token"]
    assert scoped["expires_at"] == unscoped["expires_at"]
    assert scoped["audit_ids"][1] == unscoped["audit_ids"][0]
    assert set(scoped["methods"]) == {"token", "password"}


def test_wrong_password_is_401_without_detail(api: Api) -> None:
    r = api.request("POST", "/identity/v3/auth/tokens",
                    json=password_auth("admin", "wrong", "admin"))
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "The request you have made requires authentication."


def test_malformed_auth_body_names_the_field(api: Api) -> None:
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {"identity": {}}})
    assert r.status_code == 400
    assert "auth.identity.methods" in r.json()["error"]["message"]
    r = api.request("POST", "/identity/v3/auth/tokens", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
