"""os-quota-sets, /limits and os-simple-tenant-usage: limits, overrides and what is used."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from gureum.compute.models import Instance
from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import (
    call,
    fault,
    module_cloud,
    project_id,
    reader_token,
)
from tests.harness import Api, InProcessCloud

V21_KEYS = {"id", "instances", "cores", "ram", "floating_ips", "fixed_ips", "metadata_items",
            "injected_files", "injected_file_content_bytes", "injected_file_path_bytes",
            "security_groups", "security_group_rules", "key_pairs", "server_groups",
            "server_group_members"}
V257_KEYS = {"id", "instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
             "server_group_members"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=1)


@pytest.fixture(scope="module")
def demo_project(api: Api, admin_token: str) -> str:
    return project_id(api, admin_token, "demo")


@pytest.fixture(scope="module")
def demo_server(api: Api, demo_token: str) -> Iterator[dict[str, Any]]:
    server = boot(api, demo_token, "counted", flavor="2")  # m1.small: 1 vcpu, 2048 MB
    yield wait_status(api, demo_token, server["id"], {"ACTIVE"})
    call(api, "DELETE", f"/servers/{server['id']}", demo_token)
    wait_gone(api, demo_token, server["id"])


def quota(api: Api, token: str, project: str, mv: str = "2.1", suffix: str = "") -> dict:
    return dict(call(api, "GET", f"/os-quota-sets/{project}{suffix}", token, mv,
                     status=200).json()["quota_set"])


def test_show_per_microversion(api: Api, demo_token: str, demo_project: str) -> None:
    v21 = quota(api, demo_token, demo_project)
    assert set(v21) == V21_KEYS and v21["id"] == demo_project
    assert (v21["instances"], v21["cores"], v21["ram"], v21["fixed_ips"]) == (10, 20, 51200, -1)
    v236 = quota(api, demo_token, demo_project, "2.36")
    assert "fixed_ips" not in v236 and "injected_files" in v236
    assert set(quota(api, demo_token, demo_project, "2.57")) == V257_KEYS


def test_detail_counts_usage(api: Api, demo_token: str, demo_project: str,
                             demo_server: dict) -> None:
    detail = quota(api, demo_token, demo_project, "2.57", "/detail")
    assert detail["instances"] == {"limit": 10, "in_use": 1, "reserved": 0}
    assert detail["cores"]["in_use"] == 1 and detail["ram"]["in_use"] == 2048


def test_defaults(api: Api, demo_token: str, demo_project: str) -> None:
    defaults = quota(api, demo_token, demo_project, "2.1", "/defaults")
    assert defaults["instances"] == 10 and defaults["id"] == demo_project


def test_update_and_delete_by_admin(api: Api, admin_token: str, demo_token: str,
                                    demo_project: str, demo_server: dict) -> None:
    r = call(api, "PUT", f"/os-quota-sets/{demo_project}", admin_token, "2.57", status=200,
             json={"quota_set": {"instances": "5", "key_pairs": 3}})
    body = r.json()["quota_set"]
    assert "id" not in body and (body["instances"], body["key_pairs"]) == (5, 3)
    assert quota(api, demo_token, demo_project)["instances"] == 5
    assert quota(api, demo_token, demo_project, "2.1", "/defaults")["instances"] == 10
    r = call(api, "PUT", f"/os-quota-sets/{demo_project}", admin_token, status=400,
             json={"quota_set": {"instances": 0}})
    assert fault(r) == ("Quota limit 0 for instances must be greater than or equal to "
                        "already used and reserved 1.")
    call(api, "PUT", f"/os-quota-sets/{demo_project}", admin_token, status=200,
         json={"quota_set": {"instances": 0, "force": True}})
    call(api, "PUT", f"/os-quota-sets/{demo_project}", admin_token, status=200,
         json={"quota_set": {"instances": -1}})
    call(api, "DELETE", f"/os-quota-sets/{demo_project}", admin_token, status=202)
    assert quota(api, demo_token, demo_project)["instances"] == 10


def test_update_validation(api: Api, admin_token: str, demo_project: str) -> None:
    path = f"/os-quota-sets/{demo_project}"
    call(api, "PUT", path, admin_token, "2.35", status=200,
         json={"quota_set": {"floating_ips": 20}})
    call(api, "PUT", path, admin_token, "2.36", status=400,
         json={"quota_set": {"floating_ips": 20}})
    call(api, "PUT", path, admin_token, "2.57", status=400,
         json={"quota_set": {"injected_files": 2}})
    for bad in ({"instances": -2}, {"instances": "many"}, {"bogus": 1}, {"ram": 2**31}):
        call(api, "PUT", path, admin_token, status=400, json={"quota_set": bad})
    call(api, "PUT", path, admin_token, status=400, json={"instances": 1})
    r = call(api, "PUT", "/os-quota-sets/no-such-project", admin_token, status=400,
             json={"quota_set": {"instances": 1}})
    assert fault(r) == "Project ID no-such-project is not a valid project."
    call(api, "PUT", f"{path}?user_id=someone", admin_token, status=400,
         json={"quota_set": {"instances": 1}})
    call(api, "DELETE", path, admin_token, status=202)


def test_policy(api: Api, admin_token: str, demo_token: str, demo_project: str,
                cloud: InProcessCloud) -> None:
    admin_project = project_id(api, admin_token, "admin")
    r = call(api, "GET", f"/os-quota-sets/{admin_project}", demo_token, status=403)
    assert "os-quota-sets:show" in fault(r)
    call(api, "GET", f"/os-quota-sets/{admin_project}/detail", demo_token, status=403)
    call(api, "PUT", f"/os-quota-sets/{demo_project}", demo_token, status=403,
         json={"quota_set": {"instances": 100}})
    call(api, "DELETE", f"/os-quota-sets/{demo_project}", demo_token, status=403)
    quota(api, admin_token, demo_project)  # admin reads any project
    reader = reader_token(api, cloud, admin_token, "quota-reader")
    quota(api, reader, demo_project)


def test_key_pair_quota_counts_the_callers_pairs(api: Api, admin_token: str,
                                                 demo_token: str, demo_project: str) -> None:
    call(api, "POST", "/os-keypairs", demo_token, status=200,
         json={"keypair": {"name": "counted-kp"}})
    try:
        assert quota(api, demo_token, demo_project, "2.57", "/detail")["key_pairs"][
            "in_use"] == 1
        assert quota(api, admin_token, demo_project, "2.57", "/detail")["key_pairs"][
            "in_use"] == 0
    finally:
        call(api, "DELETE", "/os-keypairs/counted-kp", demo_token)


def limits(api: Api, token: str, mv: str = "2.1", query: str = "") -> dict[str, int]:
    r = call(api, "GET", f"/limits{query}", token, mv, status=200).json()["limits"]
    assert r["rate"] == []
    return dict(r["absolute"])


def test_limits_per_microversion(api: Api, demo_token: str, demo_server: dict) -> None:
    old = limits(api, demo_token)
    assert (old["maxTotalInstances"], old["totalInstancesUsed"], old["totalCoresUsed"],
            old["totalRAMUsed"]) == (10, 1, 1, 2048)
    assert {"maxImageMeta", "maxPersonality", "maxSecurityGroups",
            "totalFloatingIpsUsed"} <= set(old)
    v236 = limits(api, demo_token, "2.36")
    assert "maxSecurityGroups" not in v236 and "maxPersonality" in v236
    assert "maxImageMeta" not in limits(api, demo_token, "2.39")
    v257 = limits(api, demo_token, "2.57")
    assert set(v257) == {"maxServerMeta", "maxTotalCores", "maxTotalInstances",
                         "maxTotalKeypairs", "maxTotalRAMSize", "maxServerGroups",
                         "maxServerGroupMembers", "totalCoresUsed", "totalInstancesUsed",
                         "totalRAMUsed", "totalServerGroupsUsed"}


def test_limits_of_another_project(api: Api, admin_token: str, demo_token: str,
                                   demo_project: str, demo_server: dict) -> None:
    theirs = limits(api, admin_token, "2.1", f"?tenant_id={demo_project}")
    assert theirs["totalInstancesUsed"] == 1
    admin_project = project_id(api, admin_token, "admin")
    call(api, "GET", f"/limits?tenant_id={admin_project}", demo_token, status=403)
    call(api, "GET", "/limits?bogus=1", demo_token, "2.75", status=400)


# -- os-simple-tenant-usage -------------------------------------------------------------

def test_usage_hours_from_launch_and_termination(api: Api, admin_token: str, demo_token: str,
                                                 demo_project: str, demo_server: dict,
                                                 cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session() as s:
        s.execute(update(Instance).where(Instance.id == demo_server["id"]).values(
            launched_at=dt.datetime(2024, 1, 1, 10), created_at=dt.datetime(2024, 1, 1, 10)))
    window = "start=2024-01-01T12:00:00&end=2024-01-01T14:30:00"
    usage = call(api, "GET", f"/os-simple-tenant-usage/{demo_project}?{window}", demo_token,
                 status=200).json()["tenant_usage"]
    assert usage["total_hours"] == pytest.approx(2.5)
    assert usage["total_memory_mb_usage"] == pytest.approx(2048 * 2.5)
    assert usage["start"] == "2024-01-01T12:00:00.000000"
    (server,) = usage["server_usages"]
    assert (server["instance_id"], server["flavor"], server["state"], server["ended_at"]) == \
        (demo_server["id"], "m1.small", "active", None)
    assert server["local_gb"] == 20 and server["vcpus"] == 1
    everyone = call(api, "GET", f"/os-simple-tenant-usage?{window}", admin_token,
                    status=200).json()["tenant_usages"]
    assert [u["tenant_id"] for u in everyone] == [demo_project]
    assert "server_usages" not in everyone[0]
    detailed = call(api, "GET", f"/os-simple-tenant-usage?{window}&detailed=1", admin_token,
                    status=200).json()["tenant_usages"]
    assert len(detailed[0]["server_usages"]) == 1
    sdk_style = call(api, "GET", f"/os-simple-tenant-usage?{window}&detailed=True",
                     admin_token, status=200).json()["tenant_usages"]
    assert len(sdk_style[0]["server_usages"]) == 1  # what openstacksdk sends
    before = call(api, "GET", "/os-simple-tenant-usage?start=2023-01-01T00:00:00"
                  "&end=2023-02-01T00:00:00", admin_token, status=200).json()
    assert before["tenant_usages"] == []


def test_usage_paging_and_errors(api: Api, admin_token: str, demo_token: str,
                                 demo_project: str, demo_server: dict) -> None:
    window = "start=2020-01-01T00:00:00"
    page = call(api, "GET", f"/os-simple-tenant-usage/{demo_project}?{window}&limit=1",
                demo_token, "2.40", status=200).json()
    assert page["tenant_usage_links"][0]["rel"] == "next"
    call(api, "GET", f"/os-simple-tenant-usage/{demo_project}?{window}&marker=nope",
         demo_token, "2.40", status=400)
    call(api, "GET", "/os-simple-tenant-usage?start=yesterday", admin_token, status=400)
    call(api, "GET", "/os-simple-tenant-usage?start=2030-01-01T00:00:00&end=2029-01-01T00:00:00",
         admin_token, status=400)
    call(api, "GET", "/os-simple-tenant-usage", demo_token, status=403)
    admin_project = project_id(api, admin_token, "admin")
    call(api, "GET", f"/os-simple-tenant-usage/{admin_project}", demo_token, status=403)
    empty = call(api, "GET", f"/os-simple-tenant-usage/{admin_project}", admin_token,
                 status=200).json()
    assert empty == {"tenant_usage": {}}
