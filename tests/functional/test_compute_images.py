"""/v2.1/images: the deprecated image proxy (until 2.35) over the image service."""

from __future__ import annotations

import time

from tests.functional.compute_api_helpers import call, fault
from tests.harness import Api


def cirros(api: Api, token: str) -> dict:
    found = call(api, "GET", "/images/detail?name=cirros", token, status=200).json()["images"]
    assert len(found) == 1
    return dict(found[0])


def test_list_detail_show(api: Api, demo_token: str) -> None:
    image = cirros(api, demo_token)
    assert (image["status"], image["progress"], image["minDisk"]) == ("ACTIVE", 100, 0)
    assert image["OS-EXT-IMG-SIZE:size"] > 0 and isinstance(image["metadata"], dict)
    assert [link["rel"] for link in image["links"]] == ["self", "bookmark", "alternate"]
    basic = call(api, "GET", "/images", demo_token, status=200).json()["images"]
    assert {"id", "name", "links"} == set(basic[0])
    shown = call(api, "GET", f"/images/{image['id']}", demo_token, status=200).json()["image"]
    assert shown["id"] == image["id"]
    r = call(api, "GET", "/images/00000000-0000-0000-0000-000000000000", demo_token,
             status=404)
    assert fault(r) == "Image not found."
    assert call(api, "GET", "/images/detail?status=SAVING", demo_token,
                status=200).json()["images"] == []
    assert call(api, "GET", "/images/detail?minRam=999999", demo_token,
                status=200).json()["images"] == []
    call(api, "GET", "/images/detail?minRam=lots", demo_token, status=400)


def test_gone_from_2_36(api: Api, demo_token: str) -> None:
    image = cirros(api, demo_token)
    call(api, "GET", "/images", demo_token, "2.36", status=404)
    call(api, "GET", f"/images/{image['id']}/metadata", demo_token, "2.36", status=404)


def test_metadata_is_the_images_custom_properties(api: Api, admin_token: str,
                                                  demo_token: str) -> None:
    image = cirros(api, admin_token)
    path = f"/images/{image['id']}/metadata"
    before = call(api, "GET", path, admin_token, status=200).json()["metadata"]
    r = call(api, "POST", path, admin_token, status=200, json={"metadata": {"k0": ""}})
    assert r.json()["metadata"]["k0"] == ""
    call(api, "PUT", f"{path}/k1", admin_token, status=200, json={"meta": {"k1": "v1"}})
    assert call(api, "GET", f"{path}/k1", admin_token, status=200).json() == {
        "meta": {"k1": "v1"}}
    glance = api.request("GET", f"/image/v2/images/{image['id']}", admin_token).json()
    assert glance["k1"] == "v1"
    call(api, "PUT", f"{path}/k1", admin_token, status=400, json={"meta": {"k2": "v"}})
    call(api, "POST", path, demo_token, status=403, json={"metadata": {"mine": "x"}})
    call(api, "DELETE", f"{path}/k0", admin_token, status=204)
    assert fault(call(api, "DELETE", f"{path}/k0", admin_token, status=404)) == \
        "Invalid metadata key"
    r = call(api, "PUT", path, admin_token, status=200, json={"metadata": before})
    assert r.json()["metadata"] == before
    assert call(api, "GET", path, admin_token, status=200).json()["metadata"] == before


def test_delete_through_the_proxy(api: Api, admin_token: str, demo_token: str) -> None:
    made = api.request("POST", "/image/v2/images", admin_token, json={"name": "doomed"})
    assert made.status_code == 201
    image_id = made.json()["id"]
    call(api, "DELETE", f"/images/{image_id}", demo_token, status=404)  # private: unseen
    call(api, "DELETE", f"/images/{image_id}", admin_token, status=204)
    call(api, "GET", f"/images/{image_id}", admin_token, status=404)


def test_a_snapshot_keeps_how_its_image_boots(api: Api, admin_token: str) -> None:
    """createImage: the snapshot keeps the properties that say how the instance's image
    boots (kernel_id, ramdisk_id, os_command_line…), as Nova's do, so a snapshot of a
    kernel/ramdisk image boots (and unshelves); what named the original does not."""
    from tests.compute_helpers import boot, wait_status
    from tests.functional.image_helpers import active_image, show

    image = active_image(api, admin_token, name="uec-like", disk_format="qcow2",
                         container_format="bare", visibility="public",
                         kernel_id="0b6c7c3e-0000-4000-8000-00000000000a",
                         ramdisk_id="0b6c7c3e-0000-4000-8000-00000000000b",
                         os_command_line="console=ttyS0", gureum_test_guest="k-1")
    server = boot(api, admin_token, "snapped", image=image["id"])
    wait_status(api, admin_token, server["id"], {"ACTIVE"})
    r = call(api, "POST", f"/servers/{server['id']}/action", admin_token, status=202,
             json={"createImage": {"name": "snap", "metadata": {"os_command_line": "x"}}})
    snap_id = r.headers["location"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + 30
    while (snap := show(api, admin_token, snap_id))["status"] != "active":
        assert time.monotonic() < deadline, snap
        time.sleep(0.1)
    assert snap["kernel_id"] == image["kernel_id"]
    assert snap["ramdisk_id"] == image["ramdisk_id"]
    assert snap["os_command_line"] == "x"  # the request's own metadata wins
    assert "gureum_test_guest" not in snap and snap["image_type"] == "snapshot"
    call(api, "DELETE", f"/servers/{server['id']}", admin_token, status=204)
