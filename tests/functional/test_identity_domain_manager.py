"""Keystone's domain manager persona (2024.1 defaults) over real HTTP: the manager role
on a domain-scoped token manages that domain's users, groups, memberships and the
grants of manager, member and reader in it; everything outside the domain is 403
(or 404 where Keystone looks the target up first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import Api

V3 = "/identity/v3"


def _auth(user: str, password: str, user_domain: str, scope: dict[str, Any] | None
          ) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": user_domain}, "password": password}}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def _token(api: Api, user: str, password: str, user_domain: str,
           scope: dict[str, Any] | None) -> str:
    r = api.request("POST", f"{V3}/auth/tokens",
                    json=_auth(user, password, user_domain, scope))
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def _made(r: Any, key: str) -> str:
    assert r.status_code == 201, r.text
    return str(r.json()[key]["id"])


@dataclass
class World:
    admin: str
    dom1: str
    dom2: str
    p1: str  # project in dom1
    p2: str  # project in dom2
    u2: str  # user in dom2
    g2: str  # group in dom2
    manager: str  # token: manager role on dom1, domain-scoped
    reader: str  # token: reader role on dom1, domain-scoped
    roles: dict[str, str]


@pytest.fixture(scope="module")
def world(api: Api, admin_token: str) -> World:
    a = admin_token

    def post(path: str, key: str, body: dict[str, Any]) -> str:
        return _made(api.request("POST", f"{V3}/{path}", a, json={key: body}), key)

    dom1 = post("domains", "domain", {"name": "dom1"})
    dom2 = post("domains", "domain", {"name": "dom2"})
    p1 = post("projects", "project", {"name": "p1", "domain_id": dom1})
    p2 = post("projects", "project", {"name": "p2", "domain_id": dom2})
    u2 = post("users", "user", {"name": "u2", "domain_id": dom2, "password": "u2-pw"})
    g2 = post("groups", "group", {"name": "g2", "domain_id": dom2})
    roles = {r["name"]: r["id"] for r in api.request("GET", f"{V3}/roles", a).json()["roles"]}
    for name, role in (("dm", "manager"), ("dr", "reader")):
        user = post("users", "user", {"name": name, "domain_id": dom1,
                                      "password": f"{name}-pw"})
        r = api.request("PUT", f"{V3}/domains/{dom1}/users/{user}/roles/{roles[role]}", a)
        assert r.status_code == 204, r.text
    scope = {"domain": {"id": dom1}}
    return World(a, dom1, dom2, p1, p2, u2, g2,
                 _token(api, "dm", "dm-pw", dom1, scope),
                 _token(api, "dr", "dr-pw", dom1, scope), roles)


def test_domain_manager_creates_reads_changes_and_deletes_its_domains_users(
        api: Api, world: World) -> None:
    w, t = world, world.manager
    r = api.request("POST", f"{V3}/users", t, json={"user": {
        "name": "alice", "domain_id": w.dom1, "password": "alice-pw"}})
    alice = _made(r, "user")
    assert r.json()["user"]["domain_id"] == w.dom1
    # Without a domain the user lands in the token's domain (as a project does).
    r = api.request("POST", f"{V3}/users", t, json={"user": {"name": "bob"}})
    assert r.status_code == 201 and r.json()["user"]["domain_id"] == w.dom1
    # Not in another domain, not in the default one.
    for domain in (w.dom2, "default"):
        r = api.request("POST", f"{V3}/users", t, json={"user": {
            "name": "mallory", "domain_id": domain}})
        assert r.status_code == 403, r.text
        assert "identity:create_user" in r.json()["error"]["message"]
    names = {u["name"] for u in api.request("GET", f"{V3}/users", t).json()["users"]}
    assert names == {"alice", "bob", "dm", "dr"}
    assert api.request("GET", f"{V3}/users?domain_id={w.dom2}", t).json()["users"] == []
    assert api.request("GET", f"{V3}/users/{alice}", t).status_code == 200
    assert api.request("GET", f"{V3}/users/{w.u2}", t).status_code == 403
    # A user that does not exist is a 403 to the manager, a 404 to the admin.
    assert api.request("GET", f"{V3}/users/nope", t).status_code == 403
    assert api.request("GET", f"{V3}/users/nope", w.admin).status_code == 404
    assert api.request("PATCH", f"{V3}/users/nope", t,
                       json={"user": {"description": "x"}}).status_code == 403
    # A password reset in its domain works at once; outside it, nothing changes.
    r = api.request("PATCH", f"{V3}/users/{alice}", t,
                    json={"user": {"password": "alice-new", "description": "reset"}})
    assert r.status_code == 200, r.text
    _token(api, "alice", "alice-new", w.dom1, None)
    r = api.request("PATCH", f"{V3}/users/{w.u2}", t, json={"user": {"password": "owned"}})
    assert r.status_code == 403
    _token(api, "u2", "u2-pw", w.dom2, None)
    assert api.request("DELETE", f"{V3}/users/{w.u2}", t).status_code == 403
    assert api.request("DELETE", f"{V3}/users/{alice}", t).status_code == 204
    assert api.request("GET", f"{V3}/users/{alice}", w.admin).status_code == 404


def test_domain_manager_manages_its_domains_groups_and_their_members(
        api: Api, world: World) -> None:
    w, t = world, world.manager
    group = _made(api.request("POST", f"{V3}/groups", t, json={"group": {
        "name": "ops", "domain_id": w.dom1}}), "group")
    carol = _made(api.request("POST", f"{V3}/users", t, json={"user": {
        "name": "carol", "domain_id": w.dom1}}), "user")
    r = api.request("POST", f"{V3}/groups", t, json={"group": {"name": "x",
                                                               "domain_id": w.dom2}})
    assert r.status_code == 403
    assert [g["id"] for g in api.request("GET", f"{V3}/groups", t).json()["groups"]] == [group]
    assert api.request("GET", f"{V3}/groups/{w.g2}", t).status_code == 403
    assert api.request("PATCH", f"{V3}/groups/{w.g2}", t,
                       json={"group": {"description": "x"}}).status_code == 403
    r = api.request("PATCH", f"{V3}/groups/{group}", t, json={"group": {"description": "on"}})
    assert r.status_code == 200 and r.json()["group"]["description"] == "on"
    member = f"{V3}/groups/{group}/users/{carol}"
    assert api.request("PUT", member, t).status_code == 204
    assert api.request("HEAD", member, t).status_code == 204
    users = api.request("GET", f"{V3}/groups/{group}/users", t).json()["users"]
    assert [u["id"] for u in users] == [carol]
    # Both the group and the user must be in the domain.
    assert api.request("PUT", f"{V3}/groups/{group}/users/{w.u2}", t).status_code == 403
    assert api.request("PUT", f"{V3}/groups/{w.g2}/users/{carol}", t).status_code == 403
    assert api.request("HEAD", f"{V3}/groups/{w.g2}/users/{w.u2}", t).status_code == 403
    assert api.request("GET", f"{V3}/groups/{w.g2}/users", t).status_code == 403
    assert api.request("DELETE", member, t).status_code == 204
    assert api.request("HEAD", member, t).status_code == 404
    # Keystone looks a group up before deleting: a missing one is 404 to everyone.
    assert api.request("DELETE", f"{V3}/groups/nope", t).status_code == 404
    assert api.request("DELETE", f"{V3}/groups/{w.g2}", t).status_code == 403
    assert api.request("DELETE", f"{V3}/groups/{group}", t).status_code == 204


def test_domain_manager_grants_manager_member_and_reader_in_its_domain_only(
        api: Api, world: World) -> None:
    w, t, roles = world, world.manager, world.roles
    dave = _made(api.request("POST", f"{V3}/users", t, json={"user": {
        "name": "dave", "domain_id": w.dom1, "password": "dave-pw"}}), "user")
    grant = f"{V3}/projects/{w.p1}/users/{dave}/roles"
    for name in ("manager", "member", "reader"):
        assert api.request("PUT", f"{grant}/{roles[name]}", t).status_code == 204, name
    # Nothing above manager: no admin (privilege escalation), no service.
    for name in ("admin", "service"):
        r = api.request("PUT", f"{grant}/{roles[name]}", t)
        assert r.status_code == 403, name
        assert "identity:create_grant" in r.json()["error"]["message"]
    body = _auth("dave", "dave-pw", w.dom1, {"project": {"id": w.p1}})
    r = api.request("POST", f"{V3}/auth/tokens", json=body)
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"manager", "member", "reader"}
    assert api.request("HEAD", f"{grant}/{roles['member']}", t).status_code == 204
    listed = api.request("GET", grant, t).json()["roles"]
    assert {x["name"] for x in listed} == {"manager", "member", "reader"}
    assert api.request("DELETE", f"{grant}/{roles['manager']}", t).status_code == 204
    # On the domain itself, to a group of the domain, and inherited to its projects.
    group = _made(api.request("POST", f"{V3}/groups", t, json={"group": {
        "name": "readers", "domain_id": w.dom1}}), "group")
    on_domain = f"{V3}/domains/{w.dom1}/groups/{group}/roles/{roles['reader']}"
    assert api.request("PUT", on_domain, t).status_code == 204
    inherited = (f"{V3}/OS-INHERIT/domains/{w.dom1}/users/{dave}/roles/{roles['member']}"
                 "/inherited_to_projects")
    assert api.request("PUT", inherited, t).status_code == 204
    assert api.request("DELETE", inherited, t).status_code == 204
    # Outside the domain: another domain's project, user or group; the domain itself.
    for path in (f"{V3}/projects/{w.p2}/users/{dave}/roles/{roles['member']}",
                 f"{V3}/projects/{w.p1}/users/{w.u2}/roles/{roles['member']}",
                 f"{V3}/projects/{w.p1}/groups/{w.g2}/roles/{roles['member']}",
                 f"{V3}/domains/{w.dom2}/users/{dave}/roles/{roles['member']}",
                 f"{V3}/system/users/{dave}/roles/{roles['reader']}"):
        assert api.request("PUT", path, t).status_code == 403, path
        assert api.request("HEAD", path, t).status_code == 403, path
    # Keystone looks up the role, user and target first: a missing one is a 404 ...
    assert api.request("PUT", f"{grant}/nope", t).status_code == 404
    assert api.request("PUT", f"{V3}/projects/nope/users/{dave}/roles/{roles['member']}",
                       t).status_code == 404
    assert api.request("PUT", f"{V3}/projects/{w.p1}/users/nope/roles/{roles['member']}",
                       t).status_code == 404
    # ... except the user of a revoke, which is then for admins only.
    path = f"{V3}/projects/{w.p1}/users/nope/roles/{roles['member']}"
    assert api.request("DELETE", path, t).status_code == 403
    assert api.request("DELETE", path, w.admin).status_code == 404


def test_domain_manager_lists_its_domains_role_assignments_and_roles(
        api: Api, world: World) -> None:
    w, t = world, world.manager
    admin_rows = api.request("GET", f"{V3}/role_assignments", w.admin).json()
    assert any(row["scope"].get("project", {}).get("id") == w.p2 or
               "system" in row["scope"] for row in admin_rows["role_assignments"])
    r = api.request("GET", f"{V3}/role_assignments", t)
    assert r.status_code == 200, r.text
    rows = r.json()["role_assignments"]
    assert rows
    projects = {row["scope"]["project"]["id"] for row in rows if "project" in row["scope"]}
    domains = {row["scope"]["domain"]["id"] for row in rows if "domain" in row["scope"]}
    assert projects <= {w.p1} and domains == {w.dom1}
    # Roles: the manager lists them and reads those it may grant.
    assert api.request("GET", f"{V3}/roles", t).status_code == 200
    assert api.request("GET", f"{V3}/roles/{w.roles['member']}", t).status_code == 200
    assert api.request("GET", f"{V3}/roles/{w.roles['admin']}", t).status_code == 403
    # Its own domain and no other.
    r = api.request("GET", f"{V3}/domains?name=dom1", t)
    assert [d["id"] for d in r.json()["domains"]] == [w.dom1]
    assert api.request("GET", f"{V3}/domains?name=dom2", t).json()["domains"] == []
    assert api.request("GET", f"{V3}/domains/{w.dom1}", t).status_code == 200
    assert api.request("GET", f"{V3}/domains/{w.dom2}", t).status_code == 403


def test_domain_reader_reads_its_domain_but_changes_nothing(api: Api, world: World) -> None:
    w, t = world, world.reader
    assert {u["name"] for u in api.request("GET", f"{V3}/users", t).json()["users"]} >= {
        "dm", "dr"}
    assert api.request("GET", f"{V3}/role_assignments", t).status_code == 200
    r = api.request("POST", f"{V3}/users", t, json={"user": {"name": "no",
                                                             "domain_id": w.dom1}})
    assert r.status_code == 403
    assert api.request("POST", f"{V3}/groups", t, json={"group": {
        "name": "no", "domain_id": w.dom1}}).status_code == 403
    dm = api.request("GET", f"{V3}/users?name=dm", t).json()["users"][0]["id"]
    r = api.request("PUT", f"{V3}/projects/{w.p1}/users/{dm}/roles/{w.roles['reader']}", t)
    assert r.status_code == 403
    # A reader does not pick roles to grant.
    assert api.request("GET", f"{V3}/roles", t).status_code == 403


def test_project_manager_is_no_domain_manager(api: Api, world: World) -> None:
    """The manager role on a project gives nothing in identity: Keystone's rules ask
    for a domain-scoped token."""
    w = world
    erin = _made(api.request("POST", f"{V3}/users", w.admin, json={"user": {
        "name": "erin", "domain_id": w.dom1, "password": "erin-pw"}}), "user")
    assert api.request("PUT", f"{V3}/projects/{w.p1}/users/{erin}/roles/"
                       f"{w.roles['manager']}", w.admin).status_code == 204
    t = _token(api, "erin", "erin-pw", w.dom1, {"project": {"id": w.p1}})
    assert api.request("GET", f"{V3}/users", t).status_code == 403
    assert api.request("POST", f"{V3}/users", t, json={"user": {
        "name": "no", "domain_id": w.dom1}}).status_code == 403
    assert api.request("PUT", f"{V3}/projects/{w.p1}/users/{erin}/roles/"
                       f"{w.roles['member']}", t).status_code == 403


def test_a_member_may_not_list_role_assignments_not_even_its_own(
        api: Api, demo_token: str) -> None:
    me = api.request("GET", f"{V3}/auth/tokens", demo_token,
                     headers={"X-Subject-Token": demo_token}).json()["token"]["user"]["id"]
    for query in (f"?user.id={me}", f"?user.id={me}&effective", ""):
        r = api.request("GET", f"{V3}/role_assignments{query}", demo_token)
        assert r.status_code == 403, query
        assert "identity:list_role_assignments" in r.json()["error"]["message"]
    # Its roles are in its token, its projects in /v3/auth/projects.
    assert api.request("GET", f"{V3}/auth/projects", demo_token).status_code == 200
