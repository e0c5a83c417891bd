"""Real guest networking on `gureum up --driver qemu --hosts 2` (root: the linuxbridge
data plane of the network agents): two guests on one VXLAN network (MTU 1450) get
their addresses by DHCP and the network's MTU, as their consoles print, ping each
other (the default security group lets its members in), and reach the router's
external side (the public bridge's host address, 172.24.4.1) through SNAT; the host
reaches one by its floating IP (DNAT) while it has it; deleting
everything leaves no namespace, bridge or dnsmasq of the cloud's."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gureum.netagent.dataplane import linuxbridge
from tests.e2e_qemu.guests import QemuCloud, links, qemu_cloud
from tests.scenarios.ops import DEMO, CliServer

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(linuxbridge.unusable() is not None,
                                 reason=str(linuxbridge.unusable()))]

PUBLIC_HOST = "172.24.4.1"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[QemuCloud]:
    with qemu_cloud(tmp_path_factory, cli, "qemu-net", hosts=2) as o:
        yield o


def host_pings(address: str) -> bool:
    return subprocess.run(["busybox", "ping", "-c", "1", "-W", "1", address],
                          capture_output=True, check=False).returncode == 0


def pinged(text: str, address: str) -> bool:
    return re.search(rf"^GUREUM-PING {re.escape(address)} ok\s*$", text, re.M) is not None


def test_two_guests_get_dhcp_and_mtu_ping_each_other_and_the_outside(
        op: QemuCloud, tmp_path: Path) -> None:
    net = op.cli_json("network", "create", "net2", cloud=DEMO)
    assert net["mtu"] == 1450 and net["provider:network_type"] in (None, "vxlan"), net
    op.cli("subnet", "create", "--network", "net2", "--subnet-range", "192.168.50.0/24",
           "sub2", cloud=DEMO)
    router = op.cli_json("router", "create", "r1", cloud=DEMO)
    op.cli("router", "add", "subnet", "r1", "sub2", cloud=DEMO)
    op.cli("router", "set", "--external-gateway", "public", "r1", cloud=DEMO)
    addresses = {"vm1": "192.168.50.5", "vm2": "192.168.50.6"}
    targets = {"vm1": [addresses["vm2"], PUBLIC_HOST], "vm2": [addresses["vm1"]]}
    servers, ports = {}, {}
    for name, address in addresses.items():
        port = ports[name] = op.cli_json("port", "create", "--network", "net2", "--fixed-ip",
                                         f"ip-address={address}", f"{name}-port", cloud=DEMO)
        data = tmp_path / f"{name}.txt"
        data.write_text("".join(f"gureum.ping={t}\n" for t in targets[name]))
        servers[name] = op.cli_json(
            "server", "create", "--image", "cirros", "--flavor", "m1.nano",
            "--nic", f"port-id={port['id']}", "--config-drive", "true",
            "--user-data", str(data), "--wait", name, cloud=DEMO)
        assert servers[name]["status"] == "ACTIVE", servers[name]
    for name, address in addresses.items():
        sid = servers[name]["id"]
        text = op.wait_console(
            sid, lambda t, a=address, n=name: t if (f"GUREUM-IP eth0 {a}/24" in t and all(
                pinged(t, x) for x in targets[n])) else None,
            f"{name}'s DHCP address and pings")
        assert "GUREUM-MTU eth0 1450" in text, text[-2000:]
    # Bound to a host whose network agent enforces the security groups (linuxbridge
    # with bridge netfilter): the binding says so, as Neutron's linuxbridge driver.
    bound = op.cli_json("port", "show", ports["vm1"]["id"])
    assert bound["binding_vif_type"] == "bridge", bound
    assert bound["binding_vif_details"]["port_filter"] is True, bound
    # The network's bridge carries both guests' taps (whichever host each is on).
    bridge = "brq" + net["id"][:11]
    assert len([n for n in links(bridge) if n.startswith("tap")]) >= 2, links(bridge)

    # A floating IP: the host (outside) reaches vm1 by it, once the default security
    # group lets ICMP in from anywhere.
    fip = op.cli_json("floating", "ip", "create", "public", cloud=DEMO)["floating_ip_address"]
    op.cli("server", "add", "floating", "ip", "vm1", fip, cloud=DEMO)
    op.cli("security", "group", "rule", "create", "--protocol", "icmp", "--ingress",
           "default", cloud=DEMO)
    deadline = time.monotonic() + 60
    while not host_pings(fip) and time.monotonic() < deadline:
        time.sleep(1)
    assert host_pings(fip), f"the host does not reach vm1 at its floating IP {fip}"
    op.cli("server", "remove", "floating", "ip", "vm1", fip, cloud=DEMO)
    deadline = time.monotonic() + 30
    while host_pings(fip) and time.monotonic() < deadline:
        time.sleep(1)
    assert not host_pings(fip), f"{fip} still reaches vm1 once removed"
    op.cli("floating", "ip", "delete", fip, cloud=DEMO)

    for name in servers:
        op.cli("server", "delete", "--wait", name, cloud=DEMO)
    op.cli("router", "unset", "--external-gateway", "r1", cloud=DEMO)
    op.cli("router", "remove", "subnet", "r1", "sub2", cloud=DEMO)
    op.cli("router", "delete", "r1", cloud=DEMO)
    for name in servers:
        op.cli("port", "delete", f"{name}-port", cloud=DEMO)
    op.cli("network", "delete", "net2", cloud=DEMO)

    def left() -> list[str]:
        spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True
                                ).stdout
        dnsmasq = subprocess.run(["pgrep", "-f", f"dnsmasq.*{net['id']}"],
                                 capture_output=True, text=True).stdout
        return ([f"namespace of {x}" for x in (net["id"], router["id"]) if x in spaces]
                + ([f"dnsmasq {dnsmasq.split()}"] if dnsmasq.strip() else [])
                + ([bridge] if bridge in links() else []))
    deadline = time.monotonic() + 90
    while left() and time.monotonic() < deadline:
        time.sleep(1)
    assert not left(), left()
