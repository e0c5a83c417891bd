"""Keystone's default roles and policies: who may list and read projects, system scope,
and the self-service password change."""

from __future__ import annotations

from typing import Any

from tests.harness import Api, InProcessCloud, password_auth

V3 = "/identity/v3"


def _id(api: Api, admin: str, collection: str, name: str) -> str:
    r = api.request("GET", f"{V3}/{collection}?name={name}", admin)
    return str(r.json()[collection][0]["id"])


def _user(api: Api, admin: str, name: str, password: str, **extra: Any) -> str:
    r = api.request("POST", f"{V3}/users", admin,
                    json={"user": {"name": name, "password": password, **extra}})
    assert r.status_code == 201, r.text
    return str(r.json()["user"]["id"])


def _scoped(api: Api, user: str, password: str, scope: dict[str, Any]) -> str:
    body = password_auth(user, password)
    body["auth"]["scope"] = scope
    r = api.request("POST", f"{V3}/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def test_bootstrap_creates_keystones_five_default_roles(api: Api, admin_token: str) -> None:
    roles = {r["name"]: r for r in api.request("GET", f"{V3}/roles",
                                                admin_token).json()["roles"]}
    assert {"admin", "manager", "member", "reader", "service"} <= set(roles)
    assert all(roles[n]["options"] == {"immutable": True}
               for n in ("admin", "manager", "member", "reader", "service"))
    inferences = api.request("GET", f"{V3}/role_inferences", admin_token).json()
    implied = {(i["prior_role"]["name"], r["name"])
               for i in inferences["role_inferences"] for r in i["implies"]}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= implied
    assert ("admin", "member") not in implied  # replaced by admin -> manager
    assert not any(prior == "service" for prior, _ in implied)
    # An admin token carries every role admin implies.
    r = api.request("GET", f"{V3}/auth/tokens", admin_token,
                    headers={"X-Subject-Token": admin_token})
    names = {role["name"] for role in r.json()["token"]["roles"]}
    assert {"admin", "manager", "member", "reader"} <= names and "service" not in names


def test_member_may_not_list_projects_but_lists_its_own(api: Api, demo_token: str,
                                                        admin_token: str) -> None:
    r = api.request("GET", f"{V3}/projects", demo_token)
    assert r.status_code == 403
    assert "identity:list_projects" in r.json()["error"]["message"]
    mine = api.request("GET", f"{V3}/auth/projects", demo_token)
    assert mine.status_code == 200
    assert [p["name"] for p in mine.json()["projects"]] == ["demo"]
    demo_user = _id(api, admin_token, "users", "demo")
    r = api.request("GET", f"{V3}/users/{demo_user}/projects", demo_token)
    assert r.status_code == 200 and [p["name"] for p in r.json()["projects"]] == ["demo"]
    # The admin lists every project.
    names = {p["name"] for p in api.request("GET", f"{V3}/projects",
                                            admin_token).json()["projects"]}
    assert {"admin", "demo", "service"} <= names


def test_member_reads_only_the_project_its_token_is_scoped_to(api: Api, demo_token: str,
                                                              admin_token: str) -> None:
    demo = _id(api, admin_token, "projects", "demo")
    other = _id(api, admin_token, "projects", "admin")
    assert api.request("GET", f"{V3}/projects/{demo}", demo_token).status_code == 200
    assert api.request("GET", f"{V3}/projects/{demo}/tags", demo_token).status_code == 200
    assert api.request("GET", f"{V3}/projects/{other}", demo_token).status_code == 403
    assert api.request("GET", f"{V3}/projects/{other}/tags", demo_token).status_code == 403
    # Not found is 403 to a non-admin (no probing for ids), 404 to the admin.
    assert api.request("GET", f"{V3}/projects/nope", demo_token).status_code == 403
    assert api.request("GET", f"{V3}/projects/nope", admin_token).status_code == 404


def test_system_reader_lists_every_project(api: Api, admin_token: str) -> None:
    user = _user(api, admin_token, "auditor", "auditor-pw")
    reader = _id(api, admin_token, "roles", "reader")
    assert api.request("PUT", f"{V3}/system/users/{user}/roles/{reader}",
                       admin_token).status_code == 204
    token = _scoped(api, "auditor", "auditor-pw", {"system": {"all": True}})
    body = api.request("GET", f"{V3}/auth/tokens", token,
                       headers={"X-Subject-Token": token}).json()["token"]
    assert body["system"] == {"all": True}
    assert [r["name"] for r in body["roles"]] == ["reader"]
    r = api.request("GET", f"{V3}/projects", token)
    assert r.status_code == 200
    assert {"admin", "demo", "service"} <= {p["name"] for p in r.json()["projects"]}
    # A reader reads; it does not create.
    r = api.request("POST", f"{V3}/projects", token, json={"project": {"name": "no"}})
    assert r.status_code == 403
    assert api.request("GET", f"{V3}/auth/system", token).json()["system"] == [{"all": True}]


def test_domain_reader_lists_only_its_domains_projects(api: Api, admin_token: str) -> None:
    r = api.request("POST", f"{V3}/domains", admin_token, json={"domain": {"name": "d-read"}})
    domain = r.json()["domain"]["id"]
    r = api.request("POST", f"{V3}/projects", admin_token,
                    json={"project": {"name": "in-d-read", "domain_id": domain}})
    inside = r.json()["project"]["id"]
    user = _user(api, admin_token, "d-reader", "d-reader-pw")
    manager = _id(api, admin_token, "roles", "manager")
    assert api.request("PUT", f"{V3}/domains/{domain}/users/{user}/roles/{manager}",
                       admin_token).status_code == 204
    token = _scoped(api, "d-reader", "d-reader-pw", {"domain": {"id": domain}})
    r = api.request("GET", f"{V3}/projects", token)
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["projects"]] == [inside]
    assert api.request("GET", f"{V3}/projects/{inside}", token).status_code == 200
    demo = _id(api, admin_token, "projects", "demo")
    assert api.request("GET", f"{V3}/projects/{demo}", token).status_code == 403


def test_user_changes_own_password_without_admin(api: Api, admin_token: str,
                                                 cloud: InProcessCloud) -> None:
    user = _user(api, admin_token, "self-service", "old-pw")
    token = api.token("self-service", "old-pw")
    # Keystone asks for no token: the original password is the proof.
    r = api.request("POST", f"{V3}/users/{user}/password",
                    json={"user": {"original_password": "old-pw", "password": "new-pw"}})
    assert r.status_code == 204, r.text
    assert api.request("GET", f"{V3}/auth/projects", token).status_code == 401  # revoked
    assert api.token("self-service", "new-pw")
    r = api.request("POST", f"{V3}/auth/tokens", json=password_auth("self-service", "old-pw"))
    assert r.status_code == 401


def test_password_change_status_codes(api: Api, admin_token: str, demo_token: str) -> None:
    user = _user(api, admin_token, "pw-codes", "pw-1")
    url = f"{V3}/users/{user}/password"
    r = api.request("POST", url, demo_token,
                    json={"user": {"original_password": "wrong", "password": "pw-2"}})
    assert r.status_code == 401
    assert r.json()["error"]["message"].startswith("Error when changing user password")
    r = api.request("POST", f"{V3}/users/nobody/password",
                    json={"user": {"original_password": "x", "password": "pw-2"}})
    assert r.status_code == 401
    r = api.request("POST", url, json={"user": {"password": "pw-2"}})
    assert r.status_code == 400 and "original_password" in r.json()["error"]["message"]
    r = api.request("POST", url, json={"user": {"original_password": "pw-1",
                                                 "password": "pw-2", "extra": 1}})
    assert r.status_code == 400 and "user.extra" in r.json()["error"]["message"]
    # lock_password: the admin decides, the user may not change it (Keystone's
    # PasswordSelfServiceDisabled is a validation error, 400).
    assert api.request("PATCH", f"{V3}/users/{user}", admin_token, json={
        "user": {"options": {"lock_password": True}}}).status_code == 200
    r = api.request("POST", url, json={"user": {"original_password": "pw-1",
                                                 "password": "pw-2"}})
    assert r.status_code == 400 and "password policy" in r.json()["error"]["message"]
    assert api.token("pw-codes", "pw-1")


def test_a_cloud_bootstrapped_before_gets_the_new_roles_on_start(tmp_path: Any) -> None:
    """Clouds made with admin, member and reader only (admin -> member) are brought to
    Keystone's five roles by the next start, keeping the role ids they had."""
    from sqlalchemy import delete, select

    from gureum.db import Database
    from gureum.identity import bootstrap
    from gureum.identity import models as m
    from gureum.identity.core import Identity
    from tests.harness import make_settings

    settings = make_settings(tmp_path / "data")
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade()
    ident = Identity(settings, db)
    ident.keys.setup()
    bootstrap.bootstrap(ident, "http://127.0.0.1:1", "RegionOne")
    with db.session() as s:  # back to what the first version made
        roles = {r.name: r.id for r in s.scalars(select(m.Role))}
        s.execute(delete(m.ImpliedRole))
        s.execute(delete(m.Role).where(m.Role.name.in_(["manager", "service"])))
        s.add(m.ImpliedRole(prior_role_id=roles["admin"], implied_role_id=roles["member"]))
        s.add(m.ImpliedRole(prior_role_id=roles["member"], implied_role_id=roles["reader"]))
    bootstrap.reconcile_roles(ident)
    with db.session(write=False) as s:
        now = {r.name: r.id for r in s.scalars(select(m.Role))}
        pairs = {(p, i) for p, i in s.execute(select(m.ImpliedRole.prior_role_id,
                                                     m.ImpliedRole.implied_role_id))}
    db.dispose()
    assert set(now) == {"admin", "manager", "member", "reader", "service"}
    assert all(now[n] == roles[n] for n in ("admin", "member", "reader"))
    assert pairs == {(now["admin"], now["manager"]), (now["manager"], now["member"]),
                     (now["member"], now["reader"])}


def test_service_role_validates_tokens_it_is_given(api: Api, admin_token: str,
                                                    cloud: InProcessCloud) -> None:
    """Service-to-service: a service user (the service role, as Keystone's bootstrap
    makes for nova, neutron, …) validates users' tokens; it may not revoke them."""
    user = _user(api, admin_token, "svc-nova", "svc-pw")
    service_role = _id(api, admin_token, "roles", "service")
    service_project = _id(api, admin_token, "projects", "service")
    assert api.request("PUT", f"{V3}/projects/{service_project}/users/{user}/roles/"
                       f"{service_role}", admin_token).status_code == 204
    svc = api.token("svc-nova", "svc-pw", "service")
    body = api.request("GET", f"{V3}/auth/tokens", svc,
                       headers={"X-Subject-Token": svc}).json()["token"]
    assert [r["name"] for r in body["roles"]] == ["service"]  # implies nothing
    subject = api.token("demo", cloud.demo_password, "demo")
    headers = {"X-Subject-Token": subject}
    r = api.request("GET", f"{V3}/auth/tokens", svc, headers=headers)
    assert r.status_code == 200 and r.json()["token"]["user"]["name"] == "demo"
    r = api.request("HEAD", f"{V3}/auth/tokens", svc, headers=headers)
    assert r.status_code == 403
    r = api.request("DELETE", f"{V3}/auth/tokens", svc, headers=headers)
    assert r.status_code == 403
    # A plain member may not validate someone else's token.
    member = api.token("demo", cloud.demo_password, "demo")
    admin_headers = {"X-Subject-Token": admin_token}
    assert api.request("GET", f"{V3}/auth/tokens", member,
                       headers=admin_headers).status_code == 403
    # A system reader may check and validate, not revoke.
    user = _user(api, admin_token, "token-auditor", "ta-pw")
    reader = _id(api, admin_token, "roles", "reader")
    api.request("PUT", f"{V3}/system/users/{user}/roles/{reader}", admin_token)
    auditor = _scoped(api, "token-auditor", "ta-pw", {"system": {"all": True}})
    assert api.request("HEAD", f"{V3}/auth/tokens", auditor,
                       headers=headers).status_code == 200
    assert api.request("GET", f"{V3}/auth/tokens", auditor,
                       headers=headers).status_code == 200
    assert api.request("DELETE", f"{V3}/auth/tokens", auditor,
                       headers=headers).status_code == 403
    assert api.request("GET", f"{V3}/auth/projects", subject).status_code == 200
