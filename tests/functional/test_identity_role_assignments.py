"""GET /v3/role_assignments as Keystone answers it: effective rows say where they came
from (the group's grant and the membership, the inherited grant on the domain or the
parent project, the prior role), and contradicting filters are 400s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import Api

V3 = "/identity/v3"


@dataclass
class Setup:
    domain: str
    parent: str  # project in domain
    child: str  # project under parent
    other: str  # another project in domain
    user: str
    group: str
    roles: dict[str, str]


@pytest.fixture(scope="module")
def setup(api: Api, admin_token: str) -> Setup:
    a = admin_token

    def post(path: str, key: str, body: dict[str, Any]) -> str:
        r = api.request("POST", f"{V3}/{path}", a, json={key: body})
        assert r.status_code == 201, r.text
        return str(r.json()[key]["id"])

    domain = post("domains", "domain", {"name": "ra-domain"})
    parent = post("projects", "project", {"name": "ra-parent", "domain_id": domain})
    child = post("projects", "project", {"name": "ra-child", "parent_id": parent})
    other = post("projects", "project", {"name": "ra-other", "domain_id": domain})
    user = post("users", "user", {"name": "ra-user", "domain_id": domain})
    group = post("groups", "group", {"name": "ra-group", "domain_id": domain})
    assert api.request("PUT", f"{V3}/groups/{group}/users/{user}", a).status_code == 204
    roles = {r["name"]: r["id"] for r in api.request("GET", f"{V3}/roles", a).json()["roles"]}
    return Setup(domain, parent, child, other, user, group, roles)


def _rows(api: Api, token: str, query: str) -> list[dict[str, Any]]:
    r = api.request("GET", f"{V3}/role_assignments?{query}", token)
    assert r.status_code == 200, r.text
    return list(r.json()["role_assignments"])


def _put(api: Api, token: str, path: str) -> None:
    r = api.request("PUT", f"{V3}/{path}", token)
    assert r.status_code == 204, r.text


def _delete(api: Api, token: str, path: str) -> None:
    assert api.request("DELETE", f"{V3}/{path}", token).status_code == 204


def test_a_groups_grant_shows_each_member_with_the_group_grant_and_membership_links(
        api: Api, admin_token: str, setup: Setup) -> None:
    w, member, reader = setup, setup.roles["member"], setup.roles["reader"]
    grant = f"projects/{w.other}/groups/{w.group}/roles/{member}"
    _put(api, admin_token, grant)
    try:
        rows = _rows(api, admin_token, f"effective&user.id={w.user}")
        assert len(rows) == 2
        by_role = {r["role"]["id"]: r for r in rows}
        row = by_role[member]
        assert row["user"] == {"id": w.user} and "group" not in row
        assert row["scope"] == {"project": {"id": w.other}}
        assert row["links"]["assignment"].endswith(f"/v3/{grant}")
        assert row["links"]["membership"].endswith(f"/v3/groups/{w.group}/users/{w.user}")
        # The reader member implies comes from the same group grant, through member.
        implied = by_role[reader]
        assert implied["links"]["assignment"].endswith(f"/v3/{grant}")
        assert implied["links"]["prior_role"].endswith(
            f"/v3/prior_role/{reader}/implies/{member}")
        # Not effective: the group's grant itself.
        rows = _rows(api, admin_token, f"group.id={w.group}")
        assert [(r["group"], r["role"]["id"]) for r in rows] == [({"id": w.group}, member)]
    finally:
        _delete(api, admin_token, grant)


def test_an_inherited_domain_grant_shows_on_each_project_with_its_source(
        api: Api, admin_token: str, setup: Setup) -> None:
    w, member = setup, setup.roles["member"]
    grant = f"OS-INHERIT/domains/{w.domain}/users/{w.user}/roles/{member}" \
        "/inherited_to_projects"
    _put(api, admin_token, grant)
    try:
        rows = [r for r in _rows(api, admin_token, f"effective&user.id={w.user}")
                if r["role"]["id"] == member]
        assert {r["scope"]["project"]["id"] for r in rows} == {w.parent, w.child, w.other}
        for r in rows:
            assert r["scope"]["OS-INHERIT:inherited_to"] == "projects"
            assert r["links"]["assignment"].endswith(f"/v3/{grant}")
            assert "membership" not in r["links"]
        # A project filter finds the inherited row too; a domain inherits nothing.
        rows = _rows(api, admin_token,
                     f"effective&scope.project.id={w.child}&role.id={member}")
        assert [r["user"]["id"] for r in rows] == [w.user]
        assert _rows(api, admin_token, f"effective&scope.domain.id={w.domain}") == []
        # Not effective: the grant on the domain, marked inherited.
        rows = _rows(api, admin_token, f"user.id={w.user}")
        assert [(r["scope"], r["links"]["assignment"].split("/v3/")[1]) for r in rows] == [
            ({"domain": {"id": w.domain}, "OS-INHERIT:inherited_to": "projects"}, grant)]
    finally:
        _delete(api, admin_token, grant)


def test_an_inherited_group_grant_on_a_parent_reaches_the_subtree_only(
        api: Api, admin_token: str, setup: Setup) -> None:
    w, reader = setup, setup.roles["reader"]
    grant = f"OS-INHERIT/projects/{w.parent}/groups/{w.group}/roles/{reader}" \
        "/inherited_to_projects"
    _put(api, admin_token, grant)
    try:
        rows = _rows(api, admin_token, f"effective&user.id={w.user}&include_names")
        assert len(rows) == 1
        row = rows[0]
        # The child gets it, not the parent it was granted on.
        assert row["scope"]["project"]["id"] == w.child
        assert row["scope"]["project"]["name"] == "ra-child"
        assert row["scope"]["OS-INHERIT:inherited_to"] == "projects"
        assert row["user"]["name"] == "ra-user"
        assert row["links"]["assignment"].endswith(f"/v3/{grant}")
        assert row["links"]["membership"].endswith(f"/v3/groups/{w.group}/users/{w.user}")
    finally:
        _delete(api, admin_token, grant)


def test_system_grants_are_listed_but_not_in_the_effective_list(
        api: Api, admin_token: str, setup: Setup) -> None:
    w, reader = setup, setup.roles["reader"]
    grant = f"system/users/{w.user}/roles/{reader}"
    _put(api, admin_token, grant)
    try:
        rows = _rows(api, admin_token, f"user.id={w.user}")
        assert [r["scope"] for r in rows] == [{"system": {"all": True}}]
        assert rows[0]["links"]["assignment"].endswith(f"/v3/{grant}")
        assert _rows(api, admin_token, f"user.id={w.user}&effective") == []
    finally:
        _delete(api, admin_token, grant)


@pytest.mark.parametrize("query,message", [
    ("scope.domain.id=a&scope.project.id=b", "Specify a domain or project, not both"),
    ("scope.system=all&scope.domain.id=a", "Specify system or domain, not both"),
    ("scope.system=all&scope.project.id=b", "Specify system or project, not both"),
    ("user.id=a&group.id=b", "Specify a user or group, not both"),
    ("effective&group.id=b", "Combining effective and group filter"),
    ("effective&scope.domain.id=a&scope.OS-INHERIT:inherited_to=projects",
     "Combining effective, domain and inherited filters"),
])
def test_contradicting_filters_are_400(api: Api, admin_token: str, query: str,
                                       message: str) -> None:
    r = api.request("GET", f"{V3}/role_assignments?{query}", admin_token)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
