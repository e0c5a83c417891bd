"""Visibility, members and roles across projects: who sees, changes and shares what."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.image_helpers import (
    IMAGES,
    active_image,
    create,
    names,
    patch,
    project_with_user,
    raw_image,
    show,
    upload,
    user_on,
)
from tests.harness import Api


@pytest.fixture(scope="module")
def other(api: Api, admin_token: str) -> tuple[str, str]:
    """Another project and a member of it: (project id, token)."""
    return project_with_user(api, admin_token, "member", "other")


@pytest.fixture(scope="module")
def demo_project(api: Api, demo_token: str) -> dict[str, Any]:
    projects = api.request("GET", "/identity/v3/auth/projects", demo_token).json()["projects"]
    return next(p for p in projects if p["name"] == "demo")


@pytest.fixture(scope="module")
def reader_token(api: Api, admin_token: str, demo_project: dict[str, Any]) -> str:
    """A user with only the reader role on demo."""
    return user_on(api, admin_token, demo_project, "reader", "demo")


def test_private_image_of_another_project_is_404_everywhere(
        api: Api, demo_token: str, other: tuple[str, str]) -> None:
    _other_id, other_token = other
    image = active_image(api, demo_token, b"mine", name="demo-private", visibility="private")
    base = f"{IMAGES}/{image['id']}"
    for method, path, kw in [
        ("GET", base, {}), ("DELETE", base, {}),
        ("PATCH", base, {"json": [], "headers": {
            "content-type": "application/openstack-images-v2.1-json-patch"}}),
        ("GET", f"{base}/file", {}), ("PUT", f"{base}/tags/x", {}),
        ("GET", f"{base}/members", {}), ("POST", f"{base}/actions/deactivate", {}),
        ("PUT", f"{base}/file", {"content": b"x",
                                 "headers": {"content-type": "application/octet-stream"}}),
    ]:
        r = api.request(method, path, other_token, **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert "demo-private" not in names(api, other_token)
    assert "demo-private" not in names(api, other_token, "?visibility=private")
    assert "demo-private" not in names(api, other_token, "?visibility=all")


def test_public_and_community_images(api: Api, demo_token: str, admin_token: str,
                                      other: tuple[str, str]) -> None:
    _other_id, other_token = other
    public = active_image(api, admin_token, b"pub", name="admin-public", visibility="public")
    community = active_image(api, demo_token, b"com", name="demo-community",
                             visibility="community")
    assert "admin-public" in names(api, other_token)
    # Community images are not in the default list, but may be listed and used.
    assert "demo-community" not in names(api, other_token)
    assert "demo-community" in names(api, other_token, "?visibility=community")
    assert "demo-community" in names(api, demo_token)  # the owner sees its own
    for image in (public, community):
        r = api.request("GET", f"{IMAGES}/{image['id']}/file", other_token)
        assert r.status_code == 200
        # Visible is not writable: another project gets 403, not 404.
        r = patch(api, other_token, image["id"], [
            {"op": "replace", "path": "/name", "value": "stolen"}])
        assert r.status_code == 403
        assert api.request("DELETE", f"{IMAGES}/{image['id']}", other_token).status_code == 403


def test_sharing_flow(api: Api, demo_token: str, other: tuple[str, str]) -> None:
    other_id, other_token = other
    image = active_image(api, demo_token, b"shared data", name="demo-shared")
    assert image["visibility"] == "shared"
    members = f"{IMAGES}/{image['id']}/members"
    assert api.request("GET", f"{IMAGES}/{image['id']}", other_token).status_code == 404

    r = api.request("POST", members, demo_token, json={"member": other_id})
    assert r.status_code == 200, r.text
    member = r.json()
    assert (member["member_id"], member["image_id"], member["status"]) == (
        other_id, image["id"], "pending")
    assert member["schema"] == "/v2/schemas/member"
    assert api.request("POST", members, demo_token, json={"member": other_id}).status_code == 409

    # Pending: the member can see the image by id, but not in its default list.
    assert show(api, other_token, image["id"])["name"] == "demo-shared"
    assert "demo-shared" not in names(api, other_token)
    assert "demo-shared" in names(api, other_token, "?member_status=pending")
    assert "demo-shared" in names(api, other_token, "?member_status=all&visibility=shared")

    # Only the member answers; the owner cannot accept on its behalf.
    r = api.request("PUT", f"{members}/{other_id}", demo_token, json={"status": "accepted"})
    assert r.status_code == 403
    r = api.request("PUT", f"{members}/{other_id}", other_token, json={"status": "maybe"})
    assert r.status_code == 400 and "status" in r.json()["message"]
    r = api.request("PUT", f"{members}/{other_id}", other_token, json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert "demo-shared" in names(api, other_token)
    r = api.request("GET", f"{IMAGES}/{image['id']}/file", other_token)
    assert r.status_code == 200 and r.content == b"shared data"

    # The member sees its own membership; the owner sees all; neither leaks others.
    listed = api.request("GET", members, other_token).json()
    assert [m["member_id"] for m in listed["members"]] == [other_id]
    assert listed["schema"] == "/v2/schemas/members"
    assert api.request("GET", f"{members}/{other_id}", other_token).status_code == 200
    assert api.request("GET", f"{members}/{other_id}", demo_token).status_code == 200
    assert api.request("GET", f"{members}/somebody", demo_token).status_code == 404

    # The member may not change the image, nor remove itself or others.
    r = patch(api, other_token, image["id"], [{"op": "replace", "path": "/name", "value": "x"}])
    assert r.status_code == 403
    assert api.request("DELETE", f"{members}/{other_id}", other_token).status_code == 403

    r = api.request("PUT", f"{members}/{other_id}", other_token, json={"status": "rejected"})
    assert r.status_code == 200
    assert "demo-shared" not in names(api, other_token)
    assert api.request("DELETE", f"{members}/{other_id}", demo_token).status_code == 204
    assert api.request("DELETE", f"{members}/{other_id}", demo_token).status_code == 404
    assert api.request("GET", f"{IMAGES}/{image['id']}", other_token).status_code == 404


def test_members_only_for_shared_images(api: Api, demo_token: str, other: tuple[str, str]
                                        ) -> None:
    other_id, _token = other
    image = raw_image(api, demo_token, visibility="private")
    members = f"{IMAGES}/{image['id']}/members"
    r = api.request("POST", members, demo_token, json={"member": other_id})
    assert r.status_code == 403 and "shared" in r.json()["message"]
    assert api.request("GET", members, demo_token).status_code == 403


@pytest.mark.parametrize("body", [{}, {"member": ""}, {"member": 5}, ["x"], {"member": "x" * 256},
                                  {"member": "a\x00b"}])
def test_member_body_is_validated(api: Api, demo_token: str, body: object) -> None:
    image = raw_image(api, demo_token)
    r = api.request("POST", f"{IMAGES}/{image['id']}/members", demo_token, json=body)
    assert r.status_code == 400, r.text


def test_reader_only_reads(api: Api, demo_token: str, reader_token: str) -> None:
    image = active_image(api, demo_token, b"read me", name="for-readers")
    base = f"{IMAGES}/{image['id']}"
    assert show(api, reader_token, image["id"])["name"] == "for-readers"
    assert "for-readers" in names(api, reader_token)
    assert api.request("GET", f"{base}/members", reader_token).status_code == 200
    assert api.request("POST", IMAGES, reader_token, json={"name": "no"}).status_code == 403
    r = patch(api, reader_token, image["id"], [{"op": "replace", "path": "/name", "value": "x"}])
    assert r.status_code == 403
    assert api.request("DELETE", base, reader_token).status_code == 403
    assert api.request("PUT", f"{base}/tags/t", reader_token).status_code == 403
    assert api.request("POST", f"{base}/actions/deactivate", reader_token).status_code == 403
    queued = raw_image(api, demo_token)
    assert upload(api, reader_token, queued["id"], b"x").status_code == 403
    assert show(api, demo_token, queued["id"])["status"] == "queued"
    # Glance's default policy: downloading needs the member role.
    assert api.request("GET", f"{base}/file", reader_token).status_code == 403


def test_admin_sees_and_manages_everything(api: Api, demo_token: str, admin_token: str) -> None:
    image = create(api, demo_token, name="demo-secret", visibility="private")
    assert show(api, admin_token, image["id"])["owner"] == image["owner"]
    assert "demo-secret" in names(api, admin_token)
    r = patch(api, admin_token, image["id"], [{"op": "add", "path": "/note", "value": "hi"}])
    assert r.status_code == 200
    assert api.request("DELETE", f"{IMAGES}/{image['id']}", admin_token).status_code == 204
