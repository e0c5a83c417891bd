"""Server metadata, tags (2.26+), ips and /extensions."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import update

from gureum.compute.models import Instance
from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud, reader_token
from tests.harness import Api, InProcessCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=1, quota={"metadata_items": 5})


@pytest.fixture(scope="module")
def server(api: Api, demo_token: str) -> Iterator[dict[str, Any]]:
    made = boot(api, demo_token, "with-extras", metadata={"a": "1"})
    yield wait_status(api, demo_token, made["id"], {"ACTIVE"})
    call(api, "DELETE", f"/servers/{made['id']}", demo_token)
    wait_gone(api, demo_token, made["id"])


def set_columns(cloud: InProcessCloud, server_id: str, **values: Any) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        s.execute(update(Instance).where(Instance.id == server_id).values(**values))


def metadata(api: Api, token: str, server_id: str) -> dict[str, str]:
    return dict(call(api, "GET", f"/servers/{server_id}/metadata", token,
                     status=200).json()["metadata"])


# -- metadata --------------------------------------------------------------------------

def test_metadata_list_update_replace_item(api: Api, demo_token: str, server: dict) -> None:
    sid = server["id"]
    path = f"/servers/{sid}/metadata"
    assert metadata(api, demo_token, sid) == {"a": "1"}
    r = call(api, "POST", path, demo_token, status=200, json={"metadata": {"b": "2"}})
    assert r.json()["metadata"] == {"a": "1", "b": "2"}
    r = call(api, "PUT", path, demo_token, status=200, json={"metadata": {"c": "3"}})
    assert r.json()["metadata"] == {"c": "3"}
    r = call(api, "PUT", f"{path}/d", demo_token, status=200, json={"meta": {"d": "4"}})
    assert r.json() == {"meta": {"d": "4"}}
    assert call(api, "GET", f"{path}/d", demo_token, status=200).json() == {"meta": {"d": "4"}}
    call(api, "DELETE", f"{path}/c", demo_token, status=204)
    assert metadata(api, demo_token, sid) == {"d": "4"}
    assert fault(call(api, "GET", f"{path}/c", demo_token, status=404)) == \
        "Metadata item was not found"
    call(api, "DELETE", f"{path}/c", demo_token, status=404)
    shown = call(api, "GET", f"/servers/{sid}", demo_token, status=200).json()["server"]
    assert shown["metadata"] == {"d": "4"}


def test_metadata_bad_bodies(api: Api, demo_token: str, server: dict) -> None:
    path = f"/servers/{server['id']}/metadata"
    r = call(api, "PUT", f"{path}/x", demo_token, status=400, json={"meta": {"y": "1"}})
    assert fault(r) == "Request body and URI mismatch"
    for body in ({"meta": {"x": "1", "z": "2"}}, {"meta": {}}, {"meta": {"x": 1}}):
        call(api, "PUT", f"{path}/x", demo_token, status=400, json=body)
    for body in ({"metadata": {"k": "v" * 256}}, {"metadata": {"": "v"}}, {"metadata": []},
                 {"other": {}}):
        call(api, "POST", path, demo_token, status=400, json=body)


def test_metadata_quota_is_403(api: Api, demo_token: str, server: dict) -> None:
    path = f"/servers/{server['id']}/metadata"
    call(api, "PUT", path, demo_token, status=200,
         json={"metadata": {str(i): "v" for i in range(5)}})
    r = call(api, "POST", path, demo_token, status=403, json={"metadata": {"6th": "v"}})
    assert "Maximum number of metadata items exceeds 5" in fault(r)
    call(api, "PUT", f"{path}/0", demo_token, status=200, json={"meta": {"0": "changed"}})
    call(api, "PUT", path, demo_token, status=200, json={"metadata": {}})


def test_metadata_refused_in_the_wrong_state_or_locked(api: Api, demo_token: str,
                                                       admin_token: str, server: dict,
                                                       cloud: InProcessCloud) -> None:
    sid = server["id"]
    path = f"/servers/{sid}/metadata"
    set_columns(cloud, sid, task_state="rebooting")
    try:
        r = call(api, "POST", path, demo_token, status=409, json={"metadata": {"k": "v"}})
        assert fault(r) == f"Cannot 'update metadata' instance {sid} while it is in " \
            "task_state rebooting"
    finally:
        set_columns(cloud, sid, task_state=None)
    set_columns(cloud, sid, vm_state="rescued")
    try:
        r = call(api, "DELETE", f"{path}/k", demo_token, status=404)  # no such key first
        call(api, "PUT", f"{path}/k", demo_token, status=409, json={"meta": {"k": "v"}})
    finally:
        set_columns(cloud, sid, vm_state="active")
    set_columns(cloud, sid, locked=True)
    try:
        assert fault(call(api, "POST", path, demo_token, status=409,
                          json={"metadata": {"k": "v"}})) == f"Instance {sid} is locked"
        call(api, "POST", path, admin_token, status=200, json={"metadata": {"k": "v"}})
    finally:
        set_columns(cloud, sid, locked=False)
    call(api, "DELETE", f"{path}/k", demo_token, status=204)


def test_concurrent_metadata_updates_keep_every_key(api: Api, demo_token: str,
                                                    server: dict) -> None:
    path = f"/servers/{server['id']}/metadata"
    call(api, "PUT", path, demo_token, status=200, json={"metadata": {}})

    def add(i: int) -> int:
        return call(api, "POST", path, demo_token, json={"metadata": {f"k{i}": "v"}}).status_code

    with ThreadPoolExecutor(5) as pool:
        assert set(pool.map(add, range(5))) == {200}
    assert set(metadata(api, demo_token, server["id"])) == {f"k{i}" for i in range(5)}
    call(api, "PUT", path, demo_token, status=200, json={"metadata": {}})


def test_metadata_of_other_projects_and_readers(api: Api, admin_token: str, demo_token: str,
                                                server: dict, cloud: InProcessCloud) -> None:
    theirs = boot(api, admin_token, "admins-own")
    call(api, "GET", f"/servers/{theirs['id']}/metadata", demo_token, status=404)
    call(api, "POST", f"/servers/{theirs['id']}/metadata", demo_token, status=404,
         json={"metadata": {"k": "v"}})
    call(api, "DELETE", f"/servers/{theirs['id']}", admin_token, status=204)
    reader = reader_token(api, cloud, admin_token, "meta-reader")
    call(api, "GET", f"/servers/{server['id']}/metadata", reader, status=200)
    call(api, "POST", f"/servers/{server['id']}/metadata", reader, status=403,
         json={"metadata": {"k": "v"}})
    wait_gone(api, admin_token, theirs["id"])


# -- tags --------------------------------------------------------------------------------

def tags(api: Api, token: str, server_id: str) -> list[str]:
    return list(call(api, "GET", f"/servers/{server_id}/tags", token, "2.26",
                     status=200).json()["tags"])


def test_tags(api: Api, demo_token: str, server: dict) -> None:
    sid = server["id"]
    path = f"/servers/{sid}/tags"
    call(api, "GET", path, demo_token, "2.25", status=404)
    r = call(api, "PUT", path, demo_token, "2.26", status=200, json={"tags": ["a", "b", "a"]})
    assert r.json() == {"tags": ["a", "b"]}
    r = call(api, "PUT", f"{path}/c", demo_token, "2.26", status=201)
    assert r.headers["location"].endswith(f"/servers/{sid}/tags/c")
    call(api, "PUT", f"{path}/c", demo_token, "2.26", status=204)
    call(api, "GET", f"{path}/c", demo_token, "2.26", status=204)
    assert fault(call(api, "GET", f"{path}/zz", demo_token, "2.26", status=404)) == \
        f"Server {sid} has no tag 'zz'"
    assert tags(api, demo_token, sid) == ["a", "b", "c"]
    shown = call(api, "GET", f"/servers/{sid}", demo_token, "2.26", status=200).json()
    assert shown["server"]["tags"] == ["a", "b", "c"]
    call(api, "DELETE", f"{path}/b", demo_token, "2.26", status=204)
    call(api, "DELETE", f"{path}/b", demo_token, "2.26", status=404)
    assert tags(api, demo_token, sid) == ["a", "c"]
    call(api, "DELETE", path, demo_token, "2.26", status=204)
    assert tags(api, demo_token, sid) == []


def test_tag_limits(api: Api, demo_token: str, server: dict) -> None:
    path = f"/servers/{server['id']}/tags"
    call(api, "PUT", path, demo_token, "2.26", status=400,
         json={"tags": [f"t{i}" for i in range(51)]})
    for bad in (["a,b"], ["x" * 61], [""], "a", [1]):
        call(api, "PUT", path, demo_token, "2.26", status=400, json={"tags": bad})
    call(api, "PUT", f"{path}/{'x' * 61}", demo_token, "2.26", status=400)
    call(api, "PUT", f"{path}/a,b", demo_token, "2.26", status=400)
    call(api, "PUT", path, demo_token, "2.26", status=200,
         json={"tags": [f"t{i}" for i in range(50)]})
    r = call(api, "PUT", f"{path}/one-more", demo_token, "2.26", status=400)
    assert fault(r) == "The number of tags exceeded the per-server limit 50"
    call(api, "PUT", f"{path}/caf%C3%A9", demo_token, "2.26", status=400)
    call(api, "DELETE", path, demo_token, "2.26", status=204)
    r = call(api, "PUT", f"{path}/caf%C3%A9", demo_token, "2.26", status=201)
    assert r.headers["location"].endswith("/tags/caf%C3%A9")
    assert tags(api, demo_token, server["id"]) == ["café"]
    call(api, "DELETE", path, demo_token, "2.26", status=204)


def test_tags_refused_while_building(api: Api, demo_token: str, server: dict,
                                     cloud: InProcessCloud) -> None:
    set_columns(cloud, server["id"], vm_state="building")
    try:
        r = call(api, "PUT", f"/servers/{server['id']}/tags/x", demo_token, "2.26",
                 status=409)
        assert "vm_state building" in fault(r)
        call(api, "GET", f"/servers/{server['id']}/tags", demo_token, "2.26", status=200)
    finally:
        set_columns(cloud, server["id"], vm_state="active")


# -- ips, extensions ------------------------------------------------------------------

def test_ips_from_network_info(api: Api, demo_token: str, server: dict,
                               cloud: InProcessCloud) -> None:
    sid = server["id"]
    assert call(api, "GET", f"/servers/{sid}/ips", demo_token,
                status=200).json() == {"addresses": {}}
    set_columns(cloud, sid, network_info=[{
        "network_name": "private", "mac_address": "fa:16:3e:00:00:01",
        "fixed_ips": [{"ip_address": "10.0.0.5", "version": 4},
                      {"ip_address": "fd00::5", "version": 6}],
        "floating_ips": [{"ip_address": "172.24.4.9", "version": 4}]}])
    try:
        found = call(api, "GET", f"/servers/{sid}/ips", demo_token, status=200).json()
        assert found == {"addresses": {"private": [
            {"version": 4, "addr": "10.0.0.5"}, {"version": 6, "addr": "fd00::5"},
            {"version": 4, "addr": "172.24.4.9"}]}}
        one = call(api, "GET", f"/servers/{sid}/ips/private", demo_token, status=200).json()
        assert one == {"private": found["addresses"]["private"]}
        r = call(api, "GET", f"/servers/{sid}/ips/public", demo_token, status=404)
        assert fault(r) == "Instance is not a member of specified network"
    finally:
        set_columns(cloud, sid, network_info=[])
    call(api, "GET", "/servers/00000000-0000-0000-0000-000000000000/ips", demo_token,
         status=404)


def test_extensions(api: Api, demo_token: str) -> None:
    found = call(api, "GET", "/extensions", demo_token, status=200).json()["extensions"]
    aliases = {e["alias"] for e in found}
    assert {"os-services", "os-hypervisors", "OS-EXT-SRV-ATTR"} <= aliases
    one = call(api, "GET", "/extensions/os-services", demo_token, status=200).json()
    assert one["extension"]["name"] == "Services"
    call(api, "GET", "/extensions/os-nothing", demo_token, status=404)
