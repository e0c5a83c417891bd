"""Quotas under concurrency: many creates at once through the API, against a quota of k.

Each request runs in its own server thread and transaction. Without the project's
quota lock (gureum/db/locks.py) two requests could both count k-1 on PostgreSQL or
MariaDB and both create; with it exactly k succeed and every other one gets the
service's over-quota answer (Cinder's 413, Neutron's 409 OverQuota, Nova's 403):
volumes, gigabytes of a type, snapshots and groups; networks; server groups and key
pairs (counted per user).
SQLite queues its write transactions anyway; the same test runs there too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.functional.network_helpers import user_in_project
from tests.functional.test_databases import database_url  # noqa: F401  (the fixture)
from tests.functional.volume_helpers import V, wait_for
from tests.harness import Api, InProcessCloud, make_settings

RACERS = 12


def race(api: Api, token: str, path: str, body: Callable[[int], dict[str, object]],
         headers: dict[str, str] | None = None) -> list[httpx.Response]:
    def make(i: int) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=120) as client:
            return client.post(path, headers={"X-Auth-Token": token, **(headers or {})},
                               json=body(i))

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(make, range(RACERS)))


def winners(answers: list[httpx.Response], ok: int, refused: int) -> list[httpx.Response]:
    codes = sorted(r.status_code for r in answers)
    assert codes.count(ok) + codes.count(refused) == len(codes), \
        [r.text for r in answers if r.status_code not in (ok, refused)][:3]
    return [r for r in answers if r.status_code == ok]


def race_for_quotas(api: Api, admin: str, tag: str) -> None:
    project = f"quota-race-{tag}"
    token = user_in_project(api, admin, f"racer-{tag}", project)
    pid = api.request("GET", f"/identity/v3/projects?name={project}",
                      admin).json()["projects"][0]["id"]
    vol_headers = {"OpenStack-API-Version": "volume 3.71"}

    # Block Storage, volumes: 3 of 12 (the project's first checks: its lock row is made).
    r = api.request("PUT", f"{V}/os-quota-sets/{pid}", admin, headers=vol_headers,
                    json={"quota_set": {"volumes": 3}})
    assert r.status_code == 200, r.text
    answers = race(api, token, f"{V}/volumes",
                   lambda i: {"volume": {"size": 1, "name": f"v{i}"}}, vol_headers)
    made = winners(answers, 202, 413)
    assert len(made) == 3, [r.status_code for r in answers]
    for r in answers:
        if r.status_code == 413:
            assert r.json()["overLimit"]["message"] == (
                "VolumeLimitExceeded: Maximum number of volumes allowed (3) exceeded for "
                "quota 'volumes'.")
    volume_id = made[0].json()["volume"]["id"]
    wait_for(api, token, "volume", volume_id, "available")

    # Block Storage, gigabytes of one volume type (__DEFAULT__): 5G more, 2G each.
    r = api.request("PUT", f"{V}/os-quota-sets/{pid}", admin, headers=vol_headers,
                    json={"quota_set": {"volumes": -1, "gigabytes___DEFAULT__": 3 + 5}})
    assert r.status_code == 200, r.text
    answers = race(api, token, f"{V}/volumes",
                   lambda i: {"volume": {"size": 2, "name": f"g{i}"}}, vol_headers)
    assert len(winners(answers, 202, 413)) == 2, [r.text for r in answers][:2]
    assert all("gigabytes" in r.json()["overLimit"]["message"]
               for r in answers if r.status_code == 413)

    # Block Storage, snapshots of one volume: 2 of 12.
    r = api.request("PUT", f"{V}/os-quota-sets/{pid}", admin, headers=vol_headers,
                    json={"quota_set": {"snapshots": 2, "gigabytes___DEFAULT__": -1}})
    assert r.status_code == 200, r.text
    answers = race(api, token, f"{V}/snapshots",
                   lambda i: {"snapshot": {"volume_id": volume_id, "name": f"s{i}"}},
                   vol_headers)
    assert len(winners(answers, 202, 413)) == 2
    assert all(r.json()["overLimit"]["message"] ==
               "SnapshotLimitExceeded: Maximum number of snapshots allowed (2) exceeded"
               for r in answers if r.status_code == 413)

    # Block Storage, groups: 2 of 12.
    r = api.request("POST", f"{V}/group_types", admin, headers=vol_headers,
                    json={"group_type": {"name": f"race-gt-{tag}"}})
    assert r.status_code == 200, r.text
    gt = r.json()["group_type"]["id"]
    default = api.request("GET", f"{V}/types/default", token,
                          headers=vol_headers).json()["volume_type"]["id"]
    r = api.request("PUT", f"{V}/os-quota-sets/{pid}", admin, headers=vol_headers,
                    json={"quota_set": {"groups": 2}})
    assert r.status_code == 200, r.text
    answers = race(api, token, f"{V}/groups", lambda i: {"group": {
        "name": f"gr{i}", "group_type": gt, "volume_types": [default]}}, vol_headers)
    assert len(winners(answers, 202, 413)) == 2
    assert all(r.json()["overLimit"]["message"] ==
               "GroupLimitExceeded: Maximum number of groups allowed (2) exceeded"
               for r in answers if r.status_code == 413)

    # Networking shares the lock (Neutron's 409 OverQuota): networks, 2 of 12.
    r = api.request("PUT", f"/network/v2.0/quotas/{pid}", admin,
                    json={"quota": {"network": 2}})
    assert r.status_code == 200, r.text
    answers = race(api, token, "/network/v2.0/networks",
                   lambda i: {"network": {"name": f"n{i}"}})
    assert len(winners(answers, 201, 409)) == 2
    assert all(r.json()["NeutronError"]["type"] == "OverQuota"
               for r in answers if r.status_code == 409)

    # And Compute (Nova's 403): server groups, 2 of 12.
    r = api.request("PUT", f"/compute/v2.1/os-quota-sets/{pid}", admin,
                    json={"quota_set": {"server_groups": 2}})
    assert r.status_code == 200, r.text
    answers = race(api, token, "/compute/v2.1/os-server-groups",
                   lambda i: {"server_group": {"name": f"sg{i}", "policies": ["affinity"]}})
    assert len(winners(answers, 200, 403)) == 2

    # Key pairs are counted per user: the user's lock (Nova's 403), 2 of 12.
    r = api.request("PUT", f"/compute/v2.1/os-quota-sets/{pid}", admin,
                    json={"quota_set": {"key_pairs": 2}})
    assert r.status_code == 200, r.text
    answers = race(api, token, "/compute/v2.1/os-keypairs",
                   lambda i: {"keypair": {"name": f"kp{i}"}})
    assert len(winners(answers, 200, 403)) == 2
    assert all("too many key pairs" in r.text for r in answers if r.status_code == 403)


def test_concurrent_creates_respect_quotas_exactly(api: Api, admin_token: str) -> None:
    race_for_quotas(api, admin_token, "sqlite")


def test_concurrent_creates_respect_quotas_on_a_database_server(
        database_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:  # noqa: F811
    settings = make_settings(tmp_path_factory.mktemp("quota-db"),
                             database={"url": database_url})
    cloud = InProcessCloud(settings).start()
    api = Api(cloud.url)
    try:
        admin = api.token("admin", cloud.admin_password, "admin")
        race_for_quotas(api, admin, "server")
    finally:
        api.close()
        cloud.stop()

