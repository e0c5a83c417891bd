"""Images on PostgreSQL and MariaDB: migrations, list filters, NULL-safe sorting, paging, data.

Skipped (with the reason) when the database server is not running; `scripts/test`
starts the local services first.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.functional.image_helpers import IMAGES, active_image, create, names, patch, raw_image
from tests.functional.test_databases import database_url  # noqa: F401  (the fixture)
from tests.harness import Api, InProcessCloud, make_settings


def test_images_on_database(database_url: str,  # noqa: F811
                            tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = make_settings(tmp_path_factory.mktemp("imgdb"), database={"url": database_url})
    cloud = InProcessCloud(settings).start()
    api = Api(cloud.url)
    try:
        admin = api.token("admin", cloud.admin_password, "admin")
        assert "cirros" in names(api, admin)
        tag = uuid.uuid4().hex
        data = b"x" * 5000
        image = active_image(api, admin, data, name="db-one", tags=[tag], os_distro="é-ü")
        assert image["checksum"] == hashlib.md5(data).hexdigest()
        assert api.request("GET", f"{IMAGES}/{image['id']}/file", admin).content == data
        for i in range(4):
            raw_image(api, admin, name=f"db-{i}" if i % 2 else None, tags=[tag])
        assert names(api, admin, f"?tag={tag}&os_distro=é-ü") == ["db-one"]
        assert names(api, admin, f"?tag={tag}&size_min=4000&size_max=6000") == ["db-one"]
        ordered = names(api, admin, f"?tag={tag}&sort=name:asc,size:desc")
        assert ordered == [None, None, "db-1", "db-3", "db-one"]
        paged: list[str | None] = []
        url: str | None = f"{IMAGES}?tag={tag}&sort_key=name&sort_dir=asc&limit=2"
        while url is not None:
            body = api.request("GET", url, admin).json()
            paged += [i["name"] for i in body["images"]]
            url = "/image" + body["next"] if "next" in body else None
        assert paged == ordered
        assert names(api, admin, f"?tag={tag}&created_at=gte:2000-01-01T00:00:00Z&limit=1")
        r = patch(api, admin, image["id"], [{"op": "add", "path": "/note", "value": "n" * 60000},
                                            {"op": "add", "path": "/tags", "value": ["a"]}])
        assert r.status_code == 200, r.text
        r = patch(api, admin, image["id"], [{"op": "add", "path": "/big", "value": "n" * 70000}])
        assert r.status_code == 400
        # Names that differ only in case are different names on every database.
        r = patch(api, admin, image["id"], [{"op": "add", "path": "/Foo", "value": "1"},
                                            {"op": "add", "path": "/foo", "value": "2"},
                                            {"op": "add", "path": "/tags", "value": ["T", "t"]}])
        assert r.status_code == 200, r.text
        assert (r.json()["Foo"], r.json()["foo"], sorted(r.json()["tags"])) == ("1", "2",
                                                                                ["T", "t"])
        member = create(api, admin, name="db-shared")
        r = api.request("POST", f"{IMAGES}/{member['id']}/members", admin,
                        json={"member": "p" * 255})
        assert r.status_code == 200, r.text
        for query in ("name=a%00b", "size_min=99999999999999999999", "tag=%00",
                      "os_distro=%00"):
            assert api.request("GET", f"{IMAGES}?{query}", admin).status_code == 400, query
        assert api.request("GET", f"{IMAGES}/{uuid.uuid4()}", admin).status_code == 404
        assert api.request("DELETE", f"{IMAGES}/{image['id']}", admin).status_code == 204
        # Metadata definitions: JSON columns and case-sensitive names.
        ns = "/image/v2/metadefs/namespaces"
        for name in ("OS::Db::Test", "os::db::test"):
            r = api.request("POST", ns, admin, json={
                "namespace": name, "properties": {"p": {"title": "P", "type": "integer",
                                                        "minimum": 1, "default": 2}},
                "objects": [{"name": "o", "required": ["p"]}], "tags": [{"name": "x"}],
                "resource_type_associations": [{"name": "OS::Glance::Image"}]})
            assert r.status_code == 201, r.text
        shown = api.request("GET", f"{ns}/OS::Db::Test", admin).json()
        assert shown["properties"]["p"]["default"] == 2
        assert shown["objects"][0]["required"] == ["p"]
        listed = api.request("GET", f"{ns}?resource_types=OS::Glance::Image&limit=1",
                             admin).json()
        assert len(listed["namespaces"]) == 1 and "next" in listed
    finally:
        api.close()
        cloud.stop()
