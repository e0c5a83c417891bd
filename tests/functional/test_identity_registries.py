"""/v3/policies, OAuth1 consumers, project tags as a list, domain-specific roles in
effective assignments, and the domain manager."""

from __future__ import annotations

from typing import Any

from tests.harness import Api, password_auth

V3 = "/identity/v3"


def _id(api: Api, admin: str, collection: str, name: str) -> str:
    return str(api.request("GET", f"{V3}/{collection}?name={name}",
                           admin).json()[collection][0]["id"])


def test_policy_registry(api: Api, admin_token: str, demo_token: str) -> None:
    r = api.request("POST", f"{V3}/policies", admin_token, json={"policy": {
        "type": "application/json", "blob": '{"compute:get": ""}', "note": "extra kept"}})
    assert r.status_code == 201, r.text
    policy = r.json()["policy"]
    assert policy["type"] == "application/json" and policy["note"] == "extra kept"
    url = f"{V3}/policies/{policy['id']}"
    assert policy["links"]["self"].endswith(f"/v3/policies/{policy['id']}")
    assert api.request("GET", url, admin_token).json()["policy"]["blob"] == policy["blob"]
    listed = api.request("GET", f"{V3}/policies?type=application/json",
                         admin_token).json()["policies"]
    assert policy["id"] in {p["id"] for p in listed}
    assert api.request("GET", f"{V3}/policies?type=text/plain",
                       admin_token).json()["policies"] == []
    r = api.request("PATCH", url, admin_token, json={"policy": {"blob": "{}"}})
    assert r.status_code == 200 and r.json()["policy"]["blob"] == "{}"
    # Bad input, and members may neither read nor write.
    assert api.request("POST", f"{V3}/policies", admin_token,
                       json={"policy": {"type": "x"}}).status_code == 400
    assert api.request("POST", f"{V3}/policies", admin_token,
                       json={"policy": {"type": "x", "blob": 1}}).status_code == 400
    assert api.request("PATCH", url, admin_token, json={"policy": {}}).status_code == 400
    assert api.request("GET", url, demo_token).status_code == 403
    assert api.request("POST", f"{V3}/policies", demo_token,
                       json={"policy": {"type": "x", "blob": "y"}}).status_code == 403
    assert api.request("DELETE", url, admin_token).status_code == 204
    assert api.request("GET", url, admin_token).status_code == 404


def test_oauth1_consumer_registry(api: Api, admin_token: str, demo_token: str) -> None:
    base = f"{V3}/OS-OAUTH1/consumers"
    r = api.request("POST", base, admin_token, json={"consumer": {"description": "cli"}})
    assert r.status_code == 201, r.text
    consumer = r.json()["consumer"]
    assert consumer["description"] == "cli" and len(consumer["secret"]) == 32
    url = f"{base}/{consumer['id']}"
    shown = api.request("GET", url, admin_token).json()["consumer"]
    assert "secret" not in shown and shown["description"] == "cli"
    listed = api.request("GET", base, admin_token).json()["consumers"]
    assert consumer["id"] in {c["id"] for c in listed}
    assert all("secret" not in c for c in listed)
    r = api.request("PATCH", url, admin_token, json={"consumer": {"description": "new"}})
    assert r.status_code == 200 and r.json()["consumer"]["description"] == "new"
    r = api.request("PATCH", url, admin_token, json={"consumer": {"secret": "mine"}})
    assert r.status_code == 400
    assert api.request("GET", url, demo_token).status_code == 403
    assert api.request("POST", base, demo_token, json={"consumer": {}}).status_code == 403
    assert api.request("DELETE", url, admin_token).status_code == 204
    assert api.request("GET", url, admin_token).status_code == 404


def test_project_tags_replaced_with_a_list(api: Api, admin_token: str,
                                           demo_token: str) -> None:
    r = api.request("POST", f"{V3}/projects", admin_token,
                    json={"project": {"name": "tagged", "tags": ["old"]}})
    project = r.json()["project"]["id"]
    tags = f"{V3}/projects/{project}/tags"
    r = api.request("PUT", tags, admin_token, json={"tags": ["a", "b", "a"]})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["a", "b"] and r.json()["links"]["self"].endswith("/tags")
    assert api.request("GET", tags, admin_token).json()["tags"] == ["a", "b"]
    # Keystone's limits: 80 tags, 255 characters, no "/" or ",".
    assert api.request("PUT", tags, admin_token,
                       json={"tags": [f"t{i}" for i in range(80)]}).status_code == 200
    r = api.request("PUT", tags, admin_token, json={"tags": [f"t{i}" for i in range(81)]})
    assert r.status_code == 400 and "tags" in r.json()["error"]["message"]
    assert api.request("PUT", f"{tags}/one-more", admin_token).status_code == 400
    assert api.request("PUT", tags, admin_token, json={"tags": ["x" * 256]}).status_code == 400
    assert api.request("PUT", tags, admin_token, json={"tags": ["a,b"]}).status_code == 400
    assert api.request("PUT", tags, admin_token, json={"tags": "a"}).status_code == 400
    assert api.request("PUT", tags, admin_token, json={}).status_code == 400
    assert api.request("PUT", tags, demo_token, json={"tags": []}).status_code == 403
    assert api.request("DELETE", tags, admin_token).status_code == 204
    assert api.request("GET", tags, admin_token).json()["tags"] == []
    r = api.request("PUT", f"{tags}/single", admin_token)
    assert r.status_code == 201 and r.headers["location"].endswith(f"{project}/tags/single")
    # The tag filters of GET /v3/projects.
    r = api.request("GET", f"{V3}/projects?tags=single", admin_token)
    assert [p["id"] for p in r.json()["projects"]] == [project]
    r = api.request("GET", f"{V3}/projects?not-tags=single", admin_token)
    assert project not in {p["id"] for p in r.json()["projects"]}


def _grant(api: Api, admin: str, project: str, user: str, role: str) -> None:
    r = api.request("PUT", f"{V3}/projects/{project}/users/{user}/roles/{role}", admin)
    assert r.status_code == 204, r.text


def test_domain_specific_roles_expand_to_what_they_imply(api: Api, admin_token: str) -> None:
    domain = api.request("POST", f"{V3}/domains", admin_token,
                         json={"domain": {"name": "dsr-domain"}}).json()["domain"]["id"]
    project = api.request("POST", f"{V3}/projects", admin_token, json={"project": {
        "name": "dsr-project", "domain_id": domain}}).json()["project"]["id"]
    user = api.request("POST", f"{V3}/users", admin_token, json={"user": {
        "name": "dsr-user", "password": "dsr-pw"}}).json()["user"]["id"]

    def role(name: str, **extra: Any) -> str:
        r = api.request("POST", f"{V3}/roles", admin_token,
                        json={"role": {"name": name, **extra}})
        assert r.status_code == 201, r.text
        return str(r.json()["role"]["id"])

    # dsr-operator (domain role) implies dsr-helper (domain role) implies member.
    operator = role("dsr-operator", domain_id=domain)
    helper = role("dsr-helper", domain_id=domain)
    member = _id(api, admin_token, "roles", "member")
    reader = _id(api, admin_token, "roles", "reader")
    for prior, implied in ((operator, helper), (helper, member)):
        assert api.request("PUT", f"{V3}/roles/{prior}/implies/{implied}",
                           admin_token).status_code == 201
    _grant(api, admin_token, project, user, operator)
    r = api.request("GET", f"{V3}/role_assignments?effective&user.id={user}", admin_token)
    rows = r.json()["role_assignments"]
    assert {row["role"]["id"] for row in rows} == {member, reader}
    by_role = {row["role"]["id"]: row for row in rows}
    assert by_role[member]["links"]["assignment"].endswith(
        f"/projects/{project}/users/{user}/roles/{helper}")
    assert by_role[member]["links"]["prior_role"].endswith(
        f"/prior_role/{member}/implies/{helper}")
    # Not effective: the grant itself, domain role and all.
    r = api.request("GET", f"{V3}/role_assignments?user.id={user}", admin_token)
    assert [row["role"]["id"] for row in r.json()["role_assignments"]] == [operator]
    # A token carries the global roles only.
    body = password_auth("dsr-user", "dsr-pw")
    body["auth"]["scope"] = {"project": {"id": project}}
    r = api.request("POST", f"{V3}/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"member", "reader"}
    # Keystone's rules for domain roles.
    r = api.request("PUT", f"{V3}/roles/{member}/implies/{operator}", admin_token)
    assert r.status_code == 403  # a global role cannot imply a domain-specific one
    admin_role = _id(api, admin_token, "roles", "admin")
    assert api.request("PUT", f"{V3}/roles/{helper}/implies/{admin_role}",
                       admin_token).status_code == 403  # nothing implies admin
    demo = _id(api, admin_token, "projects", "demo")
    r = api.request("PUT", f"{V3}/projects/{demo}/users/{user}/roles/{operator}",
                    admin_token)
    assert r.status_code == 403 and "same domain" in r.json()["error"]["message"]


def test_domain_manager_manages_its_domains_projects(api: Api, admin_token: str) -> None:
    domain = api.request("POST", f"{V3}/domains", admin_token,
                         json={"domain": {"name": "managed"}}).json()["domain"]["id"]
    user = api.request("POST", f"{V3}/users", admin_token, json={"user": {
        "name": "dom-manager", "password": "dm-pw"}}).json()["user"]["id"]
    manager = _id(api, admin_token, "roles", "manager")
    assert api.request("PUT", f"{V3}/domains/{domain}/users/{user}/roles/{manager}",
                       admin_token).status_code == 204
    body = password_auth("dom-manager", "dm-pw", domain=domain)
    token = api.request("POST", f"{V3}/auth/tokens", json=body).headers["x-subject-token"]
    # Without a domain_id the project lands in the token's domain.
    r = api.request("POST", f"{V3}/projects", token, json={"project": {"name": "team-a"}})
    assert r.status_code == 201, r.text
    assert r.json()["project"]["domain_id"] == domain
    url = f"{V3}/projects/{r.json()['project']['id']}"
    assert api.request("PATCH", url, token,
                       json={"project": {"description": "ours"}}).status_code == 200
    assert api.request("PUT", f"{url}/tags", token, json={"tags": ["x"]}).status_code == 200
    # Not in another domain.
    r = api.request("POST", f"{V3}/projects", token,
                    json={"project": {"name": "elsewhere", "domain_id": "default"}})
    assert r.status_code == 403
    demo = _id(api, admin_token, "projects", "demo")
    assert api.request("PATCH", f"{V3}/projects/{demo}", token,
                       json={"project": {"description": "x"}}).status_code == 403
    assert api.request("DELETE", url, token).status_code == 204
