"""S11. Keeping an IP address.

A port the user made (with the exact address: `openstack port create
--fixed-ip ip-address=X`) and handed to a server outlives the server: deleting
the server only detaches it (Nova's preserve_on_delete: only the ports Compute
made go with it). `openstack port set --device "" --device-owner ""
--no-binding-profile` detaches (and unbinds) it as written, and the next
`server create --nic port-id=` gets it with its address. A port another server
uses is refused (409, PortInUse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios.ops import CliServer, Operator, cloud

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s11", hosts=2) as o:
        yield o


def detached(op: Operator, port: str, ip: str) -> None:
    shown = op.cli_json("port", "show", port)
    assert [a["ip_address"] for a in shown["fixed_ips"]] == [ip]
    assert (shown["device_id"], shown["device_owner"]) == ("", "")
    assert shown["binding_host_id"] in ("", None) and shown["status"] == "DOWN"
    assert shown["binding_profile"] in ({}, None)


def test_a_users_port_outlives_its_server(op: Operator) -> None:
    op.run("openstack --os-cloud gureum network create --provider-network-type vxlan net2")
    assert op.cli_json("network", "show", "net2", "-c", "mtu")["mtu"] == 1450
    op.run("openstack --os-cloud gureum subnet create --network net2 "
           "--subnet-range 192.168.50.0/24 sub2")
    op.run("openstack --os-cloud gureum port create --network net2 "
           "--fixed-ip ip-address=192.168.50.77 keep-me")
    port_id = op.cli_json("port", "show", "keep-me")["id"]
    op.run(f"openstack --os-cloud gureum server create --nic port-id={port_id} "
           "--image cirros --flavor m1.tiny --wait vm2")
    vm2 = op.cli_json("server", "show", "vm2")
    assert vm2["addresses"] == {"net2": ["192.168.50.77"]}
    bound = op.cli_json("port", "show", "keep-me")
    assert bound["device_id"] == vm2["id"] and bound["device_owner"].startswith("compute:")
    assert bound["binding_host_id"] == vm2["OS-EXT-SRV-ATTR:host"]

    # In use by vm2: another server cannot have it.
    proc = op.cli("server", "create", "--nic", f"port-id={port_id}", "--image", "cirros",
                  "--flavor", "m1.tiny", "vm-thief", check=False)
    assert proc.returncode != 0 and "409" in proc.stderr and "in use" in proc.stderr, proc

    op.run("openstack --os-cloud gureum server delete --wait vm2")
    detached(op, "keep-me", "192.168.50.77")
    # The next server gets it, with its address.
    op.run(f"openstack --os-cloud gureum server create --nic port-id={port_id} "
           "--image cirros --flavor m1.tiny --wait vm3")
    assert op.cli_json("server", "show", "vm3")["addresses"] == {"net2": ["192.168.50.77"]}

    # Detached by hand, the S11 way: unbound, its address kept; deleting the server
    # afterwards leaves it alone.
    op.run('openstack --os-cloud gureum port set --device "" --device-owner "" '
           "--no-binding-profile keep-me")
    detached(op, "keep-me", "192.168.50.77")
    op.run("openstack --os-cloud gureum server delete --wait vm3")
    detached(op, "keep-me", "192.168.50.77")


def test_ports_compute_made_go_with_the_server(op: Operator) -> None:
    net = op.cli_json("network", "show", "private")["id"]
    op.cli("server", "create", "--nic", f"net-id={net}", "--image", "cirros", "--flavor",
           "m1.tiny", "--wait", "vm-own")
    (port,) = op.cli_json("port", "list", "--server", "vm-own")
    op.cli("server", "delete", "--wait", "vm-own")
    proc = op.cli("port", "show", port["ID"], check=False)
    assert proc.returncode != 0 and "No Port found" in proc.stderr + proc.stdout, proc
