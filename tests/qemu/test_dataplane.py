"""The linuxbridge data plane against real kernel objects (root): a hand-built
HostNetState synced onto this machine, looked at from client namespaces standing in
for guests (a veth on the network's bridge, named as the QEMU driver names a tap):
busybox udhcpc gets its address and MTU from dnsmasq, a client behind the router
reaches the external bridge's host address (SNAT), the host reaches a client by
its floating IP (DNAT), security groups drop what no rule allows, a second sync
changes nothing, and removal and cleanup leave nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gureum.netagent.dataplane import kernel, linuxbridge
from gureum.netagent.dataplane.linuxbridge import LinuxBridgeDataPlane
from gureum.virt.qemu import vif
from tests.harness import make_settings

pytestmark = pytest.mark.skipif(linuxbridge.unusable() is not None,
                                reason=str(linuxbridge.unusable()))

HOST = "c01"
BUSYBOX = "/bin/busybox"
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
echo "ip=$ip mask=$mask router=$router mtu=$mtu staticroutes=$staticroutes" > {out}
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def octet() -> int:
    return 16 + int(uuid.uuid4().hex[:4], 16) % 200


class Lab:
    """Unique names and addresses for one test, and the client namespaces it made."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.a, self.b = octet(), octet()
        self.net = str(uuid.uuid4())
        self.public = str(uuid.uuid4())
        self.router = str(uuid.uuid4())
        self.subnet = str(uuid.uuid4())
        self.public_subnet = str(uuid.uuid4())
        self.dhcp_port = str(uuid.uuid4())
        self.gw_port, self.if_port = str(uuid.uuid4()), str(uuid.uuid4())
        self.ports = {n: str(uuid.uuid4()) for n in ("p1", "p2")}
        self.macs = {"p1": f"fa:16:3e:11:00:{self.a:02x}", "p2": f"fa:16:3e:22:00:{self.a:02x}"}
        self.ips = {"p1": f"10.{self.a}.{self.b}.5", "p2": f"10.{self.a}.{self.b}.6"}
        self.cidr = f"10.{self.a}.{self.b}.0/24"
        self.pub = f"172.31.{self.a}"
        self.clients: list[str] = []
        self.rules: dict[str, list[dict[str, Any]]] = {"p1": [], "p2": []}
        self.security = True
        self.stateful = {"p1": True, "p2": True}
        self.with_router = True
        self.fip = True

    def state(self) -> dict[str, Any]:
        subnet = {"id": self.subnet, "cidr": self.cidr, "ip_version": 4,
                  "gateway_ip": f"10.{self.a}.{self.b}.1", "enable_dhcp": True,
                  "dns_nameservers": ["10.0.0.53"],
                  "host_routes": [{"destination": "10.250.0.0/16",
                                   "nexthop": f"10.{self.a}.{self.b}.254"}],
                  "allocation_pools": []}
        ports = [{"id": self.ports[n], "mac_address": self.macs[n], "device_owner":
                  "compute:nova", "extra_dhcp_opts": [],
                  "fixed_ips": [{"subnet_id": self.subnet, "ip_address": self.ips[n]}]}
                 for n in ("p1", "p2")]
        network = {"id": self.net, "mtu": 1450, "network_type": "vxlan",
                   "segmentation_id": 77, "physical_network": None,
                   "bridge": vif.bridge_name(self.net), "subnets": [subnet], "dhcp": True,
                   "dhcp_ports": [{"id": self.dhcp_port, "mac_address": "fa:16:3e:dd:00:01",
                                   "fixed_ips": [{"subnet_id": self.subnet,
                                                  "ip_address": f"10.{self.a}.{self.b}.2"}]}],
                   "ports": ports}
        routers = []
        if self.with_router:
            routers.append({
                "id": self.router, "name": "r1", "enable_snat": True,
                "external": {"network_id": self.public, "bridge": vif.bridge_name(self.public),
                             "port_id": self.gw_port,
                             "mac_address": "fa:16:3e:ee:00:01",
                             "fixed_ips": [{"subnet_id": self.public_subnet,
                                            "ip_address": f"{self.pub}.10"}],
                             "gateway_ip": f"{self.pub}.1", "cidr": f"{self.pub}.0/24"},
                "interfaces": [{"port_id": self.if_port,
                                "network_id": self.net, "bridge": vif.bridge_name(self.net),
                                "mac_address": "fa:16:3e:ee:00:02", "cidr": self.cidr,
                                "fixed_ips": [{"subnet_id": self.subnet,
                                               "ip_address": f"10.{self.a}.{self.b}.1"}]}],
                "routes": [],
                "floating_ips": [{"floating_ip_address": f"{self.pub}.20",
                                  "fixed_ip_address": self.ips["p1"],
                                  "port_id": self.ports["p1"]}] if self.fip else [],
                "port_forwardings": []})
        bound = [{"id": self.ports[n], "network_id": self.net,
                  "tap": vif.tap_name(self.ports[n], HOST), "mac_address": self.macs[n],
                  "fixed_ips": [{"subnet_id": self.subnet, "ip_address": self.ips[n]}],
                  "port_security_enabled": self.security, "allowed_address_pairs": [],
                  "security_group_rules": self.rules[n], "stateful": self.stateful[n]}
                 for n in ("p1", "p2")]
        return {"host": HOST, "networks": [network], "routers": routers, "ports": bound}

    def client(self, name: str, address: bool = True) -> str:
        """A namespace standing in for the guest of port ``name``: its "tap" (the host
        side of a veth, named as the QEMU driver names the port's tap) on the bridge."""
        ns = f"gtest-{self.ports[name][:8]}"
        tap = vif.tap_name(self.ports[name], HOST)
        sh("ip", "netns", "add", ns)
        self.clients.append(ns)
        sh("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", tap, "master", vif.bridge_name(self.net), "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "address", self.macs[name], "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if address:
            sh("ip", "-n", ns, "addr", "add", f"{self.ips[name]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "mtu", "1450")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.{self.a}.{self.b}.1")
        return ns

    def close(self) -> None:
        for ns in self.clients:
            for pid in kernel.namespace_pids(ns):
                os.kill(pid, 9)
            sh("ip", "netns", "del", ns, check=False)
        for n in ("p1", "p2"):
            sh("ip", "link", "del", vif.tap_name(self.ports[n], HOST), check=False)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Lab, LinuxBridgeDataPlane]]:
    lab = Lab(tmp_path)
    plane = LinuxBridgeDataPlane(make_settings(tmp_path), HOST, tmp_path / "host")
    try:
        yield lab, plane
    finally:
        lab.close()
        asyncio.run(plane.cleanup())
        assert_clean(lab, plane)


def assert_clean(lab: Lab, plane: LinuxBridgeDataPlane) -> None:
    names = kernel.links()
    assert vif.bridge_name(lab.net) not in names
    assert vif.bridge_name(lab.public) not in names
    assert not [n for n in kernel.namespaces() if lab.net in n or lab.router in n]
    assert not [t for t in kernel.nft_tables() if t[1] == plane.sg_table]
    assert not dnsmasqs(lab)


def dnsmasqs(lab: Lab) -> list[int]:
    proc = sh("pgrep", "-f", f"dnsmasq.*{lab.tmp}", check=False)
    return [int(p) for p in proc.stdout.split()]


def ping(ns: str | None, address: str, count: int = 1) -> bool:
    argv = [BUSYBOX, "ping", "-c", str(count), "-W", "1", address]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    return sh(*argv, check=False).returncode == 0


def ping_soon(ns: str | None, address: str) -> bool:
    return any(ping(ns, address) for _ in range(4))


def snapshot(lab: Lab, plane: LinuxBridgeDataPlane) -> Any:
    mine = {vif.bridge_name(lab.net), vif.bridge_name(lab.public)}
    links = {n: (link.get("master"), link.get("mtu")) for n, link in kernel.links().items()
             if n in mine or link.get("master") in mine}
    spaces = sorted(n for n in kernel.namespaces() if lab.net in n or lab.router in n)
    inside = {ns: (sorted(kernel.links(ns)), sorted(kernel.addresses(
        next((n for n in kernel.links(ns) if n != "lo"), "lo"), ns)), kernel.routes(ns))
        for ns in spaces}
    rules = [sh("nft", "list", "table", family, plane.sg_table, check=False).stdout
             for family in ("inet", "bridge")]
    return links, spaces, inside, rules, dnsmasqs(lab)


def test_dhcp_gives_address_mtu_and_routes(lab: tuple[Lab, LinuxBridgeDataPlane]) -> None:
    env, plane = lab
    env.with_router = False
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    bridge = kernel.link(vif.bridge_name(env.net))
    assert bridge is not None and bridge["mtu"] == 1450
    assert f"qdhcp-{env.net}" in kernel.namespaces()
    assert len(dnsmasqs(env)) == 1
    ns = env.client("p1", address=False)
    out = env.tmp / "lease"
    script = env.tmp / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT.format(out=out))
    script.chmod(0o755)
    proc = sh("ip", "netns", "exec", ns, BUSYBOX, "udhcpc", "-i", "eth0", "-n", "-q",
              "-t", "5", "-T", "1", "-s", str(script), "-O", "mtu", "-O", "staticroutes",
              check=False)
    assert out.exists(), proc.stderr
    lease = dict(kv.split("=", 1) for kv in out.read_text().split(" ", 4))
    assert lease["ip"] == env.ips["p1"]
    assert lease["mask"] == "24"
    assert lease["router"] == f"10.{env.a}.{env.b}.1"
    assert lease["mtu"] == "1450"
    assert lease["staticroutes"].split() == [
        "10.250.0.0/16", f"10.{env.a}.{env.b}.254", "0.0.0.0/0", f"10.{env.a}.{env.b}.1"]
    # A host entry changes: dnsmasq is told (SIGHUP), not restarted.
    before = dnsmasqs(env)
    env.ips["p1"] = f"10.{env.a}.{env.b}.55"
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert dnsmasqs(env) == before
    hosts = (plane.dir / "dhcp" / env.net / "hosts").read_text()
    assert f"{env.macs['p1']},host-10-{env.a}-{env.b}-55,10.{env.a}.{env.b}.55" in hosts


def test_router_snat_floating_ip_and_idempotence(lab: tuple[Lab, LinuxBridgeDataPlane]
                                                 ) -> None:
    env, plane = lab
    env.security = False
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    public = vif.bridge_name(env.public)
    assert f"{env.pub}.1/24" in kernel.addresses(public)
    router_ns = f"qrouter-{env.router}"
    assert kernel.routes(router_ns).get("default") == f"{env.pub}.1"
    ns = env.client("p1")
    # SNAT: the host has no route back to the tenant network, so only a reply to
    # the router's gateway address comes back.
    assert ping_soon(ns, f"{env.pub}.1")
    # The floating IP reaches the client from the host (DNAT).
    assert ping_soon(None, f"{env.pub}.20")
    # A second sync, and one from a restarted agent, change nothing.
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    before = snapshot(env, plane)
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert snapshot(env, plane) == before
    again = LinuxBridgeDataPlane(plane.settings, HOST, env.tmp / "host")
    asyncio.run(again.sync(env.state()))  # type: ignore[arg-type]
    after = snapshot(env, plane)
    assert after[:3] == before[:3] and after[4] == before[4]
    # The floating IP goes: the host no longer reaches the client by it.
    env.fip = False
    asyncio.run(again.sync(env.state()))  # type: ignore[arg-type]
    assert f"{env.pub}.20/32" not in kernel.addresses(f"qg-{env.gw_port[:11]}", router_ns)
    assert not ping(None, f"{env.pub}.20")
    assert ping_soon(ns, f"{env.pub}.1")
    # The router goes: its namespace with it; the network's DHCP stays.
    env.with_router = False
    asyncio.run(again.sync(env.state()))  # type: ignore[arg-type]
    assert router_ns not in kernel.namespaces()
    assert vif.bridge_name(env.public) not in kernel.links()
    assert f"qdhcp-{env.net}" in kernel.namespaces()


def test_security_groups(lab: tuple[Lab, LinuxBridgeDataPlane]) -> None:
    env, plane = lab
    env.with_router = False
    egress = {"direction": "egress", "ethertype": "IPv4", "protocol": None,
              "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None}
    icmp_in = {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
               "port_range_min": None, "port_range_max": None,
               "remote_ip_prefix": env.cidr}
    env.rules = {"p1": [egress, icmp_in], "p2": [egress]}
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert ("inet", plane.sg_table) in kernel.nft_tables()
    ns1, ns2 = env.client("p1"), env.client("p2")
    assert ping_soon(ns2, env.ips["p1"])  # p1 lets ICMP in
    assert not ping(ns1, env.ips["p2"], count=2)  # p2 does not
    env.rules["p2"] = [egress, icmp_in]
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert ping_soon(ns1, env.ips["p2"])
    # Spoofing: p1 sending from an address that is not its own is dropped.
    sh("ip", "-n", ns1, "addr", "add", f"10.{env.a}.{env.b}.99/24", "dev", "eth0")
    assert not ping(ns2, f"10.{env.a}.{env.b}.99", count=2)
    # Port security off: nothing filtered (p2's ingress rule gone, still reached).
    env.rules["p2"] = [egress]
    env.security = False
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert ("inet", plane.sg_table) not in kernel.nft_tables()
    assert ping_soon(ns1, env.ips["p2"])


def test_removal_and_cleanup_leave_nothing(lab: tuple[Lab, LinuxBridgeDataPlane]) -> None:
    env, plane = lab
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert dnsmasqs(env)
    assert {f"qdhcp-{env.net}", f"qrouter-{env.router}"} <= kernel.namespaces()
    asyncio.run(plane.sync({"host": HOST, "networks": [], "routers": [], "ports": []}))
    assert_clean(env, plane)
    record = json.loads((plane.dir / "record.json").read_text())
    assert record == {"bridges": [], "namespaces": []}
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    asyncio.run(plane.cleanup())
    assert_clean(env, plane)


def test_another_host_takes_the_router_and_dhcp_over(lab: tuple[Lab, LinuxBridgeDataPlane]
                                                     ) -> None:
    """Two hosts of one machine (S6 on one machine): c02 takes the router and the
    network's DHCP over from c01; c01 letting them go removes nothing c02 now carries,
    and the client keeps reaching the outside."""
    env, plane = lab
    env.security = False
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    ns = env.client("p1")
    assert ping_soon(ns, f"{env.pub}.1")
    other = LinuxBridgeDataPlane(plane.settings, "c02", env.tmp / "c02")
    try:
        state = {**env.state(), "host": "c02", "ports": []}
        asyncio.run(other.sync(state))  # type: ignore[arg-type]
        pids = dnsmasqs(env)
        assert len(pids) == 1 and str(env.tmp / "c02") in \
            Path(f"/proc/{pids[0]}/cmdline").read_text()
        asyncio.run(plane.sync({"host": HOST, "networks": [], "routers": [], "ports": []}))
        assert {f"qdhcp-{env.net}", f"qrouter-{env.router}"} <= kernel.namespaces()
        assert dnsmasqs(env) == pids
        assert ping_soon(ns, f"{env.pub}.1")
        asyncio.run(other.sync(state))  # type: ignore[arg-type]
        assert dnsmasqs(env) == pids  # nothing to redo
    finally:
        env.close()
        asyncio.run(other.cleanup())
    assert_clean(env, other)


# A receiver and a sender run inside the clients' namespaces (python sockets): "raw"
# is an IP packet of any protocol whose payload starts with source and destination
# ports (as SCTP's, DCCP's, UDP's headers do), "udplite" a UDP-Lite datagram, "tcp"
# a connection (it is accepted only once the handshake's reply got back).
RECEIVE = """
import socket, sys
kind, proto, port, wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if kind == "raw":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
elif kind == "udplite":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, proto)
    s.bind(("0.0.0.0", port))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
s.settimeout(wait)
print("ready", flush=True)
try:
    while True:
        if kind == "tcp":
            s.accept()
            sys.exit(0)
        data = s.recv(4096)
        if kind != "raw":
            sys.exit(0)
        start = (data[0] & 15) * 4
        if data[9] == proto and int.from_bytes(data[start + 2:start + 4], "big") == port:
            sys.exit(0)
except OSError:
    sys.exit(1)
"""
SEND = """
import socket, sys, time
kind, proto, address, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if kind == "tcp":
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        pass
    sys.exit(0)
if kind == "raw":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    payload, target = (40000).to_bytes(2, "big") + port.to_bytes(2, "big") + bytes(12), 0
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, proto)
    payload, target = b"hello", port
for _ in range(4):
    s.sendto(payload, (address, target))
    time.sleep(0.2)
"""


def passes(src: str, dst: str, address: str, kind: str, proto: int = 6, port: int = 0,
           wait: float = 2.0) -> bool:
    """Whether ``kind`` traffic from namespace ``src`` reaches ``address`` in ``dst``."""
    with subprocess.Popen(["ip", "netns", "exec", dst, "python3", "-c", RECEIVE, kind,
                           str(proto), str(port), str(wait)],
                          stdout=subprocess.PIPE, text=True) as receiver:
        try:
            assert receiver.stdout is not None and receiver.stdout.readline() == "ready\n"
            sh("ip", "netns", "exec", src, "python3", "-c", SEND, kind, str(proto), address,
               str(port))
            return receiver.wait(timeout=wait + 10) == 0
        finally:
            if receiver.poll() is None:
                receiver.kill()


def sg_rule(direction: str, protocol: str | None = None, low: int | None = None,
            high: int | None = None) -> dict[str, Any]:
    return {"direction": direction, "ethertype": "IPv4", "protocol": protocol,
            "port_range_min": low, "port_range_max": high, "remote_ip_prefix": None}


def test_stateless_groups_need_a_rule_for_the_reply(lab: tuple[Lab, LinuxBridgeDataPlane]
                                                    ) -> None:
    """Neutron's stateless security groups: what a rule lets in gets no reply out
    unless a rule lets that out too; stateful, the reply needs no rule."""
    env, plane = lab
    env.with_router = False
    env.rules = {"p1": [sg_rule("ingress", "icmp"), sg_rule("ingress", "tcp", 22, 22)],
                 "p2": [sg_rule("egress")]}
    env.stateful = {"p1": False, "p2": True}
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    ns1, ns2 = env.client("p1"), env.client("p2")
    assert ping_soon(ns1, "127.0.0.1")  # the namespace itself is up
    assert not ping(ns2, env.ips["p1"], count=2)  # the echo reply is dropped
    assert not passes(ns2, ns1, env.ips["p1"], "tcp", port=22)  # so is the SYN-ACK
    # The same rules, stateful: replies pass on their own.
    env.stateful["p1"] = True
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert ping_soon(ns2, env.ips["p1"])
    assert passes(ns2, ns1, env.ips["p1"], "tcp", port=22)
    # Stateless again, with the way back allowed: both directions work.
    env.stateful["p1"] = False
    env.rules["p1"] += [sg_rule("egress", "icmp"), sg_rule("egress", "tcp")]
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert ping_soon(ns2, env.ips["p1"])
    assert passes(ns2, ns1, env.ips["p1"], "tcp", port=22)
    assert not passes(ns2, ns1, env.ips["p1"], "tcp", port=23, wait=1.5)  # not allowed in


def test_rules_for_protocols_nft_has_no_name_for(lab: tuple[Lab, LinuxBridgeDataPlane]
                                                 ) -> None:
    """VRRP (by name and as "112"), SCTP and UDP-Lite port ranges are let through by
    their rules, by IP protocol number; without the rule they are dropped. The
    hand-made SCTP headers and UDP-Lite go between stateless ports: connection
    tracking here calls them invalid (which a stateful port drops, as Neutron's)."""
    env, plane = lab
    env.with_router = False
    env.rules = {"p1": [sg_rule("ingress", "vrrp")], "p2": [sg_rule("egress")]}
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    ns1, ns2 = env.client("p1"), env.client("p2")
    dst = env.ips["p1"]
    assert passes(ns2, ns1, dst, "raw", proto=112)
    assert not passes(ns2, ns1, dst, "raw", proto=47, wait=1.5)  # GRE: no rule
    env.rules["p1"] = [sg_rule("ingress", "112"), sg_rule("ingress", "132", 7000, 7010),
                       sg_rule("ingress", "udplite", 5000, 5001)]
    env.stateful = {"p1": False, "p2": False}
    asyncio.run(plane.sync(env.state()))  # type: ignore[arg-type]
    assert passes(ns2, ns1, dst, "raw", proto=112)
    assert passes(ns2, ns1, dst, "raw", proto=132, port=7005)
    assert not passes(ns2, ns1, dst, "raw", proto=132, port=7011, wait=1.5)
    assert passes(ns2, ns1, dst, "udplite", proto=136, port=5001)
    assert not passes(ns2, ns1, dst, "udplite", proto=136, port=5002, wait=1.5)
