"""Interface attach in real guests: `openstack server add port` hot-plugs a NIC into a
running QEMU guest (QMP shows a virtio-net device with the port's MAC), a live
migration takes it along (the destination defines it on the same root port, and the
port's binding follows: binding_host_id is the new host), `server remove port`
unplugs it and the port the user made stays, detached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.virt.qemu import interfaces
from gureum.virt.qemu.monitor import Monitor
from tests.e2e_qemu.guests import QemuCloud, qemu_cloud
from tests.scenarios.ops import DEMO, CliServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[QemuCloud]:
    with qemu_cloud(tmp_path_factory, cli, "qemu-interfaces", hosts=2, shared=True) as o:
        yield o


def nics(op: QemuCloud, server_id: str) -> list[str]:
    """The MACs of the NICs plugged into the guest's QEMU (QMP)."""
    host = op.host_of(server_id)
    sock = op.data_dir / "hosts" / host / "guests" / server_id / "qmp.sock"
    if not sock.exists():  # the host's state directory, wherever gureum up put it
        (sock,) = op.data_dir.rglob(f"{host}/**/guests/{server_id}/qmp.sock")
    found: Any = asyncio.run(interfaces.plugged(Monitor(sock, server_id)))
    return sorted(found.values())


def test_hot_plug_live_migrate_and_unplug_a_nic(op: QemuCloud) -> None:
    op.only_enabled("c01")
    vm = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                     "--network", "private", "--wait", "vm1", cloud=DEMO)
    op.only_enabled("c01", "c02")
    sid = vm["id"]
    op.wait_boot(sid, 1)
    (first,) = op.cli_json("port", "list", "--server", sid)
    assert nics(op, sid) == [first["MAC Address"]]
    port = op.cli_json("port", "create", "--network", "private", "p2", cloud=DEMO)

    op.cli("server", "add", "port", "vm1", "p2", cloud=DEMO)
    assert nics(op, sid) == sorted([first["MAC Address"], port["mac_address"]])
    assert op.cli_json("port", "show", "p2")["binding_host_id"] == "c01"

    op.cli("server", "migrate", "--live-migration", "--host", "c02", "--wait", sid)
    assert op.wait(sid, {"ACTIVE"}, timeout=120)["OS-EXT-SRV-ATTR:host"] == "c02"
    assert nics(op, sid) == sorted([first["MAC Address"], port["mac_address"]])
    for p in (first["ID"], port["id"]):
        assert op.cli_json("port", "show", p)["binding_host_id"] == "c02"

    op.cli("server", "remove", "port", "vm1", "p2", cloud=DEMO)
    assert nics(op, sid) == [first["MAC Address"]]
    kept = op.cli_json("port", "show", "p2")
    assert (kept["device_id"], kept["binding_host_id"]) == ("", "")
    op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)


def test_deleting_an_attached_port_unplugs_its_nic_from_the_guest(op: QemuCloud) -> None:
    """`openstack port delete` of a port attached to a running guest (Neutron's
    network-vif-deleted): QEMU's PCI tree loses the NIC and the server's addresses the
    port. Before the fix the guest kept the NIC."""
    vm = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                     "--network", "private", "--wait", "vm-del", cloud=DEMO)
    sid = vm["id"]
    op.wait_boot(sid, 1)
    (first,) = op.cli_json("port", "list", "--server", sid)
    port = op.cli_json("port", "create", "--network", "private", "p-del", cloud=DEMO)
    op.cli("server", "add", "port", "vm-del", "p-del", cloud=DEMO)
    assert nics(op, sid) == sorted([first["MAC Address"], port["mac_address"]])

    op.cli("port", "delete", "p-del", cloud=DEMO)
    deadline = time.monotonic() + 60
    while nics(op, sid) != [first["MAC Address"]]:
        assert time.monotonic() < deadline, nics(op, sid)
        time.sleep(0.5)
    addresses = op.cli_json("server", "show", "vm-del", cloud=DEMO)["addresses"]
    assert port["fixed_ips"][0]["ip_address"] not in str(addresses)
    assert [i["port_id"] for i in op.call("GET", f"/servers/{sid}/os-interface",
                                          DEMO).json()["interfaceAttachments"]] \
        == [first["ID"]]
    op.cli("server", "delete", "--wait", "vm-del", cloud=DEMO)
