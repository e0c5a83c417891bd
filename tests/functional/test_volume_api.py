"""Block Storage v3 over real HTTP: discovery, volumes, actions, quotas, services."""

from __future__ import annotations

from pathlib import Path

from tests.functional import image_helpers as images
from tests.functional.network_helpers import user_in_project
from tests.functional.volume_helpers import V, action, create_volume, req, show, wait_for
from tests.harness import Api, InProcessCloud


def test_discovery_names_the_microversions(api: Api) -> None:
    r = api.request("GET", "/volume/")
    assert r.status_code == 300
    (v3,) = r.json()["versions"]
    assert v3["id"] == "v3.0" and v3["min_version"] == "3.0" and v3["version"] == "3.71"
    r = api.request("GET", "/volume/v3")
    assert r.status_code == 200 and r.json()["versions"][0]["version"] == "3.71"


def test_microversion_is_echoed_and_bounded(api: Api, demo_token: str) -> None:
    r = req(api, demo_token, "GET", "/volumes", version="3.50")
    assert r.headers["openstack-api-version"] == "volume 3.50"
    r = req(api, demo_token, "GET", "/volumes", version="3.99")
    assert r.status_code == 406


def test_volume_lifecycle(api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    vol = create_volume(api, demo_token, name="vol1", description="d",
                        metadata={"purpose": "test"})
    assert vol["status"] == "creating" and vol["size"] == 1
    assert vol["volume_type"] == "__DEFAULT__" and vol["bootable"] == "false"
    ready = wait_for(api, demo_token, "volume", vol["id"], "available")
    assert ready is not None and ready["metadata"] == {"purpose": "test"}
    files = list(Path(cloud.settings.volume_dir).glob(f"volume-{vol['id']}.*"))
    assert len(files) == 1
    # listed, in summary and detail; filtered by name and metadata
    r = req(api, demo_token, "GET", "/volumes")
    assert {"id", "name", "links"} == set(r.json()["volumes"][0])
    r = req(api, demo_token, "GET", "/volumes/detail?name=vol1")
    assert [v["id"] for v in r.json()["volumes"]] == [vol["id"]]
    r = req(api, demo_token, "GET", '/volumes/detail?metadata={"purpose":"other"}')
    assert r.json()["volumes"] == []
    # project id in the URL works too
    pid = ready["os-vol-tenant-attr:tenant_id"]
    r = api.request("GET", f"{V}/{pid}/volumes/{vol['id']}", demo_token)
    assert r.status_code == 200, r.text
    # update
    r = req(api, demo_token, "PUT", f"/volumes/{vol['id']}",
            json={"volume": {"name": "vol1b", "description": "new"}})
    assert r.status_code == 200 and r.json()["volume"]["name"] == "vol1b"
    # metadata routes
    r = req(api, demo_token, "POST", f"/volumes/{vol['id']}/metadata",
            json={"metadata": {"a": "1"}})
    assert r.json()["metadata"] == {"purpose": "test", "a": "1"}
    r = req(api, demo_token, "DELETE", f"/volumes/{vol['id']}/metadata/a")
    assert r.status_code == 200
    # extend
    action(api, demo_token, vol["id"], "os-extend", {"new_size": 2})
    grown = wait_for(api, demo_token, "volume", vol["id"], "available")
    assert grown is not None and grown["size"] == 2
    # delete
    r = req(api, demo_token, "DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 202
    assert wait_for(api, demo_token, "volume", vol["id"], "deleted") is None
    assert not files[0].exists()


def test_bad_input_names_the_field(api: Api, demo_token: str) -> None:
    for size in (0, -1, "x", 1.5, True):
        body = create_volume(api, demo_token, 400, size=size)
        assert "size" in body["badRequest"]["message"]
    body = create_volume(api, demo_token, 404, volume_type="nope")
    assert "nope" in body["itemNotFound"]["message"]
    body = create_volume(api, demo_token, 400, availability_zone="elsewhere")
    assert "elsewhere" in body["badRequest"]["message"]
    r = req(api, demo_token, "POST", "/volumes", json={"volume": {}})
    assert r.status_code == 400 and "size" in r.text


def test_other_projects_volume_is_not_found(api: Api, admin_token: str, demo_token: str
                                             ) -> None:
    vol = create_volume(api, demo_token, name="mine")
    other = user_in_project(api, admin_token, "vol-other", "vol-other-project")
    show(api, other, vol["id"], 404)
    r = req(api, other, "DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 404
    # admin sees it with all_tenants, and the host attribute
    r = req(api, admin_token, "GET", "/volumes/detail?all_tenants=1")
    assert vol["id"] in [v["id"] for v in r.json()["volumes"]]
    wait_for(api, demo_token, "volume", vol["id"], "available")
    admin_view = show(api, admin_token, vol["id"])
    assert admin_view["os-vol-host-attr:host"].endswith("@file#file")


def test_volume_from_image_is_bootable_with_image_metadata(api: Api, demo_token: str
                                                           ) -> None:
    image = images.active_image(api, demo_token, data=b"\1" * 4096, name="img-for-vol")
    vol = create_volume(api, demo_token, imageRef=image["id"], name="from-image")
    ready = wait_for(api, demo_token, "volume", vol["id"], "available")
    assert ready is not None and ready["bootable"] == "true"
    assert ready["volume_image_metadata"]["image_id"] == image["id"]
    assert ready["volume_image_metadata"]["image_name"] == "img-for-vol"
    r = action(api, demo_token, vol["id"], "os-show_image_metadata", None, 200)
    assert r.json()["metadata"]["image_id"] == image["id"]


def test_attach_detach_actions(api: Api, demo_token: str) -> None:
    vol = create_volume(api, demo_token, name="att")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    action(api, demo_token, vol["id"], "os-reserve")
    assert show(api, demo_token, vol["id"])["status"] == "attaching"
    action(api, demo_token, vol["id"], "os-unreserve")
    assert show(api, demo_token, vol["id"])["status"] == "available"
    r = action(api, demo_token, vol["id"], "os-initialize_connection",
               {"connector": {"host": "c01"}}, 200)
    info = r.json()["connection_info"]
    assert info["driver_volume_type"] == "file" and info["data"]["path"].startswith("/")
    server = "6a0c1d6e-0000-4000-8000-000000000001"
    action(api, demo_token, vol["id"], "os-attach",
           {"instance_uuid": server, "mountpoint": "/dev/vdb", "host_name": "c01"})
    shown = show(api, demo_token, vol["id"])
    assert shown["status"] == "in-use"
    (a,) = shown["attachments"]
    assert a["server_id"] == server and a["device"] == "/dev/vdb"
    # in use: no delete, no extend
    r = req(api, demo_token, "DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 400 and "attached" in r.text
    r = req(api, demo_token, "POST", f"/volumes/{vol['id']}/action", version="3.41",
            json={"os-extend": {"new_size": 3}})
    assert r.status_code == 400  # in-use extend is 3.42
    action(api, demo_token, vol["id"], "os-begin_detaching")
    action(api, demo_token, vol["id"], "os-roll_detaching")
    assert show(api, demo_token, vol["id"])["status"] == "in-use"
    action(api, demo_token, vol["id"], "os-detach", {"attachment_id": a["attachment_id"]})
    assert show(api, demo_token, vol["id"])["status"] == "available"


def test_quota_show_counts_usage_and_over_quota_is_413(api: Api, admin_token: str) -> None:
    token = user_in_project(api, admin_token, "vol-quota", "vol-quota-project")
    pid = api.request("GET", "/identity/v3/projects?name=vol-quota-project",
                      admin_token).json()["projects"][0]["id"]
    create_volume(api, token, size=2)
    r = req(api, token, "GET", f"/os-quota-sets/{pid}?usage=True")
    q = r.json()["quota_set"]
    assert q["volumes"]["in_use"] == 1 and q["gigabytes"]["in_use"] == 2
    r = req(api, admin_token, "PUT", f"/os-quota-sets/{pid}",
            json={"quota_set": {"gigabytes": 3}})
    assert r.status_code == 200 and r.json()["quota_set"]["gigabytes"] == 3
    body = create_volume(api, token, 413, size=2)
    assert "gigabytes" in body["overLimit"]["message"]
    r = req(api, token, "GET", "/limits")
    assert r.json()["limits"]["absolute"]["totalGigabytesUsed"] == 2


def test_services_and_pools(api: Api, admin_token: str, demo_token: str) -> None:
    r = req(api, admin_token, "GET", "/os-services")
    binaries = {s["binary"]: s for s in r.json()["services"]}
    assert binaries["cinder-volume"]["state"] == "up"
    assert binaries["cinder-scheduler"]["status"] == "enabled"
    r = req(api, admin_token, "GET", "/scheduler-stats/get_pools?detail=True")
    (pool,) = r.json()["pools"]
    assert pool["name"].endswith("@file#file")
    assert pool["capabilities"]["volume_backend_name"] == "file"
    assert req(api, demo_token, "GET", "/os-services").status_code == 403
    r = req(api, demo_token, "GET", "/os-availability-zone")
    assert r.json()["availabilityZoneInfo"][0]["zoneName"] == "nova"


def test_size_smaller_than_the_image_names_size(api: Api, demo_token: str) -> None:
    image = images.active_image(api, demo_token, data=b"\2" * 1024, name="big-min-disk",
                                min_disk=3)
    body = create_volume(api, demo_token, 400, imageRef=image["id"], size=1)
    assert "size" in body["badRequest"]["message"] and "3GB" in body["badRequest"]["message"]
    vol = create_volume(api, demo_token, imageRef=image["id"], size=None)  # the image's
    assert vol["size"] == 3
    queued = images.raw_image(api, demo_token, name="no-data")
    body = create_volume(api, demo_token, 400, imageRef=queued["id"], size=1)
    assert "not active" in body["badRequest"]["message"]
    create_volume(api, demo_token, 404, imageRef="6a0c1d6e-0000-4000-8000-00000000dead")


def test_list_filters_sort_and_pages(api: Api, admin_token: str, demo_token: str) -> None:
    ids = [create_volume(api, demo_token, name=f"page-{i}", size=1)["id"] for i in range(3)]
    for ident in ids:
        wait_for(api, demo_token, "volume", ident, "available")
    r = req(api, demo_token, "GET", "/volumes/detail?sort=name:asc&limit=2")
    body = r.json()
    assert len(body["volumes"]) == 2 and "volumes_links" in body
    names = [v["name"] for v in body["volumes"]]
    assert names == sorted(names, key=lambda n: n or "")
    marker = body["volumes"][-1]["id"]
    r = req(api, demo_token, "GET", f"/volumes/detail?sort=name:asc&marker={marker}")
    rest = [v["name"] for v in r.json()["volumes"]]
    assert not set(rest) & set(names)
    r = req(api, demo_token, "GET", "/volumes/detail?status=available&bootable=false")
    assert set(ids) <= {v["id"] for v in r.json()["volumes"]}
    r = req(api, demo_token, "GET", "/volumes/detail?status=error")
    assert not set(ids) & {v["id"] for v in r.json()["volumes"]}
    project = show(api, demo_token, ids[0])["os-vol-tenant-attr:tenant_id"]
    r = req(api, admin_token, "GET", f"/volumes/detail?project_id={project}")
    assert set(ids) <= {v["id"] for v in r.json()["volumes"]}
    r = req(api, demo_token, "GET", "/volumes/detail?sort=nope")
    assert r.status_code == 400
    r = req(api, demo_token, "GET", "/volumes/summary")
    summary = r.json()["volume-summary"]
    assert summary["total_count"] >= 3 and summary["total_size"] >= 3


def test_freeze_and_thaw_a_volume_host(api: Api, admin_token: str) -> None:
    services = req(api, admin_token, "GET", "/os-services?binary=cinder-volume").json()
    host = services["services"][0]["host"]
    r = req(api, admin_token, "PUT", "/os-services/freeze", json={"host": host})
    assert r.status_code == 200, r.text
    row = req(api, admin_token, "GET", "/os-services?binary=cinder-volume").json()
    assert row["services"][0]["frozen"] is True
    assert req(api, admin_token, "PUT", "/os-services/thaw",
               json={"host": host}).status_code == 200
    assert req(api, admin_token, "PUT", "/os-services/freeze",
               json={"host": "nowhere"}).status_code == 404


def test_racing_reserves_one_wins(api: Api, demo_token: str) -> None:
    """Every state change is a compare-and-swap: of racing requests one wins, the rest
    get Cinder's 400, and the volume has exactly one attachment."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.harness import Api as Client

    vol = create_volume(api, demo_token, name="raced")
    wait_for(api, demo_token, "volume", vol["id"], "available")

    def attach(i: int) -> int:
        client = Client(api.url)
        try:
            r = req(client, demo_token, "POST", "/attachments", json={"attachment": {
                "volume_uuid": vol["id"],
                "instance_uuid": f"6a0c1d6e-0000-4000-8000-{i:012d}"}})
            return r.status_code
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attach, range(8)))
    assert sorted(codes) == [200] + [400] * 7, codes
    r = req(api, demo_token, "GET", f"/attachments?volume_id={vol['id']}")
    assert len(r.json()["attachments"]) == 1


def test_snapshots_page_and_update_as_volumes_do(api: Api, admin_token: str) -> None:
    # a project of its own: the module's other tests use up demo's volume quota
    demo_token = user_in_project(api, admin_token, "vol-paged", "vol-paged-project")
    vols = [create_volume(api, demo_token, name=f"paged-{i}", size=1) for i in range(3)]
    for v in vols:
        wait_for(api, demo_token, "volume", v["id"], "available")
    vol = vols[0]
    snaps = []
    for i in range(3):
        r = req(api, demo_token, "POST", "/snapshots",
                json={"snapshot": {"volume_id": vol["id"], "name": f"snap-{i}"}})
        assert r.status_code == 202, r.text
        snaps.append(r.json()["snapshot"]["id"])
        wait_for(api, demo_token, "snapshot", snaps[-1], "available")
    for kind, ident in (("snapshots", snaps[0]), ("volumes", vol["id"])):
        # newest first; the page after a marker, an offset, a limit
        listed = [x["id"] for x in req(api, demo_token, "GET", f"/{kind}").json()[kind]]
        assert len(listed) >= 3
        r = req(api, demo_token, "GET", f"/{kind}?marker={listed[0]}&offset=1&limit=1")
        assert [x["id"] for x in r.json()[kind]] == listed[2:3]
        r = req(api, demo_token, "GET", f"/{kind}?marker=6a0c1d6e-0000-4000-8000-00000000dead")
        assert r.status_code == 404, r.text
        r = req(api, demo_token, "GET", f"/{kind}?limit=-1")
        assert r.status_code == 400 and "limit" in r.json()["badRequest"]["message"]
        # the v1 names of name and description, and metadata; an empty update is a 400
        one = kind[:-1]
        r = req(api, demo_token, "PUT", f"/{kind}/{ident}", json={one: {
            "display_name": "renamed", "display_description": "said", "metadata": {"k": "v"}}})
        assert r.status_code == 200, r.text
        got = r.json()[one]
        assert (got["name"], got["description"], got["metadata"]) == ("renamed", "said",
                                                                       {"k": "v"})
        r = req(api, demo_token, "PUT", f"/{kind}/{ident}", json={one: {}})
        assert r.status_code == 400
        assert r.json()["badRequest"]["message"] == f"Missing request body element '{one}'."
