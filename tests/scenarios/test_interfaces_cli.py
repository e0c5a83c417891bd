"""Interface attach (Nova's os-interface) through the real CLI, on the fake driver.

`openstack server add port|network` and `remove port|network`: the port is bound
to the server's host, the host's driver plugs it (hot-plug into a running guest,
the definition only for a stopped one), the server's addresses show it and the
instance action is recorded; a port the user made is kept (detached) when
removed, one Compute made is deleted. c02 fails every attach: the port's part is
undone and the CLI reports the failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.scenarios.ops import ADMIN, DEMO, CliServer, Operator, cloud

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "ifaces", hosts=2,
               compute={"fake_failures": "c02:attach_interface"}) as o:
        yield o


def demo(op: Operator, *args: str) -> Any:
    return op.cli_json(*args, cloud=DEMO)


def interfaces(op: Operator, server_id: str, cloud: str = DEMO) -> list[dict[str, Any]]:
    r = op.call("GET", f"/servers/{server_id}/os-interface", cloud)
    assert r.status_code == 200, r.text
    return list(r.json()["interfaceAttachments"])


def test_add_and_remove_ports_and_networks(op: Operator) -> None:
    op.cli("network", "create", "net3", cloud=DEMO)
    op.cli("subnet", "create", "--network", "net3", "--subnet-range", "192.168.60.0/24",
           "sub3", cloud=DEMO)
    op.cli("server", "create", "--network", "private", "--image", "cirros", "--flavor",
           "m1.tiny", "--wait", "vm1", cloud=DEMO)
    vm = demo(op, "server", "show", "vm1")
    host = op.show(vm["id"])["OS-EXT-SRV-ATTR:host"]
    extra = demo(op, "port", "create", "--network", "net3", "--fixed-ip",
                 "ip-address=192.168.60.50", "p-extra")

    op.cli("server", "add", "port", "vm1", "p-extra", cloud=DEMO)
    port = op.cli_json("port", "show", extra["id"])
    assert port["device_id"] == vm["id"] and port["device_owner"].startswith("compute:")
    assert port["binding_host_id"] == host and port["status"] == "ACTIVE"
    assert "192.168.60.50" in demo(op, "server", "show", "vm1")["addresses"]["net3"]
    shown = interfaces(op, vm["id"])
    assert {i["port_id"] for i in shown} >= {extra["id"]}
    one = next(i for i in shown if i["port_id"] == extra["id"])
    assert one["mac_addr"] == extra["mac_address"] and one["net_id"] == extra["network_id"]
    assert one["fixed_ips"] == [{"ip_address": "192.168.60.50",
                                 "subnet_id": extra["fixed_ips"][0]["subnet_id"]}]
    r = op.call("GET", f"/servers/{vm['id']}/os-interface/{extra['id']}", DEMO)
    assert r.status_code == 200 and r.json()["interfaceAttachment"]["port_id"] == extra["id"]
    events = [e["Action"] for e in demo(op, "server", "event", "list", "vm1")]
    assert "attach_interface" in events

    # A network: a port is made for it.
    op.cli("server", "add", "network", "vm1", "net3", cloud=DEMO)
    ports = demo(op, "port", "list", "--server", "vm1", "--network", "net3")
    assert len(ports) == 2
    made = next(p for p in ports if p["ID"] != extra["id"])

    # Someone else's server cannot take a port in use.
    other = op.boot("vm-other", cloud=DEMO, networks="none")
    r = op.call("POST", f"/servers/{other['id']}/os-interface", DEMO,
                json={"interfaceAttachment": {"port_id": extra["id"]}})
    assert r.status_code == 409, r.text
    # Bad requests: both a port and a network; an address without a network.
    for body in ({"port_id": extra["id"], "net_id": extra["network_id"]},
                 {"fixed_ips": [{"ip_address": "192.168.60.9"}]}):
        r = op.call("POST", f"/servers/{vm['id']}/os-interface", DEMO,
                    json={"interfaceAttachment": body})
        assert r.status_code == 400, r.text

    # Removed: the user's port is kept, detached; the one Compute made is deleted.
    op.cli("server", "remove", "port", "vm1", "p-extra", cloud=DEMO)
    kept = op.cli_json("port", "show", extra["id"])
    assert (kept["device_id"], kept["binding_host_id"]) == ("", "")
    assert kept["fixed_ips"][0]["ip_address"] == "192.168.60.50"
    op.cli("server", "remove", "network", "vm1", "net3", cloud=DEMO)
    assert demo(op, "port", "list", "--server", "vm1", "--network", "net3") == []
    assert op.cli("port", "show", made["ID"], check=False).returncode != 0
    assert "net3" not in demo(op, "server", "show", "vm1")["addresses"]
    r = op.call("DELETE", f"/servers/{vm['id']}/os-interface/{extra['id']}", DEMO)
    assert r.status_code == 404, r.text
    events = [e["Action"] for e in demo(op, "server", "event", "list", "vm1")]
    assert events.count("detach_interface") == 2

    # A stopped server: its definition takes the port; it is there once started.
    op.cli("server", "stop", "vm1", cloud=DEMO)
    op.wait(vm["id"], {"SHUTOFF"})
    op.cli("server", "add", "port", "vm1", "p-extra", cloud=DEMO)
    op.cli("server", "start", "vm1", cloud=DEMO)
    op.wait(vm["id"], {"ACTIVE"})
    assert "192.168.60.50" in demo(op, "server", "show", "vm1")["addresses"]["net3"]
    assert op.cli_json("port", "show", extra["id"])["binding_host_id"] == host
    op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)
    assert op.cli_json("port", "show", extra["id"])["device_id"] == ""


def test_a_failed_attach_leaves_the_port_as_it_was(op: Operator) -> None:
    net = op.cli_json("network", "show", "private")["id"]
    vm = op.boot("vm-bad", cloud=ADMIN, host="c02", networks=[{"uuid": net}])
    port = op.cli_json("port", "create", "--network", "private", "p-bad")
    proc = op.cli("server", "add", "port", "vm-bad", "p-bad", check=False)
    assert proc.returncode != 0 and "Failed to attach" in proc.stderr, proc
    after = op.cli_json("port", "show", port["id"])
    assert (after["device_id"], after["binding_host_id"]) == ("", "")
    assert [i["port_id"] for i in interfaces(op, vm["id"], ADMIN)] != [port["id"]]
    assert len(interfaces(op, vm["id"], ADMIN)) == 1
    # Made by Compute for a network: gone again.
    before = {p["ID"] for p in op.cli_json("port", "list", "--network", "private")}
    proc = op.cli("server", "add", "network", "vm-bad", "private", check=False)
    assert proc.returncode != 0
    assert {p["ID"] for p in op.cli_json("port", "list", "--network", "private")} == before


def test_a_port_made_for_a_network_gets_the_servers_groups(op: Operator) -> None:
    web = demo(op, "security", "group", "create", "web")
    op.cli("server", "create", "--network", "private", "--security-group", "web",
           "--image", "cirros", "--flavor", "m1.tiny", "--wait", "vm-sg", cloud=DEMO)
    op.cli("server", "add", "network", "vm-sg", "private", cloud=DEMO)
    ports = demo(op, "port", "list", "--server", "vm-sg")
    assert len(ports) == 2
    for row in ports:
        assert demo(op, "port", "show", row["ID"])["security_group_ids"] == [web["id"]]
    op.cli("server", "delete", "--wait", "vm-sg", cloud=DEMO)
