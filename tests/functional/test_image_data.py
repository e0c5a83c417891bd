"""Image data over real HTTP: streamed upload and download, checksums, ranges, rollback."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functional.image_helpers import IMAGES, active_image, raw_image, show, upload
from tests.harness import Api, InProcessCloud, make_settings


def store_files(cloud: InProcessCloud) -> set[str]:
    root = cloud.settings.image_store_dir
    return {p.name for p in root.rglob("*") if p.is_file()}


def test_upload_then_download_with_checksums(api: Api, demo_token: str,
                                             cloud: InProcessCloud) -> None:
    data = os.urandom(3 * (1 << 20) + 123)
    image = raw_image(api, demo_token, name="data")
    assert upload(api, demo_token, image["id"], data).status_code == 204
    got = show(api, demo_token, image["id"])
    assert got["status"] == "active"
    assert got["size"] == got["virtual_size"] == len(data)
    assert got["checksum"] == hashlib.md5(data).hexdigest()
    assert got["os_hash_algo"] == "sha512"
    assert got["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (cloud.settings.image_store_dir / image["id"]).read_bytes() == data
    r = api.request("GET", f"{IMAGES}/{image['id']}/file", demo_token)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-md5"] == got["checksum"]
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["content-length"]) == len(data)


def test_upload_streams_a_chunked_body(api: Api, demo_token: str) -> None:
    def body() -> Iterator[bytes]:
        for i in range(8):
            yield bytes([i]) * 100_000

    image = raw_image(api, demo_token)
    r = api.request("PUT", f"{IMAGES}/{image['id']}/file", demo_token, content=body(),
                    headers={"content-type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert show(api, demo_token, image["id"])["size"] == 800_000


def test_qcow2_virtual_size_comes_from_the_header(api: Api, demo_token: str) -> None:
    header = b"QFI\xfb" + struct.pack(">I", 3) + bytes(16) + struct.pack(">Q", 10 << 30)
    image = raw_image(api, demo_token, disk_format="qcow2")
    assert upload(api, demo_token, image["id"], header + bytes(512)).status_code == 204
    assert show(api, demo_token, image["id"])["virtual_size"] == 10 << 30


def test_download_ranges(api: Api, demo_token: str) -> None:
    data = bytes(range(256)) * 4
    image = active_image(api, demo_token, data)
    url = f"{IMAGES}/{image['id']}/file"
    r = api.request("GET", url, demo_token, headers={"range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = api.request("GET", url, demo_token, headers={"range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    r = api.request("GET", url, demo_token, headers={"range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = api.request("GET", url, demo_token, headers={"range": "bytes=0-99999"})
    assert r.status_code == 206 and r.content == data
    for bad in ("bytes=2000-", "bytes=5-1", "pages=1-2", "bytes=-0"):
        assert api.request("GET", url, demo_token, headers={"range": bad}).status_code == 416
    assert api.request("GET", url, demo_token,
                       headers={"range": "bytes=0-1,4-5"}).status_code == 400


def test_download_without_data_is_204(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token)
    r = api.request("GET", f"{IMAGES}/{image['id']}/file", demo_token)
    assert r.status_code == 204 and r.content == b""


def test_empty_image_is_active_with_zero_size(api: Api, demo_token: str) -> None:
    image = active_image(api, demo_token, b"")
    assert (image["status"], image["size"]) == ("active", 0)
    assert image["checksum"] == hashlib.md5(b"").hexdigest()
    r = api.request("GET", f"{IMAGES}/{image['id']}/file", demo_token)
    assert r.status_code == 200 and r.content == b""


def test_upload_needs_octet_stream_formats_and_queued(api: Api, demo_token: str) -> None:
    image = raw_image(api, demo_token)
    url = f"{IMAGES}/{image['id']}/file"
    r = api.request("PUT", url, demo_token, content=b"x",
                    headers={"content-type": "application/json"})
    assert r.status_code == 415
    bare = api.request("POST", IMAGES, demo_token, json={"disk_format": "raw"}).json()
    r = upload(api, demo_token, bare["id"], b"x")
    assert r.status_code == 400 and "container_format" in r.json()["message"]
    assert show(api, demo_token, bare["id"])["status"] == "queued"
    assert upload(api, demo_token, image["id"], b"one").status_code == 204
    r = upload(api, demo_token, image["id"], b"two")
    assert r.status_code == 409
    assert show(api, demo_token, image["id"])["size"] == 3


def test_failed_upload_goes_back_to_queued_and_leaves_no_file(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    image = raw_image(api, demo_token)
    before = store_files(cloud)
    r = upload(api, demo_token, image["id"], b"12345", **{"x-openstack-image-size": "9"})
    assert r.status_code == 400
    assert "X-OpenStack-Image-Size" in r.json()["message"]
    got = show(api, demo_token, image["id"])
    assert (got["status"], got["size"], got["checksum"]) == ("queued", None, None)
    assert store_files(cloud) == before
    r = upload(api, demo_token, image["id"], b"x", **{"x-openstack-image-size": "many"})
    assert r.status_code == 400
    # The image can be uploaded again after the failure.
    assert upload(api, demo_token, image["id"], b"123456789",
                  **{"x-openstack-image-size": "9"}).status_code == 204
    assert show(api, demo_token, image["id"])["status"] == "active"


def test_client_disconnect_mid_upload_rolls_back(api: Api, demo_token: str,
                                                 cloud: InProcessCloud) -> None:
    image = raw_image(api, demo_token)
    before = store_files(cloud)
    host, port = cloud.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall((f"PUT {IMAGES}/{image['id']}/file HTTP/1.1\r\nHost: {host}\r\n"
                      f"X-Auth-Token: {demo_token}\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      "Content-Length: 1000000\r\n\r\n").encode() + b"x" * 65536)
        for _ in range(100):  # the upload has begun...
            if show(api, demo_token, image["id"])["status"] == "saving":
                break
            time.sleep(0.05)
        assert show(api, demo_token, image["id"])["status"] == "saving"
    # ...and the client went away before sending the rest.
    for _ in range(100):
        if show(api, demo_token, image["id"])["status"] == "queued":
            break
        time.sleep(0.05)
    assert show(api, demo_token, image["id"])["status"] == "queued"
    assert store_files(cloud) == before


def test_image_deleted_during_upload_is_410_and_leaves_no_file(
        api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    image = raw_image(api, demo_token)
    before = store_files(cloud)
    host, port = cloud.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"PUT {IMAGES}/{image['id']}/file HTTP/1.1\r\nHost: {host}\r\n"
                      f"X-Auth-Token: {demo_token}\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      "Content-Length: 20000\r\n\r\n").encode() + b"x" * 10000)
        for _ in range(100):
            if show(api, demo_token, image["id"])["status"] == "saving":
                break
            time.sleep(0.05)
        assert api.request("DELETE", f"{IMAGES}/{image['id']}", demo_token).status_code == 204
        sock.sendall(b"y" * 10000)
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 410"), reply
    assert store_files(cloud) == before


def test_second_upload_while_saving_is_409(api: Api, demo_token: str,
                                           cloud: InProcessCloud) -> None:
    image = raw_image(api, demo_token)
    host, port = cloud.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"PUT {IMAGES}/{image['id']}/file HTTP/1.1\r\nHost: {host}\r\n"
                      f"X-Auth-Token: {demo_token}\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      "Content-Length: 8\r\n\r\n").encode() + b"1234")
        for _ in range(100):
            if show(api, demo_token, image["id"])["status"] == "saving":
                break
            time.sleep(0.05)
        r = upload(api, demo_token, image["id"], b"other")
        assert r.status_code == 409
        sock.sendall(b"5678")
        assert sock.recv(65536).decode().startswith("HTTP/1.1 204")
    r = api.request("GET", f"{IMAGES}/{image['id']}/file", demo_token)
    assert r.content == b"12345678"


def test_delete_removes_the_data(api: Api, demo_token: str, cloud: InProcessCloud) -> None:
    image = active_image(api, demo_token, b"gone soon")
    path = cloud.settings.image_store_dir / image["id"]
    assert path.exists()
    assert api.request("DELETE", f"{IMAGES}/{image['id']}", demo_token).status_code == 204
    assert not path.exists()


def test_deactivated_image_data_is_admin_only(api: Api, demo_token: str, admin_token: str
                                              ) -> None:
    image = active_image(api, demo_token, b"secret")
    base = f"{IMAGES}/{image['id']}"
    assert api.request("POST", f"{base}/actions/deactivate", demo_token).status_code == 204
    assert api.request("GET", f"{base}/file", demo_token).status_code == 403
    r = api.request("GET", f"{base}/file", admin_token)
    assert r.status_code == 200 and r.content == b"secret"


def test_glance_direct_import(api: Api, demo_token: str) -> None:
    data = os.urandom(50_000)
    image = raw_image(api, demo_token)
    url = f"{IMAGES}/{image['id']}"
    r = api.request("POST", f"{url}/import", demo_token,
                    json={"method": {"name": "glance-direct"}})
    assert r.status_code == 409  # nothing staged yet
    r = api.request("PUT", f"{url}/stage", demo_token, content=data,
                    headers={"content-type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert show(api, demo_token, image["id"])["status"] == "uploading"
    r = api.request("POST", f"{url}/import", demo_token, json={"method": {"name": "web-download",
                                                                          "uri": "http://x"}})
    assert r.status_code == 400
    r = api.request("POST", f"{url}/import", demo_token, json={"method": {}})
    assert r.status_code == 400 and "name" in r.json()["message"]
    r = api.request("POST", f"{url}/import", demo_token,
                    json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202, r.text
    got = show(api, demo_token, image["id"])
    assert got["status"] == "active" and got["checksum"] == hashlib.md5(data).hexdigest()
    assert api.request("GET", f"{url}/file", demo_token).content == data


@pytest.fixture(scope="module")
def small_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("small"),
                                     image={"max_image_size": 1000})).start()
    yield c
    c.stop()


def test_max_image_size_is_enforced(small_cloud: InProcessCloud) -> None:
    client = Api(small_cloud.url)
    try:
        token = client.token("admin", small_cloud.admin_password, "admin")
        image = raw_image(client, token)
        r = upload(client, token, image["id"], b"x" * 1001)
        assert r.status_code == 413
        assert show(client, token, image["id"])["status"] == "queued"
        r = upload(client, token, image["id"], b"x" * 10,
                   **{"x-openstack-image-size": "5000"})
        assert r.status_code == 413
        assert upload(client, token, image["id"], b"x" * 1000).status_code == 204
        leftovers = [p for p in Path(small_cloud.settings.image_store_dir).rglob("*.part")]
        assert leftovers == []
    finally:
        client.close()


def test_download_streams_large_images(api: Api, demo_token: str) -> None:
    data = os.urandom(8 << 20)
    image = active_image(api, demo_token, data)
    md5 = hashlib.md5()
    total = 0
    with httpx.stream("GET", f"{api.url}{IMAGES}/{image['id']}/file",
                      headers={"X-Auth-Token": demo_token}, timeout=30) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            md5.update(chunk)
            total += len(chunk)
    assert total == len(data) and md5.hexdigest() == image["checksum"]
