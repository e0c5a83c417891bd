"""Images through the real `openstack` CLI and openstacksdk against `gureum up`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def images(up: GureumUp, cloud: str, *args: str) -> list[dict[str, Any]]:
    out = up.openstack("--os-cloud", cloud, "image", "list", *args, "-f", "json").stdout
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def show(up: GureumUp, cloud: str, name: str) -> dict[str, Any]:
    out = up.openstack("--os-cloud", cloud, "image", "show", name, "-f", "json").stdout
    image: dict[str, Any] = json.loads(out)
    return image


def test_create_save_list_set_delete(gureum_up: GureumUp, tmp_path: Path) -> None:
    os_ = gureum_up.openstack
    source = tmp_path / "img1.raw"
    data = os.urandom(5 * (1 << 20) + 17)
    source.write_bytes(data)
    created = json.loads(os_("--os-cloud", "gureum", "image", "create", "--file", str(source),
                             "--disk-format", "raw", "--container-format", "bare", "img1",
                             "-f", "json").stdout)
    assert created["status"] == "active"
    assert created["checksum"] == hashlib.md5(data).hexdigest()
    assert created["size"] == len(data)

    out = tmp_path / "out"
    os_("--os-cloud", "gureum", "image", "save", "--file", str(out), "img1")
    assert out.read_bytes() == data

    demo = {row["Name"] for row in images(gureum_up, "gureum-demo")}
    assert "cirros" in demo and "img1" not in demo
    assert "img1" in {row["Name"] for row in images(gureum_up, "gureum")}

    os_("--os-cloud", "gureum", "image", "set", "--property", "os_distro=gureum",
        "--tag", "e2e", "--min-disk", "1", "--name", "img1-renamed", "img1")
    image = show(gureum_up, "gureum", "img1-renamed")
    assert image["min_disk"] == 1 and image["tags"] == ["e2e"]
    assert image["properties"]["os_distro"] == "gureum"
    tagged = images(gureum_up, "gureum", "--tag", "e2e")
    assert [row["Name"] for row in tagged] == ["img1-renamed"]

    os_("--os-cloud", "gureum", "image", "set", "--protected", "img1-renamed")
    denied = os_("--os-cloud", "gureum", "image", "delete", "img1-renamed", check=False)
    assert denied.returncode != 0
    os_("--os-cloud", "gureum", "image", "set", "--unprotected", "img1-renamed")
    os_("--os-cloud", "gureum", "image", "delete", "img1-renamed")
    assert "img1-renamed" not in {row["Name"] for row in images(gureum_up, "gureum")}


def test_demo_cannot_publicize_but_admin_can_share(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    denied = os_("--os-cloud", "gureum-demo", "image", "create", "--public", "pub-by-demo",
                 check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    os_("--os-cloud", "gureum", "image", "create", "--disk-format", "raw", "--shared",
        "to-share")
    demo_project = json.loads(os_("--os-cloud", "gureum", "project", "show", "demo",
                                  "-f", "json").stdout)["id"]
    os_("--os-cloud", "gureum", "image", "add", "project", "to-share", demo_project)
    image_id = show(gureum_up, "gureum", "to-share")["id"]
    assert "to-share" not in {row["Name"] for row in images(gureum_up, "gureum-demo")}
    os_("--os-cloud", "gureum-demo", "image", "set", "--accept", image_id)
    assert "to-share" in {row["Name"] for row in images(gureum_up, "gureum-demo")}
    members = json.loads(os_("--os-cloud", "gureum", "image", "member", "list", "to-share",
                             "-f", "json").stdout)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo_project, "accepted")]


@pytest.fixture()
def sdk(gureum_up: GureumUp, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import openstack

    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(gureum_up.clouds_yaml))
    conn = openstack.connect(cloud="gureum")
    yield conn
    conn.close()


def test_openstacksdk_create_and_download(sdk: Any, tmp_path: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 5)
    image = sdk.image.create_image("sdk-img", data=data, disk_format="qcow2",
                                   container_format="bare", allow_duplicates=True)
    fetched = sdk.image.get_image(image.id)
    assert fetched.status == "active"
    assert fetched.checksum == hashlib.md5(data).hexdigest()
    assert fetched.hash_algo == "sha512"
    assert fetched.hash_value == hashlib.sha512(data).hexdigest()
    assert sdk.image.download_image(image).content == data
    target = tmp_path / "sdk.out"
    sdk.image.download_image(image, output=str(target))
    assert target.read_bytes() == data
    names = {i.name for i in sdk.image.images()}
    assert {"sdk-img", "cirros"} <= names
    sdk.image.update_image(image, name="sdk-img2", os_distro="x")
    assert sdk.image.get_image(image.id).name == "sdk-img2"
    sdk.image.add_tag(image, "t1")
    assert sdk.image.get_image(image.id).tags == ["t1"]
    sdk.image.deactivate_image(image)
    assert sdk.image.get_image(image.id).status == "deactivated"
    sdk.image.reactivate_image(image)
    sdk.image.delete_image(image)
    assert sdk.image.find_image("sdk-img2") is None


def test_openstacksdk_glance_direct_import(sdk: Any) -> None:
    data = b"imported" * 1000
    image = sdk.image.create_image("sdk-import", data=data, disk_format="raw",
                                   container_format="bare", use_import=True,
                                   allow_duplicates=True)
    got = sdk.image.get_image(image.id)
    assert got.status == "active" and got.size == len(data)
    sdk.image.delete_image(image)


def test_openstacksdk_paginates(sdk: Any) -> None:
    made = [sdk.image.create_image(f"page-{i}", disk_format="raw", container_format="bare",
                                   allow_duplicates=True, tags=["paging"])
            for i in range(5)]
    listed = list(sdk.image.images(tag="paging", limit=2))
    assert sorted(i.id for i in listed) == sorted(i.id for i in made)
    for image in made:
        sdk.image.delete_image(image)
