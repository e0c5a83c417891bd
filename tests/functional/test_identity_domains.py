"""Domain-specific configuration and projects acting as domains, over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.harness import Api

V3 = "/identity/v3"


def _domain(api: Api, admin: str, name: str) -> str:
    r = api.request("POST", f"{V3}/domains", admin, json={"domain": {"name": name}})
    assert r.status_code == 201, r.text
    return str(r.json()["domain"]["id"])


def _config(api: Api, token: str, method: str, path: str, body: Any = None) -> Any:
    kwargs = {"json": body} if body is not None else {}
    return api.request(method, f"{V3}/domains/{path}", token, **kwargs)


def test_domain_config_lifecycle(api: Api, admin_token: str) -> None:
    d = _domain(api, admin_token, "ldap-domain")
    config = {"identity": {"driver": "ldap"},
              "ldap": {"url": "ldap://ldap.example.com", "user_tree_dn": "ou=Users",
                       "password": "s3cret"}}
    r = _config(api, admin_token, "PUT", f"{d}/config", {"config": config})
    assert r.status_code == 201, r.text
    # The sensitive ldap.password is stored but never shown.
    shown = {"identity": {"driver": "ldap"},
             "ldap": {"url": "ldap://ldap.example.com", "user_tree_dn": "ou=Users"}}
    assert r.json() == {"config": shown}
    assert _config(api, admin_token, "GET", f"{d}/config").json() == {"config": shown}
    assert _config(api, admin_token, "GET", f"{d}/config/ldap").json() == {
        "config": shown["ldap"]}
    assert _config(api, admin_token, "GET", f"{d}/config/ldap/url").json() == {
        "config": {"url": "ldap://ldap.example.com"}}
    assert _config(api, admin_token, "GET", f"{d}/config/ldap/password").status_code == 404
    # PATCH merges; a group or option in the path limits it to exactly that.
    r = _config(api, admin_token, "PATCH", f"{d}/config",
                {"config": {"ldap": {"url": "ldap://other"}}})
    assert r.status_code == 200 and r.json()["config"]["ldap"]["url"] == "ldap://other"
    r = _config(api, admin_token, "PATCH", f"{d}/config/ldap/user_tree_dn",
                {"config": {"user_tree_dn": "ou=People"}})
    assert r.status_code == 200 and r.json()["config"]["ldap"]["user_tree_dn"] == "ou=People"
    r = _config(api, admin_token, "PATCH", f"{d}/config/ldap",
                {"config": {"identity": {"driver": "sql"}}})
    assert r.status_code == 403
    r = _config(api, admin_token, "PATCH", f"{d}/config/ldap/suffix",
                {"config": {"suffix": "dc=x"}})
    assert r.status_code == 404  # not set yet: a path update needs it to exist
    # PUT again replaces (200, not 201).
    r = _config(api, admin_token, "PUT", f"{d}/config",
                {"config": {"identity": {"driver": "sql"}}})
    assert r.status_code == 200 and r.json() == {"config": {"identity": {"driver": "sql"}}}
    # DELETE an option, a group, everything.
    assert _config(api, admin_token, "DELETE", f"{d}/config/ldap").status_code == 404
    assert _config(api, admin_token, "DELETE",
                   f"{d}/config/identity/driver").status_code == 204
    assert _config(api, admin_token, "GET", f"{d}/config").status_code == 404
    assert _config(api, admin_token, "DELETE", f"{d}/config").status_code == 204


def test_domain_config_refuses_what_keystone_refuses(api: Api, admin_token: str,
                                                     demo_token: str) -> None:
    d = _domain(api, admin_token, "strict-config")
    for bad in ({}, {"identity": {}}, {"identity": "ldap"}, {"assignment": {"driver": "x"}},
                {"ldap": {"no_such_option": 1}}):
        r = _config(api, admin_token, "PUT", f"{d}/config", {"config": bad})
        assert r.status_code == 403, (bad, r.text)
        assert "Invalid domain specific configuration" in r.json()["error"]["message"]
    assert _config(api, admin_token, "PUT", "nope/config",
                   {"config": {"identity": {"driver": "ldap"}}}).status_code == 404
    assert _config(api, admin_token, "GET", f"{d}/config/assignment").status_code == 403
    # Only admins write, system readers and admins read.
    assert _config(api, demo_token, "PUT", f"{d}/config",
                   {"config": {"identity": {"driver": "ldap"}}}).status_code == 403
    assert _config(api, demo_token, "GET", f"{d}/config").status_code == 403
    assert _config(api, demo_token, "GET", "config/default").status_code == 403


def test_domain_config_defaults(api: Api, admin_token: str) -> None:
    r = _config(api, admin_token, "GET", "config/default")
    assert r.status_code == 200
    config = r.json()["config"]
    assert config["identity"] == {"driver": "sql", "list_limit": None}
    assert config["ldap"]["url"] == "ldap://localhost" and "password" not in config["ldap"]
    assert _config(api, admin_token, "GET", "config/ldap/default").json()["config"][
        "user_objectclass"] == "inetOrgPerson"
    assert _config(api, admin_token, "GET", "config/ldap/url/default").json() == {
        "config": {"url": "ldap://localhost"}}
    assert _config(api, admin_token, "GET", "config/ldap/password/default").status_code == 403
    # Anyone reads the default domain's password rules (Keystone's security_compliance).
    r = _config(api, admin_token, "GET", "default/config/security_compliance")
    assert r.json() == {"config": {"security_compliance": {
        "password_regex": None, "password_regex_description": None}}}


def test_project_acting_as_domain(api: Api, admin_token: str, demo_token: str) -> None:
    r = api.request("POST", f"{V3}/projects", admin_token, json={"project": {
        "name": "acting-domain", "is_domain": True, "description": "a domain"}})
    assert r.status_code == 201, r.text
    made = r.json()["project"]
    assert made["is_domain"] is True and made["domain_id"] is None
    assert made["parent_id"] is None
    # It is a domain: it shows up as one, and projects can be made in it.
    r = api.request("GET", f"{V3}/domains/{made['id']}", admin_token)
    assert r.status_code == 200 and r.json()["domain"]["name"] == "acting-domain"
    r = api.request("POST", f"{V3}/projects", admin_token, json={"project": {
        "name": "inside", "parent_id": made["id"]}})
    assert r.status_code == 201 and r.json()["project"]["domain_id"] == made["id"]
    # Listing: domains only with is_domain=true, never among ordinary projects.
    listed = api.request("GET", f"{V3}/projects?is_domain=true", admin_token).json()
    names = {p["name"] for p in listed["projects"]}
    assert {"acting-domain", "Default"} <= names
    assert all(p["is_domain"] for p in listed["projects"])
    ordinary = api.request("GET", f"{V3}/projects", admin_token).json()["projects"]
    assert "acting-domain" not in {p["name"] for p in ordinary}
    assert not any(p["is_domain"] for p in ordinary)
    r = api.request("GET", f"{V3}/projects?is_domain=true&name=acting-domain", admin_token)
    assert [p["id"] for p in r.json()["projects"]] == [made["id"]]
    r = api.request("GET", f"{V3}/projects/{made['id']}", admin_token)
    assert r.status_code == 200 and r.json()["project"]["is_domain"] is True
    assert api.request("GET", f"{V3}/projects/{made['id']}", demo_token).status_code == 403
    # Updating through the projects API updates the domain; is_domain stays.
    r = api.request("PATCH", f"{V3}/projects/{made['id']}", admin_token,
                    json={"project": {"description": "renamed"}})
    assert r.status_code == 200 and r.json()["project"]["description"] == "renamed"
    r = api.request("PATCH", f"{V3}/projects/{made['id']}", admin_token,
                    json={"project": {"is_domain": False}})
    assert r.status_code == 400 and "is_domain" in r.json()["error"]["message"]
    demo = api.request("GET", f"{V3}/projects?name=demo", admin_token).json()["projects"][0]
    r = api.request("PATCH", f"{V3}/projects/{demo['id']}", admin_token,
                    json={"project": {"is_domain": True}})
    assert r.status_code == 400


def test_is_domain_project_400s(api: Api, admin_token: str, demo_token: str) -> None:
    def create(**project: Any) -> Any:
        return api.request("POST", f"{V3}/projects", admin_token, json={"project": project})

    r = create(name="child-domain", is_domain=True, parent_id="default")
    assert r.status_code == 400 and "root projects" in r.json()["error"]["message"]
    r = create(name="child-domain", is_domain=True, domain_id="default")
    assert r.status_code == 400
    r = create(name="maybe", is_domain="yes")
    assert r.status_code == 400 and "project.is_domain" in r.json()["error"]["message"]
    assert create(name="Default", is_domain=True).status_code == 409
    other = _domain(api, admin_token, "other-parent")
    r = create(name="mismatch", parent_id=other, domain_id="default")
    assert r.status_code == 400 and "acting as a domain" in r.json()["error"]["message"]
    r = api.request("POST", f"{V3}/projects", demo_token,
                    json={"project": {"name": "demo-domain", "is_domain": True}})
    assert r.status_code == 403
