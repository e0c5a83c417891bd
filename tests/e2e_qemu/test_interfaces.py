"""Interface attach in real guests: `openstack server add port` hot-plugs a NIC into a
running QEMU guest (QMP shows a virtio-net device with the port's MAC), a live
migration takes it along (the destination defines it on the same root port, and the
port's binding follows: binding_host_id is the new host), `server remove port`
unplugs it and the port the user made stays, detached.
"""

from __future__ import annotations

import asyncio
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
