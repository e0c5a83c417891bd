"""Fuzzing the Block Storage routes with real ids: no body or query gets a 500.

The family-wide fuzzer (test_fuzz.py) mostly reaches volume routes with ids
that do not exist; this one makes a volume, snapshot, type, QoS spec, group,
transfer and attachment first, and draws bodies shaped like Cinder's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gureum.api.web import Route
from tests.functional.volume_helpers import create_volume, req, wait_for
from tests.harness import Api, InProcessCloud, make_settings

FIELDS = ["volume", "snapshot", "size", "name", "description", "metadata", "volume_type",
          "snapshot_id", "source_volid", "imageRef", "availability_zone", "multiattach",
          "new_size", "new_type", "bootable", "readonly", "status", "attach_status",
          "instance_uuid", "mountpoint", "host_name", "mode", "connector", "host",
          "attachment_id", "force", "image_name", "disk_format", "container_format",
          "volume_type", "extra_specs", "is_public", "project", "qos_specs", "consumer",
          "keys", "transfer", "auth_key", "accept", "volume_id", "quota_set", "volumes",
          "gigabytes", "attachment", "volume_uuid", "group", "group_type", "volume_types",
          "group_snapshot", "group_id", "default_type", "os-extend", "os-reset_status",
          "os-attach", "os-detach", "os-retype", "os-set_bootable", "revert", "delete",
          "delete-volumes", "add_volumes", "meta", "no_snapshots", "binary",
          "disabled_reason", "migration_status", "os-volume_upload_image"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                    st.sampled_from(["", "1", "²", "-1", "available", "in-use", "rw",
                                     "__DEFAULT__", "x" * 300, "\x00", "qcow2", "true"]))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), children, max_size=4)),
    max_leaves=15)


@pytest.fixture(scope="module")
def vol_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("volfuzz"))).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def env(vol_cloud: InProcessCloud) -> Iterator[dict[str, Any]]:
    api = Api(vol_cloud.url)
    admin = api.token("admin", vol_cloud.admin_password, "admin")
    demo = api.token("demo", vol_cloud.demo_password, "demo")
    ids: dict[str, str] = {}
    vol = create_volume(api, demo, name="fuzz-vol")
    wait_for(api, demo, "volume", vol["id"], "available")
    ids["volume_id"] = vol["id"]
    ids["project_id"] = ids["url_project"] = vol["os-vol-tenant-attr:tenant_id"]
    r = req(api, demo, "POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    ids["snapshot_id"] = r.json()["snapshot"]["id"]
    wait_for(api, demo, "snapshot", ids["snapshot_id"], "available")
    t = req(api, admin, "POST", "/types", json={"volume_type": {"name": "fuzz-type"}})
    ids["type_id"] = t.json()["volume_type"]["id"]
    q = req(api, admin, "POST", "/qos-specs", json={"qos_specs": {"name": "fuzz-qos"}})
    ids["qos_id"] = q.json()["qos_specs"]["id"]
    gt = req(api, admin, "POST", "/group_types", json={"group_type": {"name": "fuzz-gt"}})
    ids["type_id_group"] = gt.json()["group_type"]["id"]
    g = req(api, demo, "POST", "/groups", json={"group": {
        "group_type": ids["type_id_group"], "volume_types": [ids["type_id"]]}})
    ids["group_id"] = g.json()["group"]["id"]
    other = create_volume(api, demo, name="fuzz-transfer")
    wait_for(api, demo, "volume", other["id"], "available")
    tr = req(api, demo, "POST", "/volume-transfers", json={"transfer": {
        "volume_id": other["id"]}})
    ids["transfer_id"] = tr.json()["transfer"]["id"]
    third = create_volume(api, demo, name="fuzz-attach")
    wait_for(api, demo, "volume", third["id"], "available")
    a = req(api, demo, "POST", "/attachments", json={"attachment": {
        "volume_uuid": third["id"], "instance_uuid": "6a0c1d6e-0000-4000-8000-0000000000ff"}})
    ids["attachment_id"] = a.json()["attachment"]["id"]
    ids["class_name"] = "default"
    ids["hostname"] = "does-not-exist"
    routes: list[Route] = []
    assert vol_cloud.cloud is not None
    family = vol_cloud.cloud.app.families["/volume"]
    for route in family.router.routes():
        if route.method != "DELETE" and "{url_project}" not in route.pattern:
            routes.append(route)
    yield {"api": api, "admin": admin, "demo": demo, "ids": ids, "routes": routes}
    api.close()


def fill(pattern: str, ids: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "type_id" and pattern.startswith("/v3/group_types"):
            return ids["type_id_group"]
        return ids.get(name, "does-not-exist")
    return "/volume" + re.sub(r"{(\w+)(:[^}]+)?}", one, pattern)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_volume_request_causes_a_500(env: dict[str, Any], data: st.DataObject) -> None:
    api: Api = env["api"]
    route = data.draw(st.sampled_from(env["routes"]), label="route")
    token = env["admin"] if data.draw(st.booleans(), label="as_admin") else env["demo"]
    body = data.draw(json_values, label="body")
    if route.pattern.endswith("/action") and data.draw(st.booleans(), label="named"):
        name = data.draw(st.sampled_from([f for f in FIELDS if f.startswith("os-")]
                                         + ["revert", "delete", "addProjectAccess"]))
        body = {name: body}
    query = data.draw(st.dictionaries(
        st.sampled_from(["limit", "marker", "offset", "sort", "all_tenants", "metadata",
                         "name", "status", "bootable", "usage", "detail", "force",
                         "cascade", "vol_type_id", "is_public", "project_id"]),
        st.text(max_size=10) | st.sampled_from(["²", "1", "true", "{'a': 1}", "{[]: 1}"]),
        max_size=3), label="query")
    version = data.draw(st.sampled_from(["3.0", "3.27", "3.44", "3.71"]), label="version")
    r = api.request(route.method, fill(route.pattern, env["ids"]), token, json=body,
                    params=query, headers={"OpenStack-API-Version": f"volume {version}"})
    assert r.status_code < 500, (route.method, route.pattern, body, query, r.status_code,
                                 r.text)
