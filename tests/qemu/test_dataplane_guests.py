"""Real test guests on the linuxbridge data plane (root, QEMU under TCG): two guests
plugged by the QEMU driver onto a network's bridge get their addresses and the
network's MTU (1450) from its dnsmasq, ping each other through their security groups
(ICMP allowed in), and one reaches the router's external side (the external bridge's
host address) through SNAT; with radvd, the network has a SLAAC IPv6 subnet too, and a
guest makes its port's address from the router's advertisements (with the MTU) and
pings the router's IPv6 address — all as their consoles say."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import pytest

from gureum.netagent.dataplane import linuxbridge, radvd
from gureum.netagent.dataplane.linuxbridge import LinuxBridgeDataPlane
from gureum.virt.driver import GuestSpec
from gureum.virt.qemu import QemuDriver, vif
from tests.harness import make_settings
from tests.qemu import guest as test_guest
from tests.qemu.test_dataplane import HOST, Lab, assert_clean
from tests.qemu.test_dataplane_ipv6 import ALLOW_V6, Lab6

pytestmark = [
    pytest.mark.skipif(test_guest.missing() is not None, reason=str(test_guest.missing())),
    pytest.mark.skipif(linuxbridge.unusable() is not None,
                       reason=str(linuxbridge.unusable())),
    pytest.mark.skipif(not vif.BridgeVif.usable(), reason="taps need root and /dev/net/tun"),
]

TIMEOUT = 150.0


def test_two_guests_get_dhcp_and_ping_each_other_and_the_outside(tmp_path: Path) -> None:
    lab = Lab6(tmp_path, "slaac") if radvd.binary() else Lab(tmp_path)
    egress = {"direction": "egress", "ethertype": "IPv4", "protocol": None,
              "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None}
    icmp_in = {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
               "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None}
    lab.rules = {"p1": [egress, icmp_in, ALLOW_V6], "p2": [egress, icmp_in]}
    lab.fip = False
    image = test_guest.build(tmp_path / "guest")
    plane = LinuxBridgeDataPlane(make_settings(tmp_path), HOST, tmp_path / "host")
    ids = {"p1": str(uuid.uuid4()), "p2": str(uuid.uuid4())}
    pings = {"p1": [lab.ips["p2"], f"{lab.pub}.1"], "p2": [lab.ips["p1"]]}
    if isinstance(lab, Lab6):
        pings["p1"].append(str(lab.prefix.network_address + 1))  # the router's leg

    def spec(name: str) -> GuestSpec:
        fields = image.spec_fields()
        fields["image_properties"]["os_command_line"] += " gureum.ping=" + ",".join(
            pings[name])
        port = {"port_id": lab.ports[name], "network_id": lab.net, "mtu": 1450,
                "mac_address": lab.macs[name], "vif_type": "bridge",
                "vif_details": {"bridge_name": vif.bridge_name(lab.net)}}
        return GuestSpec(id=ids[name], name=f"instance-{name}", vcpus=1, memory_mb=128,
                         root_gb=1, hostname=name, network_info=[port], **fields)

    async def go() -> dict[str, str]:
        driver = QemuDriver(tmp_path / HOST, image_cache_interval=0, vif_mechanism="bridge")
        await driver.init_host(HOST)
        await plane.sync(lab.state())  # type: ignore[arg-type]
        try:
            for name in ids:
                await driver.spawn(spec(name))
            await plane.sync(lab.state())  # type: ignore[arg-type]
            wanted = {"p1": [f"GUREUM-IP eth0 {lab.ips['p1']}/24", "GUREUM-MTU eth0 1450",
                             f"GUREUM-PING {lab.ips['p2']} ok", f"GUREUM-PING {lab.pub}.1 ok"],
                      "p2": [f"GUREUM-IP eth0 {lab.ips['p2']}/24", "GUREUM-MTU eth0 1450",
                             f"GUREUM-PING {lab.ips['p1']} ok"]}
            if isinstance(lab, Lab6):
                wanted["p1"] += [f"GUREUM-IP6 eth0 {lab.ip6}/64 mtu 1450",
                                 f"GUREUM-PING {pings['p1'][-1]} ok"]
            consoles: dict[str, str] = {}
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                for name in ids:
                    consoles[name] = await driver.console_output(ids[name])
                if all(line in consoles[n] for n in ids for line in wanted[n]):
                    break
                await asyncio.sleep(1)
            return consoles
        finally:
            for name in ids:
                await driver.destroy(ids[name])
            await plane.cleanup()

    try:
        consoles = asyncio.run(go())
    finally:
        test_guest.kill_guests_under(tmp_path)
    for name, address in lab.ips.items():
        text = consoles[name]
        assert f"GUREUM-IP eth0 {address}/24" in text, text[-3000:]
        assert "GUREUM-MTU eth0 1450" in text, text[-3000:]
        for target in pings[name]:
            assert re.search(rf"^GUREUM-PING {re.escape(target)} ok\s*$", text, re.M), \
                text[-3000:]
    if isinstance(lab, Lab6):
        assert f"GUREUM-IP6 eth0 {lab.ip6}/64 mtu 1450" in consoles["p1"]
    assert_clean(lab, plane)
