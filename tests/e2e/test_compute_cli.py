"""Issue [2/7]'s server commands, verbatim, against `gureum up --hosts 3`."""

from __future__ import annotations

import json

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def j(up: GureumUp, *args: str) -> object:
    return json.loads(up.openstack(*args, "-f", "json").stdout)


def test_server_lifecycle_as_member(gureum_up: GureumUp) -> None:
    up = gureum_up
    created = j(up, "--os-cloud", "gureum-demo", "server", "create", "--flavor", "m1.tiny",
                "--image", "cirros", "--network", "private", "--wait", "vm1")
    assert isinstance(created, dict) and created["status"] == "ACTIVE"
    assert "private" in str(created["addresses"])
    listed = j(up, "--os-cloud", "gureum-demo", "server", "list")
    assert isinstance(listed, list)
    row = next(r for r in listed if r["Name"] == "vm1")
    assert row["Status"] == "ACTIVE" and "10.0.0." in str(row["Networks"])
    shown = j(up, "--os-cloud", "gureum-demo", "server", "show", "vm1")
    assert isinstance(shown, dict)
    assert shown["OS-EXT-STS:vm_state"] == "active"
    assert shown.get("OS-EXT-SRV-ATTR:host") in (None, "")  # members never see hosts
    events = j(up, "--os-cloud", "gureum-demo", "server", "event", "list", "vm1")
    assert isinstance(events, list) and events[0]["Action"] == "create"
    up.openstack("--os-cloud", "gureum-demo", "server", "delete", "--wait", "vm1")
    assert not any(r["Name"] == "vm1" for r in j(up, "--os-cloud", "gureum-demo",  # type: ignore[union-attr]
                                                "server", "list"))


def test_admin_host_listing_and_disabled_host(gureum_up: GureumUp) -> None:
    up = gureum_up
    up.openstack("--os-cloud", "gureum", "compute", "service", "set", "--disable",
                 "--disable-reason", "maintenance", "c01", "nova-compute")
    try:
        names = [f"spread-{i}" for i in range(4)]
        for name in names:
            up.openstack("--os-cloud", "gureum-demo", "server", "create", "--flavor",
                         "m1.tiny", "--image", "cirros", "--network", "private", "--wait",
                         name)
        rows = j(up, "--os-cloud", "gureum", "server", "list", "--all-projects", "--long")
        assert isinstance(rows, list)
        hosts = {r["Name"]: r["Host"] for r in rows if r["Name"] in names}
        assert len(hosts) == 4 and "c01" not in hosts.values()  # disabled: never chosen
        on_c02 = j(up, "--os-cloud", "gureum", "server", "list", "--all-projects", "--long",
                   "--host", "c02")
        assert isinstance(on_c02, list)
        assert {r["Name"] for r in on_c02 if r["Name"] in names} == {
            n for n, h in hosts.items() if h == "c02"}
        for name in names:
            up.openstack("--os-cloud", "gureum-demo", "server", "delete", "--wait", name)
    finally:
        up.openstack("--os-cloud", "gureum", "compute", "service", "set", "--enable", "c01",
                     "nova-compute")


def test_anti_affinity_group_lands_on_two_hosts(gureum_up: GureumUp) -> None:
    up = gureum_up
    group = j(up, "--os-cloud", "gureum-demo", "server", "group", "create", "--policy",
              "anti-affinity", "g-spread")
    assert isinstance(group, dict)
    up.openstack("--os-cloud", "gureum-demo", "server", "create", "--flavor", "m1.tiny",
                 "--image", "cirros", "--network", "private", "--hint",
                 f"group={group['id']}", "--min", "2", "--max", "2", "--wait", "pair")
    rows = j(up, "--os-cloud", "gureum", "server", "list", "--all-projects", "--long",
             "--name", "^pair-")
    assert isinstance(rows, list) and len(rows) == 2
    assert all(r["Status"] == "ACTIVE" for r in rows)
    assert len({r["Host"] for r in rows}) == 2
    for r in rows:
        up.openstack("--os-cloud", "gureum-demo", "server", "delete", "--wait", r["ID"])
    up.openstack("--os-cloud", "gureum-demo", "server", "group", "delete", "g-spread")
