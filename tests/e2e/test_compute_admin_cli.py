"""The operators' compute admin commands, typed as they are in the Ops Guide (S8).

Each command runs verbatim through the real `openstack` CLI against `gureum up
--hosts 3` and must exit 0 with the output an operator expects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def table(text: str) -> list[dict[str, str]]:
    """The rows of a cliff table as dicts keyed by the header."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    if not lines:
        return []
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[1:]]


def fields(text: str) -> dict[str, str]:
    """A ShowOne table (Field | Value) as a dict."""
    return {row["Field"]: row["Value"] for row in table(text)}


def run(up: GureumUp, command: str) -> str:
    """One verbatim command line (split on spaces, as a shell would here)."""
    assert command.startswith("openstack ")
    return up.openstack(*command.split()[1:]).stdout


def computes(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["Host"]: r for r in rows if r["Binary"] == "nova-compute"}


def test_compute_service_list_and_maintenance(gureum_up: GureumUp) -> None:
    rows = computes(table(run(gureum_up, "openstack --os-cloud gureum compute service list")))
    assert sorted(rows) == ["c01", "c02", "c03"]
    for row in rows.values():
        assert (row["Status"], row["State"], row["Zone"]) == ("enabled", "up", "nova")
    try:
        out = run(gureum_up, "openstack --os-cloud gureum compute service set --disable "
                             "--disable-reason maintenance c01 nova-compute")
        assert out == ""
        rows = computes(table(run(gureum_up,
                                  "openstack --os-cloud gureum compute service list --long")))
        assert (rows["c01"]["Status"], rows["c01"]["Disabled Reason"]) == ("disabled",
                                                                           "maintenance")
        assert rows["c02"]["Status"] == "enabled"
    finally:
        run(gureum_up, "openstack --os-cloud gureum compute service set --enable c01 "
                       "nova-compute")
    rows = computes(table(run(gureum_up,
                              "openstack --os-cloud gureum compute service list --long")))
    assert (rows["c01"]["Status"], rows["c01"]["Disabled Reason"]) == ("enabled", "None")


def test_hypervisor_list_and_stats(gureum_up: GureumUp) -> None:
    rows = table(run(gureum_up, "openstack --os-cloud gureum hypervisor list"))
    assert sorted(r["Hypervisor Hostname"] for r in rows) == ["c01", "c02", "c03"]
    assert {r["State"] for r in rows} == {"up"}
    # Deprecated in the CLI (Nova removed it at 2.88) but still served at 2.1.
    stats = fields(run(gureum_up, "openstack --os-cloud gureum hypervisor stats show"))
    assert int(stats["count"]) == 3
    assert int(stats["vcpus"]) > 0 and int(stats["memory_mb"]) > int(stats["memory_mb_used"])
    shown = json.loads(gureum_up.openstack("--os-cloud", "gureum", "hypervisor", "show", "c01",
                                           "-f", "json").stdout)
    assert shown["service_host"] == "c01" and shown["state"] == "up"


def test_aggregate_with_zone(gureum_up: GureumUp) -> None:
    out = run(gureum_up, "openstack --os-cloud gureum aggregate create --zone az2 agg2")
    assert fields(out)["availability_zone"] == "az2"
    try:
        out = run(gureum_up, "openstack --os-cloud gureum aggregate add host agg2 c03")
        added = fields(out)
        assert (added["hosts"], added["availability_zone"]) == ("c03", "az2")
        zones = table(run(gureum_up, "openstack --os-cloud gureum availability zone list"))
        assert {"Zone Name": "az2", "Zone Status": "available"} in zones
        services = computes(table(run(gureum_up,
                                      "openstack --os-cloud gureum compute service list")))
        assert services["c03"]["Zone"] == "az2"
    finally:
        gureum_up.openstack("--os-cloud", "gureum", "aggregate", "remove", "host", "agg2", "c03",
                            check=False)
        gureum_up.openstack("--os-cloud", "gureum", "aggregate", "delete", "agg2")
    zones = table(run(gureum_up, "openstack --os-cloud gureum availability zone list"))
    assert "az2" not in {z["Zone Name"] for z in zones}


def test_availability_zone_list(gureum_up: GureumUp) -> None:
    zones = table(run(gureum_up, "openstack --os-cloud gureum availability zone list"))
    assert {"Zone Name": "nova", "Zone Status": "available"} in zones


def test_server_group_and_keypair_as_member(gureum_up: GureumUp) -> None:
    out = run(gureum_up, "openstack --os-cloud gureum-demo server group create --policy "
                         "anti-affinity g1")
    group = fields(out)
    try:
        assert (group["name"], group["policy"], group["members"]) == ("g1", "anti-affinity", "")
        listed = table(gureum_up.openstack("--os-cloud", "gureum-demo", "server", "group",
                                           "list").stdout)
        assert [(r["Name"], r["Policy"]) for r in listed] == [("g1", "anti-affinity")]
    finally:
        gureum_up.openstack("--os-cloud", "gureum-demo", "server", "group", "delete", "g1")
    out = run(gureum_up, "openstack --os-cloud gureum-demo keypair create kp1")
    try:
        assert out.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        listed = table(gureum_up.openstack("--os-cloud", "gureum-demo", "keypair",
                                           "list").stdout)
        assert "kp1" in {r["Name"] for r in listed}
    finally:
        gureum_up.openstack("--os-cloud", "gureum-demo", "keypair", "delete", "kp1")


def test_quota_limits_usage(gureum_up: GureumUp) -> None:
    quota = {r["Resource"]: r["Limit"]
             for r in table(run(gureum_up, "openstack --os-cloud gureum quota show"))}
    assert (quota["instances"], quota["cores"], quota["ram"]) == ("10", "20", "51200")
    assert quota["server-groups"] == "10" and quota["key-pairs"] == "100"
    limits: dict[str, Any] = {
        r["Name"]: r["Value"]
        for r in table(run(gureum_up, "openstack --os-cloud gureum limits show --absolute"))}
    assert limits["max_total_instances"] == "10" and limits["max_total_cores"] == "20"
    assert limits["total_instances_used"].isdigit()
    # The list counts server-hours: give the demo project a server to count.
    gureum_up.openstack("--os-cloud", "gureum-demo", "server", "create", "--flavor", "m1.tiny",
                        "--image", "cirros", "--nic", "none", "--wait", "usage-vm")
    try:
        out = run(gureum_up, "openstack --os-cloud gureum usage list")
        assert out.startswith("Usage from ")
        rows = {r["Project"]: r for r in table(out)}
        assert int(rows["demo"]["Servers"]) >= 1
        assert float(rows["demo"]["RAM MB-Hours"]) >= 0
    finally:
        gureum_up.openstack("--os-cloud", "gureum-demo", "server", "delete", "--wait",
                            "usage-vm")
