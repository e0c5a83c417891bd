"""IPv6 on the linuxbridge data plane against real kernel objects (root), as Neutron
serves it: the router's radvd advertises a subnet attached to it (SLAAC: a client
namespace standing in for a guest configures the EUI-64 address the port was given,
takes the network's MTU and the default route from the advertisement and pings the
router through its security groups), and dnsmasq gives a ``dhcpv6-stateful``
port its address (dhclient -6, when installed)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gureum.netagent.dataplane import linuxbridge, radvd
from gureum.netagent.dataplane.linuxbridge import LinuxBridgeDataPlane
from gureum.network.ipam import eui64
from tests.harness import make_settings
from tests.qemu.test_dataplane import BUSYBOX, Lab, assert_clean, sh

pytestmark = pytest.mark.skipif(
    linuxbridge.unusable() is not None or radvd.binary() is None,
    reason=str(linuxbridge.unusable() or "radvd is missing (apt-get install radvd)"))

ALLOW_V6 = {"direction": "egress", "ethertype": "IPv6", "protocol": None,
            "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None}


class Lab6(Lab):
    """The IPv4 lab (a network with DHCP, a router) plus an IPv6 subnet in one mode."""

    def __init__(self, tmp: Path, mode: str) -> None:
        super().__init__(tmp)
        self.mode = mode
        self.subnet6 = str(uuid.uuid4())
        self.prefix = ipaddress.ip_network(f"fd{uuid.uuid4().hex[:2]}:{self.a:x}:{self.b:x}::/64")
        self.ip6 = (eui64(self.prefix, self.macs["p1"]) if mode != "dhcpv6-stateful"
                    else str(self.prefix.network_address + 0x55))
        self.rules["p1"] = [ALLOW_V6]
        self.fip = False

    def state(self) -> dict[str, Any]:
        state = super().state()
        gateway = str(self.prefix.network_address + 1)
        subnet = {"id": self.subnet6, "cidr": str(self.prefix), "ip_version": 6,
                  "gateway_ip": gateway, "enable_dhcp": True,
                  "dns_nameservers": ["fd00::53"], "host_routes": [], "allocation_pools": [],
                  "ipv6_ra_mode": self.mode, "ipv6_address_mode": self.mode}
        (network,) = state["networks"]
        network["subnets"].append(subnet)
        network["dhcp_ports"][0]["fixed_ips"].append(
            {"subnet_id": self.subnet6, "ip_address": str(self.prefix.network_address + 2)})
        mine = {"subnet_id": self.subnet6, "ip_address": self.ip6}
        next(p for p in network["ports"] if p["id"] == self.ports["p1"])["fixed_ips"].append(
            mine)
        next(p for p in state["ports"] if p["id"] == self.ports["p1"])["fixed_ips"].append(
            mine)
        (leg,) = state["routers"][0]["interfaces"]
        leg["fixed_ips"].append({"subnet_id": self.subnet6, "ip_address": gateway})
        leg["ipv6_subnets"] = [{k: subnet[k] for k in ("id", "cidr", "ipv6_ra_mode",
                                                       "ipv6_address_mode",
                                                       "dns_nameservers")}]
        return state


@pytest.fixture
def lab6(tmp_path: Path, request: pytest.FixtureRequest
         ) -> Iterator[tuple[Lab6, LinuxBridgeDataPlane]]:
    lab = Lab6(tmp_path, request.param)
    plane = LinuxBridgeDataPlane(make_settings(tmp_path), "c01", tmp_path / "host")
    try:
        yield lab, plane
    finally:
        lab.close()
        asyncio.run(plane.cleanup())
        assert_clean(lab, plane)
        assert not radvds(lab)


def radvds(lab: Lab) -> list[int]:
    proc = sh("pgrep", "-f", f"radvd.*{lab.tmp}", check=False)
    return [int(p) for p in proc.stdout.split()]


def global_v6(ns: str) -> list[str]:
    """The client's global IPv6 addresses that passed duplicate address detection."""
    out = sh("ip", "-n", ns, "-6", "-j", "addr", "show", "dev", "eth0").stdout
    return [a["local"] for e in json.loads(out or "[]") for a in e.get("addr_info", [])
            if a.get("scope") == "global" and not a.get("tentative")]


def wait_for(what: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


@pytest.mark.parametrize("lab6", ["slaac"], indirect=True)
def test_slaac_from_the_routers_advertisements(lab6: tuple[Lab6, LinuxBridgeDataPlane]
                                               ) -> None:
    env, plane = lab6
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    pid = radvd.running(plane.dir / "ra" / env.router)
    assert pid is not None and pid in radvds(env)  # (and radvd's privilege separator)
    conf = (plane.dir / "ra" / env.router / "radvd.conf").read_text()
    assert f"prefix {env.prefix}" in conf and "AdvLinkMTU 1450;" in conf
    ns = env.client("p1", address=False)
    assert wait_for(lambda: global_v6(ns)) == [env.ip6]  # the port's EUI-64 address
    mtu = sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv6/conf/eth0/mtu").stdout
    assert int(mtu) == 1450  # the link's MTU is 1500: the advertisement's applies
    routes = json.loads(sh("ip", "-n", ns, "-6", "-j", "route", "show", "default").stdout)
    assert routes and str(routes[0]["gateway"]).startswith("fe80:")
    gateway = str(env.prefix.network_address + 1)
    assert any(sh("ip", "netns", "exec", ns, BUSYBOX, "ping6", "-c", "1", "-W", "1",
                  gateway, check=False).returncode == 0 for _ in range(5))
    # The DHCP port keeps just its own address (no SLAAC one from the advertisement).
    dhcp_ns = f"qdhcp-{env.net}"
    assert not [a for a in sh("ip", "-n", dhcp_ns, "-6", "addr").stdout.split()
                if a.startswith(str(env.prefix.network_address).rstrip(":"))
                and not a.startswith(str(env.prefix.network_address + 2))]
    # Again: nothing changes, radvd is not restarted; the subnet gone: radvd stops.
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert radvd.running(plane.dir / "ra" / env.router) == pid
    state = env.state()
    state["routers"][0]["interfaces"][0]["ipv6_subnets"] = []
    asyncio.run(plane.sync(state))  # type: ignore[arg-type]
    wait_for(lambda: not radvds(env), 5)


@pytest.mark.skipif(shutil.which("dhclient") is None,
                    reason="dhclient is missing (apt-get install isc-dhcp-client)")
@pytest.mark.parametrize("lab6", ["dhcpv6-stateful"], indirect=True)
def test_dhcpv6_stateful_gives_the_ports_address(lab6: tuple[Lab6, LinuxBridgeDataPlane]
                                                 ) -> None:
    env, plane = lab6
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    conf = (plane.dir / "ra" / env.router / "radvd.conf").read_text()
    assert "AdvManagedFlag on;" in conf and "AdvAutonomous off;" in conf
    ns = env.client("p1", address=False)
    wait_for(lambda: "tentative" not in sh("ip", "-n", ns, "-6", "addr", "show",
                                           "dev", "eth0").stdout)
    leases = env.tmp / "dhclient6.leases"
    done = sh("ip", "netns", "exec", ns, "timeout", "30", "dhclient", "-6", "-1", "-v",
              "-D", "LL", "-lf", str(leases), "-pf", str(env.tmp / "dhclient6.pid"),
              "-sf", "/bin/true", "eth0", check=False)
    text = leases.read_text() if leases.exists() else ""
    for pid in sh("cat", str(env.tmp / "dhclient6.pid"), check=False).stdout.split():
        sh("kill", pid, check=False)
    assert f"iaaddr {env.ip6}" in text, done.stderr[-2000:]
    assert "fd00::53" in text  # the subnet's DNS server, option 23


@pytest.mark.skipif(shutil.which("dhclient") is None,
                    reason="dhclient is missing (apt-get install isc-dhcp-client)")
@pytest.mark.parametrize("lab6", ["dhcpv6-stateless"], indirect=True)
def test_dhcpv6_stateless_slaac_address_and_dns_by_dhcpv6(
        lab6: tuple[Lab6, LinuxBridgeDataPlane]) -> None:
    env, plane = lab6
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    conf = (plane.dir / "ra" / env.router / "radvd.conf").read_text()
    assert "AdvOtherConfigFlag on;" in conf and "AdvAutonomous on;" in conf
    hosts = (plane.dir / "dhcp" / env.net / "hosts").read_text()
    assert env.ip6 not in hosts  # the port makes its own address
    ns = env.client("p1", address=False)
    assert wait_for(lambda: global_v6(ns)) == [env.ip6]
    # Information only (-S): what the reply said is in the script's environment.
    said, script = env.tmp / "dhclient6.env", env.tmp / "dhclient6.sh"
    script.write_text(f"#!/bin/sh\nenv >> {said}\n")
    script.chmod(0o755)
    done = sh("ip", "netns", "exec", ns, "timeout", "30", "dhclient", "-6", "-S", "-1",
              "-v", "-lf", str(env.tmp / "dhclient6.leases"),
              "-pf", str(env.tmp / "dhclient6.pid"), "-sf", str(script), "eth0", check=False)
    for pid in sh("cat", str(env.tmp / "dhclient6.pid"), check=False).stdout.split():
        sh("kill", pid, check=False)
    text = said.read_text() if said.exists() else ""
    assert "new_dhcp6_name_servers=fd00::53" in text, done.stderr[-2000:]
    assert "new_ip6_address" not in text
