"""Generic volume groups: group types with specs, groups of volumes, group snapshots."""

from __future__ import annotations

from tests.functional.network_helpers import user_in_project
from tests.functional.volume_helpers import create_volume, req, wait_for
from tests.harness import Api


def test_group_type_group_and_group_snapshot(api: Api, admin_token: str, demo_token: str
                                             ) -> None:
    r = req(api, admin_token, "POST", "/group_types", json={"group_type": {
        "name": "gt1", "group_specs": {"consistent_group_snapshot_enabled": "<is> True"}}})
    assert r.status_code == 200, r.text
    gt = r.json()["group_type"]
    r = req(api, admin_token, "PUT", f"/group_types/{gt['id']}/group_specs/foo",
            json={"foo": "bar"})
    assert r.json() == {"foo": "bar"}
    r = req(api, demo_token, "GET", f"/group_types/{gt['id']}/group_specs")
    assert r.json()["group_specs"]["foo"] == "bar"
    default = req(api, demo_token, "GET", "/types/default").json()["volume_type"]
    r = req(api, demo_token, "POST", "/groups", json={"group": {
        "name": "g1", "group_type": gt["id"], "volume_types": [default["id"]]}})
    assert r.status_code == 202, r.text
    group = r.json()["group"]
    assert group["status"] == "available"
    vol = create_volume(api, demo_token, name="in-group", group_id=group["id"])
    wait_for(api, demo_token, "volume", vol["id"], "available")
    assert req(api, demo_token, "GET", f"/volumes/{vol['id']}").json()["volume"][
        "group_id"] == group["id"]
    r = req(api, demo_token, "POST", "/group_snapshots", json={"group_snapshot": {
        "group_id": group["id"], "name": "gs1"}})
    assert r.status_code == 202, r.text
    gs = r.json()["group_snapshot"]
    done = wait_for(api, demo_token, "group_snapshot", gs["id"], "available")
    assert done is not None and done["group_id"] == group["id"]
    # listed in summary and in detail, to their project only (admin: all_tenants)
    other = user_in_project(api, admin_token, "group-other", "group-other-project")
    for kind, row in (("groups", group), ("group_snapshots", gs)):
        assert {"id": row["id"], "name": row["name"]} in req(
            api, demo_token, "GET", f"/{kind}").json()[kind]
        detail = req(api, demo_token, "GET", f"/{kind}/detail").json()[kind]
        assert row["id"] in {x["id"] for x in detail} and all("status" in x for x in detail)
        assert req(api, other, "GET", f"/{kind}/detail").json()[kind] == []
        mine = req(api, admin_token, "GET", f"/{kind}").json()[kind]
        everyone = req(api, admin_token, "GET", f"/{kind}?all_tenants=1").json()[kind]
        assert row["id"] not in {x["id"] for x in mine}
        assert row["id"] in {x["id"] for x in everyone}
        assert req(api, demo_token, "GET", f"/{kind}", version="3.12").status_code == 406
    # a group with snapshots stays; without them it goes with its volumes
    r = req(api, demo_token, "POST", f"/groups/{group['id']}/action",
            json={"delete": {"delete-volumes": True}})
    assert r.status_code == 400
    assert req(api, demo_token, "DELETE", f"/group_snapshots/{gs['id']}").status_code == 202
    r = req(api, demo_token, "POST", f"/groups/{group['id']}/action",
            json={"delete": {"delete-volumes": True}})
    assert r.status_code == 202, r.text
    assert req(api, demo_token, "GET", f"/groups/{group['id']}").status_code == 404
    assert wait_for(api, demo_token, "volume", vol["id"], "deleted") is None
    assert req(api, admin_token, "DELETE", f"/group_types/{gt['id']}").status_code == 202
