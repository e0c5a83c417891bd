"""Booting servers through scheduler, claims, agents and the fake driver."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.compute_helpers import MV, boot, image_id, show, wait_gone, wait_status
from tests.harness import Api, InProcessCloud, make_settings

# Each fake host fits exactly 20 m1.tiny (512 MB each, 512 MB reserved).
HOST_MEMORY = 20 * 512 + 512


@pytest.fixture(scope="module")
def compute_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(
        tmp_path_factory.mktemp("compute"),
        compute={"fake_memory_mb": HOST_MEMORY, "fake_failures": "c03:spawn"},
        quota={"instances": 200, "cores": 400, "ram": 1_000_000})
    c = InProcessCloud(settings, hosts=3).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def capi(compute_cloud: InProcessCloud) -> Iterator[Api]:
    api = Api(compute_cloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def demo(capi: Api, compute_cloud: InProcessCloud) -> str:
    return capi.token("demo", compute_cloud.demo_password, "demo")


@pytest.fixture(scope="module")
def admin(capi: Api, compute_cloud: InProcessCloud) -> str:
    return capi.token("admin", compute_cloud.admin_password, "admin")


def test_boot_and_delete(capi: Api, demo: str, admin: str) -> None:
    image = image_id(capi, demo)
    server = boot(capi, demo, "vm1", image=image)
    assert server["id"] and server["links"][0]["rel"] == "self"
    active = wait_status(capi, demo, server["id"], {"ACTIVE"})
    assert active["OS-EXT-STS:power_state"] == 1
    assert "OS-EXT-SRV-ATTR:host" not in active  # a member never sees host fields
    as_admin = show(capi, admin, server["id"])
    assert as_admin["OS-EXT-SRV-ATTR:host"] in ("c01", "c02")  # c03 fails every spawn
    assert as_admin["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")
    events = capi.request("GET", f"/compute/v2.1/servers/{server['id']}/os-instance-actions",
                          demo, headers=MV)
    if events.status_code == 200:
        assert events.json()["instanceActions"][0]["action"] == "create"
    assert capi.request("DELETE", f"/compute/v2.1/servers/{server['id']}", demo,
                        headers=MV).status_code == 204
    wait_gone(capi, demo, server["id"])


def test_other_project_gets_404(capi: Api, demo: str, admin: str) -> None:
    server = boot(capi, admin, "admins")
    r = capi.request("GET", f"/compute/v2.1/servers/{server['id']}", demo, headers=MV)
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["code"] == 404
    r = capi.request("DELETE", f"/compute/v2.1/servers/{server['id']}", demo, headers=MV)
    assert r.status_code == 404
    listed = capi.request("GET", "/compute/v2.1/servers?all_tenants=1", demo, headers=MV)
    assert listed.status_code == 403
    capi.request("DELETE", f"/compute/v2.1/servers/{server['id']}", admin, headers=MV)
    wait_gone(capi, admin, server["id"])


def test_spawn_failure_is_retried_on_another_host(capi: Api, admin: str,
                                                  compute_cloud: InProcessCloud) -> None:
    # Pin the request to c03 is not allowed to retry; an unpinned one retries elsewhere.
    server = boot(capi, admin, "retry-me", availability_zone="nova:c03")
    failed = wait_status(capi, admin, server["id"], {"ERROR"})
    assert "spawn fails on c03" in failed["fault"]["details"] or \
        "spawn" in failed["fault"]["message"]
    capi.request("DELETE", f"/compute/v2.1/servers/{server['id']}", admin, headers=MV)
    # Unpinned boots never end up on c03, though the scheduler may try it first.
    for i in range(4):
        s = boot(capi, admin, f"unpinned-{i}")
        done = wait_status(capi, admin, s["id"], {"ACTIVE"})
        assert done["OS-EXT-SRV-ATTR:host"] != "c03"
        capi.request("DELETE", f"/compute/v2.1/servers/{s['id']}", admin, headers=MV)
        wait_gone(capi, admin, s["id"])
    wait_gone(capi, admin, server["id"])


def test_bad_references_are_400(capi: Api, demo: str) -> None:
    base = {"name": "bad", "flavorRef": "1", "networks": "none",
            "imageRef": image_id(capi, demo)}
    for server, needle in (
        ({**base, "flavorRef": "999"}, "Flavor 999 could not be found."),
        ({**base, "imageRef": "00000000-0000-0000-0000-000000000000"}, "could not be found"),
        ({**base, "key_name": "nope"}, "Invalid key_name provided."),
        ({**base, "availability_zone": "mars"}, "availability zone is not available"),
        ({**base, "user_data": "not base64!"}, "base 64"),
        ({"flavorRef": "1", "networks": "none"}, "name"),
        ({**base, "imageRef": ""}, "Missing imageRef attribute"),
        ({**base, "min_count": 3, "max_count": 2}, "min_count"),
    ):
        r = capi.request("POST", "/compute/v2.1/servers", demo, json={"server": server},
                         headers=MV)
        assert r.status_code == 400, (server, r.text)
        assert needle in r.json()["badRequest"]["message"], r.text
    # networks is required from 2.37 on
    r = capi.request("POST", "/compute/v2.1/servers", demo,
                     json={"server": {"name": "x", "flavorRef": "1"}}, headers=MV)
    assert r.status_code == 400
    # a forced host is admin-only
    r = capi.request("POST", "/compute/v2.1/servers", demo,
                     json={"server": {**base, "availability_zone": "nova:c01"}}, headers=MV)
    assert r.status_code == 403


def test_microversion_negotiation(capi: Api, demo: str) -> None:
    r = capi.request("GET", "/compute/v2.1/servers", demo)
    assert r.headers["openstack-api-version"] == "compute 2.1"
    assert r.headers["x-openstack-nova-api-version"] == "2.1"
    r = capi.request("GET", "/compute/v2.1/servers", demo,
                     headers={"X-OpenStack-Nova-API-Version": "2.53"})
    assert r.headers["openstack-api-version"] == "compute 2.53"
    r = capi.request("GET", "/compute/v2.1/servers", demo,
                     headers={"OpenStack-API-Version": "compute latest"})
    assert r.headers["openstack-api-version"] == "compute 2.100"
    r = capi.request("GET", "/compute/v2.1/servers", demo,
                     headers={"OpenStack-API-Version": "compute 2.200"})
    assert r.status_code == 406
    r = capi.request("GET", "/compute/v2.1/servers", demo,
                     headers={"OpenStack-API-Version": "compute two"})
    assert r.status_code == 400


def test_concurrent_boots_never_oversubscribe(capi: Api, admin: str,
                                              compute_cloud: InProcessCloud) -> None:
    """50 concurrent creates against room for 40 → exactly 40 ACTIVE, 10 ERROR.

    c03 fails every spawn, so the room is c01 + c02: 20 m1.tiny each.
    """
    assert compute_cloud.cloud is not None
    def one(i: int) -> str:
        return str(boot(capi, admin, f"crowd-{i}")["id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(one, range(50)))
    final = [wait_status(capi, admin, i, {"ACTIVE", "ERROR"}, timeout=120) for i in ids]
    active = [s for s in final if s["status"] == "ACTIVE"]
    errors = [s for s in final if s["status"] == "ERROR"]
    assert len(active) == 40, [s["status"] for s in final]
    assert len(errors) == 10
    for s in errors:
        assert s["fault"]["message"].startswith("No valid host was found."), s["fault"]
    per_host: dict[str, int] = {}
    for s in active:
        per_host[s["OS-EXT-SRV-ATTR:host"]] = per_host.get(s["OS-EXT-SRV-ATTR:host"], 0) + 1
    assert per_host == {"c01": 20, "c02": 20}
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: capi.request("DELETE", f"/compute/v2.1/servers/{i}", admin,
                                             headers=MV), ids))
    for i in ids:
        wait_gone(capi, admin, i, timeout=120)
