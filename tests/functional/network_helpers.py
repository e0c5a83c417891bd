"""Helpers for networking tests: create resources over the API, make users in other projects."""

from __future__ import annotations

from typing import Any

from tests.harness import Api

N = "/network/v2.0"


def create(api: Api, token: str, kind: str, status: int = 201, **body: Any) -> dict[str, Any]:
    r = api.request("POST", f"{N}/{kind}s", token, json={kind: body})
    assert r.status_code == status, r.text
    return dict(r.json()[kind]) if status == 201 else dict(r.json())


def get(api: Api, token: str, kind: str, ident: str, status: int = 200) -> dict[str, Any]:
    r = api.request("GET", f"{N}/{kind}s/{ident}", token)
    assert r.status_code == status, r.text
    return dict(r.json()[kind]) if status == 200 else dict(r.json())


def update(api: Api, token: str, kind: str, ident: str, status: int = 200, **body: Any
           ) -> dict[str, Any]:
    r = api.request("PUT", f"{N}/{kind}s/{ident}", token, json={kind: body})
    assert r.status_code == status, r.text
    return dict(r.json()[kind]) if status == 200 else dict(r.json())


def delete(api: Api, token: str, kind: str, ident: str, status: int = 204) -> None:
    r = api.request("DELETE", f"{N}/{kind}s/{ident}", token)
    assert r.status_code == status, r.text


def listing(api: Api, token: str, kind: str, query: str = "") -> list[dict[str, Any]]:
    r = api.request("GET", f"{N}/{kind}s{'?' + query if query else ''}", token)
    assert r.status_code == 200, r.text
    return list(r.json()[f"{kind}s"])


def error(r: Any, status: int, neutron_type: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = dict(r.json()["NeutronError"])
    if neutron_type:
        assert body["type"] == neutron_type, body
    return body


def network_with_subnet(api: Api, token: str, name: str, cidr: str, **subnet: Any
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    net = create(api, token, "network", name=name)
    sn = create(api, token, "subnet", network_id=net["id"], ip_version=4, cidr=cidr,
                name=f"{name}-subnet", **subnet)
    return net, sn


def project_id(api: Api, admin: str, name: str) -> str:
    r = api.request("GET", f"/identity/v3/projects?name={name}", admin)
    return str(r.json()["projects"][0]["id"])


def user_in_project(api: Api, admin: str, user: str, project: str, role: str = "member",
                    password: str = "pw") -> str:
    """A token of a (new) user holding ``role`` on a (new or existing) project."""
    r = api.request("GET", f"/identity/v3/projects?name={project}", admin)
    found = r.json()["projects"]
    if found:
        pid = found[0]["id"]
    else:
        r = api.request("POST", "/identity/v3/projects", admin, json={"project": {
            "name": project}})
        assert r.status_code == 201, r.text
        pid = r.json()["project"]["id"]
    r = api.request("POST", "/identity/v3/users", admin, json={"user": {
        "name": user, "password": password, "default_project_id": pid}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    rid = api.request("GET", f"/identity/v3/roles?name={role}", admin).json()["roles"][0]["id"]
    r = api.request("PUT", f"/identity/v3/projects/{pid}/users/{uid}/roles/{rid}", admin)
    assert r.status_code == 204, r.text
    return api.token(user, password, project)
