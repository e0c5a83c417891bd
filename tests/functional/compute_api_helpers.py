"""Helpers for the compute admin/sub-resource API tests: requests at a microversion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Api, InProcessCloud

C = "/compute/v2.1"


def call(api: Api, method: str, path: str, token: str, mv: str = "2.1", status: int | None = None,
         **kw: Any) -> httpx.Response:
    """A compute request at microversion ``mv``; asserts the status when given."""
    headers = {"OpenStack-API-Version": f"compute {mv}", **kw.pop("headers", {})}
    r = api.request(method, C + path, token, headers=headers, **kw)
    if status is not None:
        assert r.status_code == status, (method, path, mv, r.status_code, r.text)
    return r


def fault(r: httpx.Response) -> str:
    """The message of a Nova fault body ({"badRequest": {"code", "message"}})."""
    body = r.json()
    (inner,) = body.values()
    assert inner["code"] == r.status_code, body
    return str(inner["message"])


def project_id(api: Api, token: str, name: str) -> str:
    r = api.request("GET", f"/identity/v3/projects?name={name}", token)
    return str(r.json()["projects"][0]["id"])


def reader_token(api: Api, cloud: InProcessCloud, admin: str, name: str = "reader1") -> str:
    """A user with only the reader role on the demo project."""
    demo_project = project_id(api, admin, "demo")
    r = api.request("POST", "/identity/v3/users", admin,
                    json={"user": {"name": name, "password": "reader-pw-1"}})
    assert r.status_code in (201, 409), r.text
    users = api.request("GET", f"/identity/v3/users?name={name}", admin).json()["users"]
    roles = api.request("GET", "/identity/v3/roles?name=reader", admin).json()["roles"]
    api.request("PUT", f"/identity/v3/projects/{demo_project}/users/{users[0]['id']}/roles/"
                f"{roles[0]['id']}", admin)
    return api.token(name, "reader-pw-1", "demo")


def module_cloud(tmp_path_factory: pytest.TempPathFactory, hosts: int, **sections: Any
                 ) -> Iterator[InProcessCloud]:
    from tests.harness import make_settings

    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("compute-api"), **sections),
                       hosts=hosts).start()
    yield c
    c.stop()
