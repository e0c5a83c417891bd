"""A guest's NICs on the QEMU driver: each port a virtio-net device with its MAC, backed
by what its binding names (a tap on the network's Linux bridge as root, QEMU's user
networking otherwise), looked at through QEMU's own monitor and the host's links.
(The guest's own view, its NICs' MACs on its console, is in tests/e2e_qemu.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from gureum.virt.driver import GuestSpec
from gureum.virt.qemu import QemuDriver, vif
from tests.qemu import guest as test_guest

pytestmark = pytest.mark.skipif(test_guest.missing() is not None,
                                reason=str(test_guest.missing()))

GUEST = "0b6c7c3e-2222-4a4a-8b8b-000000000001"


def links(master: str | None = None) -> set[str]:
    argv = ["ip", "-j", "link", "show", *(["master", master] if master else [])]
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


@pytest.mark.parametrize("mechanism", ["bridge", "user"])
def test_two_ports_become_two_virtio_nics_with_their_macs(
        tmp_path: Path, mechanism: str) -> None:
    if mechanism == "bridge" and not vif.BridgeVif.usable():
        pytest.skip("taps and bridges need root, the `ip` tool and /dev/net/tun")
    image = test_guest.build(tmp_path / "guest")
    network = str(uuid.uuid4())
    bridge = vif.bridge_name(network)
    ports: list[dict[str, Any]] = [
        {"port_id": str(uuid.uuid4()), "network_id": network, "mtu": 1450,
         "mac_address": f"fa:16:3e:00:{i:02x}:{i + 16:02x}", "vif_type": mechanism,
         "vif_details": {"bridge_name": bridge} if mechanism == "bridge" else {}}
        for i in (1, 2)]
    spec = GuestSpec(id=GUEST, name="instance-00000001", vcpus=1, memory_mb=128,
                     root_gb=1, hostname="vm1", network_info=ports, **image.spec_fields())

    async def go() -> None:
        driver = QemuDriver(tmp_path / "c01", image_cache_interval=0,
                            vif_mechanism=mechanism)
        await driver.init_host("c01")
        assert (await driver.host_resources()).vif == driver.vifs.report()
        assert driver.vifs.report()["vif_type"] == mechanism
        await driver.spawn(spec)
        try:
            shown = await driver.monitor(GUEST).execute(
                "human-monitor-command", {"command-line": "info network"})
            text = str(shown)
            for i, port in enumerate(ports):  # "dev-net0: …macaddr=…\n \\ net0: index=0,type=…"
                assert f"dev-net{i}: index=0,type=nic,model=virtio-net-pci,macaddr=" \
                       f"{port['mac_address']}" in text, text
                backend = (f"type=tap,ifname={vif.tap_name(port['port_id'], 'c01')},"
                           if mechanism == "bridge" else "type=user,")
                assert f"net{i}: index=0,{backend}" in text, text
            pci = await driver.monitor(GUEST).execute("query-pci")
            nets = [d for bus in pci for d in bus["devices"]
                    if d.get("class_info", {}).get("class") == 0x0200]
            assert [d["qdev_id"] for d in nets] == ["dev-net0", "dev-net1"]
            assert {d["id"]["device"] for d in nets} == {0x1000}  # virtio-net (legacy id)
            if mechanism == "bridge":
                taps = {vif.tap_name(p["port_id"], "c01") for p in ports}
                assert links(bridge) == taps
            else:
                assert bridge not in links()
        finally:
            await driver.destroy(GUEST)
        assert bridge not in links()
        assert not [n for n in links() if any(p["port_id"][:8] in n for p in ports)]
    asyncio.run(go())


@pytest.mark.skipif(not vif.BridgeVif.usable(),
                    reason="taps and bridges need root, the `ip` tool and /dev/net/tun")
def test_a_port_gone_from_the_definition_takes_its_tap_along(tmp_path: Path) -> None:
    """A guest redefined (power on, hard reboot) without a port it had: its tap goes."""
    image = test_guest.build(tmp_path / "guest")
    network = str(uuid.uuid4())
    bridge = vif.bridge_name(network)
    ports = [{"port_id": str(uuid.uuid4()), "network_id": network, "vif_type": "bridge",
              "mac_address": f"fa:16:3e:00:00:{i:02x}", "vif_details": {"bridge_name": bridge}}
             for i in (1, 2)]
    spec = GuestSpec(id=GUEST, name="instance-00000001", vcpus=1, memory_mb=128,
                     root_gb=1, hostname="vm1", network_info=ports, **image.spec_fields())

    async def go() -> None:
        driver = QemuDriver(tmp_path / "c01", image_cache_interval=0, vif_mechanism="bridge")
        await driver.init_host("c01")
        await driver.spawn(spec)
        try:
            assert len(links(bridge)) == 2
            await driver.power_off(GUEST, timeout=0, retry_interval=1)
            await driver.power_on(GuestSpec.from_dict({**spec.to_dict(),
                                                       "network_info": ports[:1]}))
            assert links(bridge) == {vif.tap_name(ports[0]["port_id"], "c01")}
        finally:
            await driver.destroy(GUEST)
        assert bridge not in links()
    asyncio.run(go())
