"""os-server-groups: policies before 2.64, policy + rules after, members, quota, visibility."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compute_helpers import boot, wait_gone, wait_status
from tests.functional.compute_api_helpers import (
    call,
    fault,
    module_cloud,
    project_id,
    reader_token,
)
from tests.harness import Api, InProcessCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=2, quota={"server_groups": 6})


def create(api: Api, token: str, body: dict, mv: str = "2.64", status: int = 200) -> dict:
    r = call(api, "POST", "/os-server-groups", token, mv, status=status,
             json={"server_group": body})
    return dict(r.json().get("server_group") or r.json())


def delete(api: Api, token: str, group_id: str) -> None:
    call(api, "DELETE", f"/os-server-groups/{group_id}", token, status=204)


def test_v21_policies_shape(api: Api, demo_token: str) -> None:
    made = create(api, demo_token, {"name": "old", "policies": ["anti-affinity"]}, "2.1")
    assert made == {"id": made["id"], "name": "old", "policies": ["anti-affinity"],
                    "members": [], "metadata": {}}
    v213 = call(api, "GET", f"/os-server-groups/{made['id']}", demo_token, "2.13",
                status=200).json()["server_group"]
    assert {"project_id", "user_id"} <= set(v213)
    v264 = call(api, "GET", f"/os-server-groups/{made['id']}", demo_token, "2.64",
                status=200).json()["server_group"]
    assert (v264["policy"], v264["rules"]) == ("anti-affinity", {})
    assert "policies" not in v264 and "metadata" not in v264
    delete(api, demo_token, made["id"])


def test_soft_policies_need_2_15(api: Api, demo_token: str) -> None:
    body = {"name": "soft", "policies": ["soft-affinity"]}
    create(api, demo_token, body, "2.14", status=400)
    made = create(api, demo_token, body, "2.15")
    assert made["policies"] == ["soft-affinity"]
    delete(api, demo_token, made["id"])


def test_policy_and_rules_from_2_64(api: Api, demo_token: str, admin_token: str) -> None:
    made = create(api, demo_token, {"name": "spread", "policy": "anti-affinity",
                                    "rules": {"max_server_per_host": 2}})
    assert (made["policy"], made["rules"]) == ("anti-affinity", {"max_server_per_host": 2})
    assert made["project_id"] == project_id(api, admin_token, "demo")
    delete(api, demo_token, made["id"])
    r = create(api, demo_token, {"name": "x", "policy": "affinity",
                                 "rules": {"max_server_per_host": 2}}, status=400)
    assert r["badRequest"]["message"] == "Only anti-affinity policy supports rules."
    for body in ({"name": "x", "policies": ["affinity"]},
                 {"name": "x", "policy": "best-effort"},
                 {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}},
                 {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}},
                 {"name": "", "policy": "affinity"}, {"policy": "affinity"}):
        create(api, demo_token, body, status=400)
    # 2.64 fields are unknown before it.
    create(api, demo_token, {"name": "x", "policy": "affinity"}, "2.63", status=400)
    create(api, demo_token, {"name": "x", "policies": ["affinity", "anti-affinity"]}, "2.1",
           status=400)


def test_members_are_live_servers_of_the_group(api: Api, demo_token: str) -> None:
    group = create(api, demo_token, {"name": "members", "policy": "anti-affinity"})
    servers = [boot(api, demo_token, f"m{i}", hints={"group": group["id"]}) for i in range(2)]
    for server in servers:
        wait_status(api, demo_token, server["id"], {"ACTIVE"})
    shown = call(api, "GET", f"/os-server-groups/{group['id']}", demo_token, "2.64",
                 status=200).json()["server_group"]
    assert sorted(shown["members"]) == sorted(s["id"] for s in servers)
    call(api, "DELETE", f"/servers/{servers[0]['id']}", demo_token, status=204)
    wait_gone(api, demo_token, servers[0]["id"])
    shown = call(api, "GET", f"/os-server-groups/{group['id']}", demo_token,
                 status=200).json()["server_group"]
    assert shown["members"] == [servers[1]["id"]]
    listed = call(api, "GET", "/os-server-groups", demo_token,
                  status=200).json()["server_groups"]
    assert [g["members"] for g in listed if g["id"] == group["id"]] == [[servers[1]["id"]]]
    call(api, "DELETE", f"/servers/{servers[1]['id']}", demo_token, status=204)
    wait_gone(api, demo_token, servers[1]["id"])
    delete(api, demo_token, group["id"])


def test_other_projects_groups_are_hidden(api: Api, admin_token: str, demo_token: str) -> None:
    theirs = create(api, admin_token, {"name": "admins", "policy": "affinity"})
    mine = create(api, demo_token, {"name": "demos", "policy": "affinity"})
    try:
        call(api, "GET", f"/os-server-groups/{theirs['id']}", demo_token, status=404)
        call(api, "DELETE", f"/os-server-groups/{theirs['id']}", demo_token, status=404)
        names = {g["name"] for g in call(api, "GET", "/os-server-groups?all_projects=1",
                                         demo_token, status=200).json()["server_groups"]}
        assert names == {"demos"}  # all_projects means nothing to a member
        everyone = {g["name"] for g in call(api, "GET", "/os-server-groups?all_projects=1",
                                            admin_token, status=200).json()["server_groups"]}
        assert {"admins", "demos"} <= everyone
        own = {g["name"] for g in call(api, "GET", "/os-server-groups", admin_token,
                                       status=200).json()["server_groups"]}
        assert own == {"admins"}
        call(api, "GET", f"/os-server-groups/{mine['id']}", admin_token, status=200)
    finally:
        delete(api, admin_token, theirs["id"])
        delete(api, demo_token, mine["id"])


def test_paging_with_limit_and_offset(api: Api, demo_token: str) -> None:
    made = [create(api, demo_token, {"name": f"page{i}", "policy": "affinity"})
            for i in range(3)]
    try:
        page = call(api, "GET", "/os-server-groups?limit=2&offset=1", demo_token,
                    status=200).json()["server_groups"]
        assert [g["name"] for g in page] == ["page1", "page2"]
        call(api, "GET", "/os-server-groups?limit=x", demo_token, status=400)
        call(api, "GET", "/os-server-groups?bogus=1", demo_token, "2.75", status=400)
    finally:
        for group in made:
            delete(api, demo_token, group["id"])


def test_quota_server_groups_is_403(api: Api, demo_token: str) -> None:
    made = [create(api, demo_token, {"name": f"q{i}", "policy": "affinity"}) for i in range(6)]
    try:
        r = call(api, "POST", "/os-server-groups", demo_token, "2.64", status=403,
                 json={"server_group": {"name": "one-too-many", "policy": "affinity"}})
        assert fault(r) == "Quota exceeded, too many server groups."
    finally:
        for group in made:
            delete(api, demo_token, group["id"])


def test_readers_read_but_do_not_write(api: Api, admin_token: str, demo_token: str,
                                       cloud: InProcessCloud) -> None:
    reader = reader_token(api, cloud, admin_token)
    group = create(api, demo_token, {"name": "readable", "policy": "affinity"})
    try:
        call(api, "GET", f"/os-server-groups/{group['id']}", reader, status=200)
        call(api, "POST", "/os-server-groups", reader, "2.64", status=403,
             json={"server_group": {"name": "nope", "policy": "affinity"}})
        call(api, "DELETE", f"/os-server-groups/{group['id']}", reader, status=403)
    finally:
        delete(api, demo_token, group["id"])
