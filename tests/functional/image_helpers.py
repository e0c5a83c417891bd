"""Small helpers the image API tests share."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.harness import Api

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
IMAGES = "/image/v2/images"


def create(api: Api, token: str, **body: Any) -> dict[str, Any]:
    r = api.request("POST", IMAGES, token, json=body)
    assert r.status_code == 201, r.text
    image: dict[str, Any] = r.json()
    return image


def raw_image(api: Api, token: str, **body: Any) -> dict[str, Any]:
    return create(api, token, **{"disk_format": "raw", "container_format": "bare", **body})


def upload(api: Api, token: str, image_id: str, data: bytes, **headers: str
           ) -> httpx.Response:
    return api.request("PUT", f"{IMAGES}/{image_id}/file", token, content=data,
                       headers={"content-type": "application/octet-stream", **headers})


def active_image(api: Api, token: str, data: bytes = b"data", **body: Any) -> dict[str, Any]:
    image = raw_image(api, token, **body)
    r = upload(api, token, image["id"], data)
    assert r.status_code == 204, r.text
    return show(api, token, image["id"])


def show(api: Api, token: str, image_id: str) -> dict[str, Any]:
    r = api.request("GET", f"{IMAGES}/{image_id}", token)
    assert r.status_code == 200, r.text
    image: dict[str, Any] = r.json()
    return image


def patch(api: Api, token: str, image_id: str, ops: list[dict[str, Any]],
          content_type: str = PATCH_TYPE) -> httpx.Response:
    return api.request("PATCH", f"{IMAGES}/{image_id}", token, json=ops,
                       headers={"content-type": content_type})


def names(api: Api, token: str, query: str = "") -> list[str]:
    r = api.request("GET", f"{IMAGES}{query}", token)
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["images"]]


def project_with_user(api: Api, admin: str, role: str, prefix: str) -> tuple[str, str]:
    """A new project and a user with `role` on it; returns (project id, the user's token)."""
    suffix = uuid.uuid4().hex[:8]
    r = api.request("POST", "/identity/v3/projects", admin,
                    json={"project": {"name": f"{prefix}-{suffix}"}})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    token = user_on(api, admin, project, role, prefix)
    return project["id"], token


def user_on(api: Api, admin: str, project: dict[str, Any], role: str, prefix: str) -> str:
    name = f"{prefix}-{role}-{uuid.uuid4().hex[:8]}"
    r = api.request("POST", "/identity/v3/users", admin,
                    json={"user": {"name": name, "password": "pw"}})
    assert r.status_code == 201, r.text
    user_id = r.json()["user"]["id"]
    roles = api.request("GET", f"/identity/v3/roles?name={role}", admin).json()["roles"]
    r = api.request("PUT", f"/identity/v3/projects/{project['id']}/users/{user_id}/roles/"
                    f"{roles[0]['id']}", admin)
    assert r.status_code == 204, r.text
    return api.token(name, "pw", project["name"])
