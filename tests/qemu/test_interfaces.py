"""NIC hot-plug into a running QEMU guest (virt/qemu/interfaces.py), as Nova's
os-interface does it: what the contract suite cannot see.

A booted test guest gets a second NIC: QEMU's PCI tree shows a second virtio-net
device with the port's MAC on its hot-plug root port, its tap is on the network's
bridge (when this machine can make taps), and a live migration to a host defined
from the spec (both ports, their device_index giving their root ports) moves the
guest with both NICs; detaching unplugs the device (the guest released it) and
removes the tap.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from gureum.virt.qemu import QemuDriver, vif
from tests.qemu import guest as test_guest
from tests.qemu.test_moving import GUEST, console_shows, hosts, run, spec

pytestmark = [pytest.mark.slow, pytest.mark.skipif(test_guest.missing() is not None,
                                                   reason=str(test_guest.missing()))]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> test_guest.TestGuest:
    return test_guest.build(tmp_path_factory.mktemp("test-guest"))


def links(master: str) -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show", "master", master],
                         capture_output=True, text=True, check=False).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


async def virtio_nics(driver: QemuDriver) -> dict[str, str]:
    """qdev id → bus of every network device in QEMU's PCI tree (bridges walked)."""
    found: dict[str, str] = {}

    def walk(devices: list[dict[str, Any]], bus: str) -> None:
        for d in devices:
            if d.get("class_info", {}).get("class") == 0x0200:
                found[str(d.get("qdev_id"))] = bus
            bridge = d.get("pci_bridge")
            if bridge:
                walk(bridge.get("devices", []), str(d.get("qdev_id")))

    for bus in await driver.monitor(GUEST).execute("query-pci"):
        walk(bus["devices"], "pcie.0")
    return found


def test_hot_plug_a_nic_then_live_migrate_then_unplug(tmp_path: Path,
                                                      image: test_guest.TestGuest) -> None:
    mechanism = "bridge" if vif.BridgeVif.usable() else "user"
    network = str(uuid.uuid4())
    bridge = vif.bridge_name(network)
    ports = [{"port_id": str(uuid.uuid4()), "network_id": network, "mtu": 1450,
              "mac_address": f"fa:16:3e:aa:00:{i:02x}", "vif_type": mechanism,
              "vif_details": {"bridge_name": bridge} if mechanism == "bridge" else {},
              "device_index": i} for i in (0, 1)]

    async def go() -> None:
        async with hosts(tmp_path, "h1", "h2", shared=("h1", "h2")) as h:
            await h["h1"].spawn(spec(image, network_info=ports[:1]))
            await console_shows(h["h1"], "tick 1")
            assert await virtio_nics(h["h1"]) == {"dev-net0": "hp-net0"}

            await h["h1"].attach_interface(GUEST, ports[1])  # hot-plugged
            assert await virtio_nics(h["h1"]) == {"dev-net0": "hp-net0",
                                                  "dev-net1": "hp-net1"}
            assert sorted((await h["h1"].plugged_nics(GUEST)).values()) == \
                [p["mac_address"] for p in ports]
            if mechanism == "bridge":
                assert links(bridge) == {vif.tap_name(p["port_id"], "h1") for p in ports}

            # The destination defines both NICs from the spec, where the source has them.
            both = spec(image, network_info=ports)
            uri = await h["h2"].prepare_incoming(both, block_migration=False)
            await h["h1"].live_migrate(GUEST, uri, block_migration=False)
            assert await h["h2"].list_guests() == [GUEST]
            assert await virtio_nics(h["h2"]) == {"dev-net0": "hp-net0",
                                                  "dev-net1": "hp-net1"}
            assert sorted((await h["h2"].plugged_nics(GUEST)).values()) == \
                [p["mac_address"] for p in ports]

            await h["h2"].detach_interface(GUEST, ports[1]["port_id"])
            assert await virtio_nics(h["h2"]) == {"dev-net0": "hp-net0"}
            if mechanism == "bridge":
                assert links(bridge) == {vif.tap_name(ports[0]["port_id"], "h2")}
            text = await h["h2"].monitor(GUEST).execute(
                "human-monitor-command", {"command-line": "info network"})
            assert "net1" not in str(text)
            await h["h2"].destroy(GUEST)
    run(go())
