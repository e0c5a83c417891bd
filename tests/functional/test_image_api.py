"""Image v2 over real HTTP: discovery, schemas, create, JSON-patch, list, delete, tags."""

from __future__ import annotations

import uuid

import pytest

from tests.functional.image_helpers import IMAGES, create, names, patch, raw_image, show
from tests.harness import Api, InProcessCloud


def test_version_discovery(api: Api, cloud: InProcessCloud) -> None:
    r = api.request("GET", "/image/")
    assert r.status_code == 300
    versions = r.json()["versions"]
    assert [v["id"] for v in versions if v["status"] == "CURRENT"] == ["v2.17"]
    assert {v["links"][0]["href"] for v in versions} == {f"{cloud.url}/image/v2/"}
    assert api.request("GET", "/image/versions").json() == r.json()
    for path in ("/image/v2", "/image/v2/"):
        r2 = api.request("GET", path)
        assert r2.status_code == 200 and r2.json()["versions"] == versions


def test_schemas(api: Api, demo_token: str) -> None:
    image = api.request("GET", "/image/v2/schemas/image", demo_token).json()
    assert image["name"] == "image"
    assert image["additionalProperties"] == {"type": "string"}
    assert {"id", "name", "visibility", "os_hidden", "os_hash_value", "kernel_id"} <= set(
        image["properties"])
    assert "raw" in image["properties"]["disk_format"]["enum"]
    images = api.request("GET", "/image/v2/schemas/images", demo_token).json()
    assert images["properties"]["images"]["items"]["name"] == "image"
    member = api.request("GET", "/image/v2/schemas/member", demo_token).json()
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    assert api.request("GET", "/image/v2/schemas/members", demo_token).status_code == 200
    assert api.request("GET", "/image/v2/schemas/nope", demo_token).status_code == 404
    assert api.request("GET", "/image/v2/schemas/image").status_code == 401


def test_bootstrap_registers_public_cirros(api: Api, demo_token: str, admin_token: str
                                           ) -> None:
    r = api.request("GET", f"{IMAGES}?name=cirros", demo_token)
    [cirros] = r.json()["images"]
    assert (cirros["status"], cirros["visibility"]) == ("active", "public")
    assert cirros["container_format"] == "bare" and cirros["disk_format"] in ("raw", "qcow2")
    admin_project = api.request("GET", "/identity/v3/auth/projects",
                                admin_token).json()["projects"]
    assert cirros["owner"] in {p["id"] for p in admin_project if p["name"] == "admin"}
    assert cirros["size"] > 0 and cirros["os_hash_algo"] == "sha512"


def test_create_defaults_and_shape(api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    r = api.request("POST", IMAGES, demo_token, json={
        "name": "shape", "disk_format": "qcow2", "container_format": "bare",
        "os_distro": "cirros", "hw_disk_bus": "virtio", "tags": ["a", "b", "a"],
        "min_ram": 128})
    assert r.status_code == 201, r.text
    image = r.json()
    assert r.headers["location"] == f"{cloud.url}/image/v2/images/{image['id']}"
    assert r.headers["openstack-image-import-methods"] == "glance-direct"
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert (image["protected"], image["os_hidden"], image["min_disk"]) == (False, False, 0)
    assert image["min_ram"] == 128
    assert sorted(image["tags"]) == ["a", "b"]
    assert image["os_distro"] == "cirros" and image["hw_disk_bus"] == "virtio"
    for key in ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"):
        assert image[key] is None
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z") and image["updated_at"].endswith("Z")
    assert show(api, demo_token, image["id"]) == image


def test_create_with_id_and_duplicate(api: Api, demo_token: str) -> None:
    image_id = str(uuid.uuid4())
    assert create(api, demo_token, id=image_id, name="with-id")["id"] == image_id
    r = api.request("POST", IMAGES, demo_token, json={"id": image_id})
    assert r.status_code == 409


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x" * 256}, "name"),
    ({"min_ram": "512"}, "min_ram"),
    ({"min_disk": 1.5}, "min_disk"),
    ({"disk_format": "floppy"}, "disk_format"),
    ({"container_format": 3}, "container_format"),
    ({"visibility": "everyone"}, "visibility"),
    ({"protected": "yes"}, "protected"),
    ({"tags": "one"}, "tags"),
    ({"tags": ["x" * 256]}, "tags.0"),
    ({"id": "not-a-uuid"}, "id"),
    ({"os_distro": 7}, "os_distro"),
    ({"my_prop": {"nested": 1}}, "my_prop"),
    ({"kernel_id": "nope"}, "kernel_id"),
])
def test_create_rejects_bad_fields_naming_them(api: Api, demo_token: str, body: dict[str, object],
                                               field: str) -> None:
    r = api.request("POST", IMAGES, demo_token, json=body)
    assert r.status_code == 400, r.text
    fault = r.json()
    assert fault["code"].startswith("400")
    assert f"'{field}'" in fault["message"]


def test_create_rejects_negative_and_huge_numbers(api: Api, demo_token: str) -> None:
    for value in (-1, 2**31, 2**70):
        r = api.request("POST", IMAGES, demo_token, json={"min_disk": value})
        assert r.status_code == 400 and "min_disk" in r.json()["message"]


@pytest.mark.parametrize("body", ["[]", "null", "not json", "", '"text"'])
def test_create_rejects_non_object_bodies(api: Api, demo_token: str, body: str) -> None:
    r = api.request("POST", IMAGES, demo_token, content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize(("body", "word"), [
    ({"status": "active"}, "read-only"), ({"checksum": "abc"}, "read-only"),
    ({"self": "/x"}, "read-only"), ({"size": 1}, "read-only"),
    ({"location": "http://x"}, "reserved"), ({"deleted": "yes"}, "reserved"),
    ({"os_glance_foo": "x"}, "reserved"), ({"locations": []}, "reserved"),
    ({"direct_url": "x"}, "read-only"),
])
def test_create_forbids_read_only_and_reserved(api: Api, demo_token: str,
                                               body: dict[str, object], word: str) -> None:
    r = api.request("POST", IMAGES, demo_token, json=body)
    assert r.status_code == 403, r.text
    assert word in r.json()["message"]


def test_create_policy(api: Api, demo_token: str, admin_token: str) -> None:
    r = api.request("POST", IMAGES, demo_token, json={"owner": "somebody-else"})
    assert r.status_code == 403
    r = api.request("POST", IMAGES, demo_token, json={"visibility": "public"})
    assert r.status_code == 403 and "publicize_image" in r.json()["message"]
    assert create(api, demo_token, visibility="community")["visibility"] == "community"
    assert create(api, demo_token, visibility="private")["visibility"] == "private"
    image = create(api, admin_token, visibility="public", owner="another-project")
    assert (image["visibility"], image["owner"]) == ("public", "another-project")


def test_json_patch_core_and_custom_properties(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token, name="p1", os_distro="ubuntu")
    r = patch(api, demo_token, image["id"], [
        {"op": "replace", "path": "/name", "value": "p2"},
        {"op": "add", "path": "/os_version", "value": "24.04"},
        {"op": "replace", "path": "/os_distro", "value": "debian"},
        {"op": "add", "path": "/min_disk", "value": 2},
        {"op": "replace", "path": "/tags", "value": ["x", "y"]},
        {"op": "add", "path": "/protected", "value": True},
        {"op": "add", "path": "/a~1b", "value": "slash"},
    ])
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["name"], out["os_version"], out["os_distro"]) == ("p2", "24.04", "debian")
    assert (out["min_disk"], sorted(out["tags"]), out["protected"]) == (2, ["x", "y"], True)
    assert out["a/b"] == "slash"
    r = patch(api, demo_token, image["id"], [{"op": "remove", "path": "/os_version"},
                                             {"op": "replace", "path": "/name", "value": None}])
    assert r.status_code == 200
    assert "os_version" not in r.json() and r.json()["name"] is None
    # The old draft-4 media type: "add" of an existing property is a conflict.
    r = patch(api, demo_token, image["id"], [{"add": "/os_distro", "value": "arch"}],
              "application/openstack-images-v2.0-json-patch")
    assert r.status_code == 409
    r = patch(api, demo_token, image["id"], [{"replace": "/os_distro", "value": "arch"}],
              "application/openstack-images-v2.0-json-patch")
    assert r.status_code == 200 and r.json()["os_distro"] == "arch"


@pytest.mark.parametrize(("ops", "status"), [
    ([{"op": "remove", "path": "/name"}], 403),
    ([{"op": "remove", "path": "/nothing_here"}], 409),
    ([{"op": "replace", "path": "/nothing_here", "value": "x"}], 409),
    ([{"op": "replace", "path": "/status", "value": "active"}], 403),
    ([{"op": "add", "path": "/checksum", "value": "x"}], 403),
    ([{"op": "replace", "path": "/id", "value": str(uuid.uuid4())}], 403),
    ([{"op": "add", "path": "/deleted", "value": "x"}], 403),
    ([{"op": "add", "path": "/os_glance_x", "value": "x"}], 403),
    ([{"op": "add", "path": "/locations", "value": []}], 403),
    ([{"op": "replace", "path": "/owner", "value": "me"}], 403),
    ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
    ([{"op": "move", "path": "/name", "value": "x"}], 400),
    ([{"path": "/name", "value": "x"}], 400),
    ([{"op": "add", "value": "x"}], 400),
    ([{"op": "add", "path": "/name"}], 400),
    ([{"op": "add", "path": "name", "value": "x"}], 400),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400),
    ([{"op": "add", "path": "/a//b", "value": "x"}], 400),
    ([{"op": "add", "path": "/a~2", "value": "x"}], 400),
    ([{"op": "add", "path": 5, "value": "x"}], 400),
    ([{"op": "add", "path": "/min_ram", "value": "lots"}], 400),
    ([{"op": "add", "path": "/min_ram", "value": -5}], 400),
    ([{"op": "add", "path": "/custom", "value": 5}], 400),
    ([{"op": "add", "path": "/visibility", "value": "nope"}], 400),
    (["not-an-object"], 400),
    ({"op": "add"}, 400),
])
def test_json_patch_errors(api: Api, demo_token: str, ops: object, status: int) -> None:
    image = raw_image(api, demo_token, name="patch-errors")
    r = api.request("PATCH", f"{IMAGES}/{image['id']}", demo_token, json=ops,
                    headers={"content-type": "application/openstack-images-v2.1-json-patch"})
    assert r.status_code == status, r.text
    assert r.json()["message"]
    assert show(api, demo_token, image["id"])["name"] == "patch-errors"  # nothing applied


def test_json_patch_is_all_or_nothing(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token, name="atomic")
    r = patch(api, demo_token, image["id"], [
        {"op": "replace", "path": "/name", "value": "changed"},
        {"op": "remove", "path": "/missing"}])
    assert r.status_code == 409
    assert show(api, demo_token, image["id"])["name"] == "atomic"


def test_json_patch_needs_its_media_type(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token)
    r = patch(api, demo_token, image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
              "application/json")
    assert r.status_code == 415
    assert "openstack-images-v2.1-json-patch" in r.headers["accept-patch"]


def test_formats_are_fixed_once_data_is_there(api: Api, demo_token: str) -> None:
    from tests.functional.image_helpers import active_image

    image = active_image(api, demo_token, b"bytes")
    r = patch(api, demo_token, image["id"], [
        {"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert r.status_code == 403
    assert "queued" in r.json()["message"]


def test_admin_may_change_owner_and_publicize(api: Api, demo_token: str, admin_token: str
                                              ) -> None:
    image = raw_image(api, demo_token, name="adopted")
    r = patch(api, admin_token, image["id"], [
        {"op": "replace", "path": "/owner", "value": "new-owner"},
        {"op": "replace", "path": "/visibility", "value": "public"}])
    assert r.status_code == 200, r.text
    assert (r.json()["owner"], r.json()["visibility"]) == ("new-owner", "public")
    # demo still sees it (public) but no longer owns it.
    r = patch(api, demo_token, image["id"], [{"op": "replace", "path": "/name", "value": "x"}])
    assert r.status_code == 403


def test_delete_protected_then_unprotected(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token, protected=True)
    url = f"{IMAGES}/{image['id']}"
    r = api.request("DELETE", url, demo_token)
    assert r.status_code == 403 and "protected" in r.json()["message"]
    assert patch(api, demo_token, image["id"], [
        {"op": "replace", "path": "/protected", "value": False}]).status_code == 200
    assert api.request("DELETE", url, demo_token).status_code == 204
    assert api.request("GET", url, demo_token).status_code == 404
    assert api.request("DELETE", url, demo_token).status_code == 404


def test_unknown_and_malformed_ids_are_404(api: Api, demo_token: str) -> None:
    for image_id in (str(uuid.uuid4()), "not-a-uuid", "x" * 300):
        r = api.request("GET", f"{IMAGES}/{image_id}", demo_token)
        assert r.status_code == 404
        assert r.json()["code"] == "404 Not Found"


def test_deactivate_and_reactivate(api: Api, demo_token: str) -> None:
    queued = raw_image(api, demo_token)
    r = api.request("POST", f"{IMAGES}/{queued['id']}/actions/deactivate", demo_token)
    assert r.status_code == 403
    from tests.functional.image_helpers import active_image

    image = active_image(api, demo_token)
    base = f"{IMAGES}/{image['id']}/actions"
    assert api.request("POST", f"{base}/deactivate", demo_token).status_code == 204
    assert show(api, demo_token, image["id"])["status"] == "deactivated"
    assert api.request("POST", f"{base}/deactivate", demo_token).status_code == 204
    assert api.request("POST", f"{base}/reactivate", demo_token).status_code == 204
    assert show(api, demo_token, image["id"])["status"] == "active"
    assert api.request("POST", f"{base}/reactivate", demo_token).status_code == 204


def test_tags(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token)
    url = f"{IMAGES}/{image['id']}/tags"
    assert api.request("PUT", f"{url}/blue", demo_token).status_code == 204
    assert api.request("PUT", f"{url}/blue", demo_token).status_code == 204
    assert api.request("PUT", f"{url}/green%20tea", demo_token).status_code == 204
    assert sorted(show(api, demo_token, image["id"])["tags"]) == ["blue", "green tea"]
    assert api.request("DELETE", f"{url}/blue", demo_token).status_code == 204
    assert api.request("DELETE", f"{url}/blue", demo_token).status_code == 404
    assert api.request("PUT", f"{url}/{'t' * 256}", demo_token).status_code == 400
    assert show(api, demo_token, image["id"])["tags"] == ["green tea"]


def test_list_filters(api: Api, demo_token: str) -> None:
    tag = uuid.uuid4().hex
    raw_image(api, demo_token, name="f-one", tags=[tag, "odd"], os_distro="alpine",
              protected=True)
    create(api, demo_token, name="f-two", tags=[tag], disk_format="qcow2",
           container_format="ovf", visibility="private")
    create(api, demo_token, name="f-three", tags=[tag, "odd"], os_hidden=True)
    q = f"?tag={tag}"
    assert sorted(names(api, demo_token, q)) == ["f-one", "f-two"]
    assert names(api, demo_token, f"{q}&os_hidden=true") == ["f-three"]
    assert names(api, demo_token, f"{q}&os_hidden=True") == ["f-three"]  # as the sdk sends it
    assert names(api, demo_token, f"{q}&tag=odd") == ["f-one"]
    assert names(api, demo_token, f"{q}&name=f-two") == ["f-two"]
    assert sorted(names(api, demo_token, f'{q}&name=in:f-one,"f-two"')) == ["f-one", "f-two"]
    assert names(api, demo_token, f"{q}&visibility=private") == ["f-two"]
    assert names(api, demo_token, f"{q}&disk_format=qcow2") == ["f-two"]
    assert names(api, demo_token, f"{q}&container_format=bare") == ["f-one"]
    assert names(api, demo_token, f"{q}&protected=true") == ["f-one"]
    assert names(api, demo_token, f"{q}&os_distro=alpine") == ["f-one"]
    assert names(api, demo_token, f"{q}&status=active") == []
    assert sorted(names(api, demo_token, f"{q}&status=queued")) == ["f-one", "f-two"]
    assert names(api, demo_token, f"{q}&created_at=lt:2000-01-01T00:00:00Z") == []
    assert len(names(api, demo_token, f"{q}&created_at=gte:2000-01-01T00:00:00Z")) == 2
    assert names(api, demo_token, f"{q}&size_min=1") == []


def test_list_size_range_and_owner(api: Api, demo_token: str) -> None:
    from tests.functional.image_helpers import active_image

    tag = uuid.uuid4().hex
    small = active_image(api, demo_token, b"x" * 10, name="small", tags=[tag])
    active_image(api, demo_token, b"x" * 1000, name="big", tags=[tag])
    q = f"?tag={tag}"
    assert names(api, demo_token, f"{q}&size_max=100") == ["small"]
    assert names(api, demo_token, f"{q}&size_min=100") == ["big"]
    assert sorted(names(api, demo_token, f"{q}&owner={small['owner']}")) == ["big", "small"]
    assert names(api, demo_token, f"{q}&owner=nobody") == []


@pytest.mark.parametrize("query", [
    "limit=x", "limit=-1", "sort_key=owner", "sort_dir=up", "sort=name:sideways",
    "sort=name&sort_key=name", "member_status=maybe", "visibility=secret",
    "os_hidden=maybe", "protected=1", "size_min=big", "created_at=yesterday",
    "created_at=after:2020-01-01T00:00:00Z", "name=like:x", "changes-since=2020-01-01",
    "marker=" + str(uuid.uuid4()), "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=asc"
    "&sort_dir=desc", "size_max=99999999999999999999999",
])
def test_list_rejects_bad_queries(api: Api, demo_token: str, query: str) -> None:
    r = api.request("GET", f"{IMAGES}?{query}", demo_token)
    assert r.status_code == 400, (query, r.text)


def test_list_sorting_and_paging(api: Api, demo_token: str) -> None:
    tag = uuid.uuid4().hex
    made = [raw_image(api, demo_token, name=f"page-{i:02d}", tags=[tag])
            for i in (3, 1, 4, 0, 2, 6, 5)]
    made.append(raw_image(api, demo_token, name=None, tags=[tag]))
    assert names(api, demo_token, f"?tag={tag}&sort=name:asc")[1:] == [
        f"page-{i:02d}" for i in range(7)]
    assert names(api, demo_token, f"?tag={tag}&sort_key=name&sort_dir=desc")[:2] == [
        "page-06", "page-05"]
    # The default order is newest first.
    assert [i["id"] for i in api.request("GET", f"{IMAGES}?tag={tag}", demo_token)
            .json()["images"]] == [i["id"] for i in reversed(made)]
    seen: list[str | None] = []
    url: str | None = f"{IMAGES}?tag={tag}&sort_key=name&sort_dir=asc&limit=3"
    pages = 0
    while url is not None:
        body = api.request("GET", url, demo_token).json()
        assert body["schema"] == "/v2/schemas/images"
        assert body["first"].startswith("/v2/images?") and "marker" not in body["first"]
        seen += [i["name"] for i in body["images"]]
        url = "/image" + body["next"] if "next" in body else None
        pages += 1
    assert seen == [None, *[f"page-{i:02d}" for i in range(7)]]
    assert pages == 3
    body = api.request("GET", f"{IMAGES}?tag={tag}&limit=0", demo_token).json()
    assert body["images"] == [] and "next" not in body


def test_list_requires_a_token(api: Api) -> None:
    r = api.request("GET", IMAGES)
    assert r.status_code == 401
    assert "www-authenticate" in r.headers


def test_info_endpoints(api: Api, demo_token: str) -> None:
    r = api.request("GET", "/image/v2/info/import", demo_token)
    assert r.json()["import-methods"]["value"] == ["glance-direct"]
    assert api.request("GET", "/image/v2/info/stores", demo_token).status_code == 404
    usage = api.request("GET", "/image/v2/info/usage", demo_token).json()["usage"]
    assert usage["image_count_total"]["usage"] >= 1
    assert usage["image_size_total"]["limit"] == -1


def test_tasks_api_is_admin_only_and_empty(api: Api, admin_token: str, demo_token: str) -> None:
    r = api.request("GET", "/image/v2/tasks", admin_token)
    assert r.status_code == 200 and r.json()["tasks"] == []
    assert api.request("GET", "/image/v2/tasks", demo_token).status_code == 403
    assert api.request("GET", f"/image/v2/tasks/{uuid.uuid4()}", admin_token).status_code == 404
    schema = api.request("GET", "/image/v2/schemas/tasks", demo_token).json()
    assert schema["properties"]["tasks"]["items"]["name"] == "task"
