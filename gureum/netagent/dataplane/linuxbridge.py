"""The ``linuxbridge`` data plane: a host's networks as Linux kernel objects (as root).

Each ``sync(state)`` converges the host on its ``HostNetState``, idempotently (what
is missing is made, what is no longer wanted removed; running it again changes
nothing; after a kill -9 and a restart it picks up what it left):

- a Linux bridge per network, ``brq…`` (gureum.network.bindings.bridge_name), up,
  its MTU the network's; the QEMU VIF driver plugs the guests' taps onto the same
  bridge (making it when missing, removing it with its last port), and the taps of
  this host's bound ports get the network's MTU too. No VXLAN: the hosts of one
  machine share its bridges.
- DHCP for the networks this host serves (``dhcp``): a namespace ``qdhcp-<network>``
  holding the network:dhcp port (a veth ``ns-…`` with its MAC and addresses, whose
  peer ``tap…`` is on the bridge) and dnsmasq (dnsmasq.py: DHCPv4, and DHCPv6 for
  IPv6 subnets in a ``dhcpv6-stateful`` or ``dhcpv6-stateless`` address mode).
- routers: a namespace ``qrouter-<router>`` with IP forwarding (IPv4 and IPv6), a
  leg ``qr-…`` per interface on its network's bridge (with its IPv4 and IPv6
  addresses), radvd advertising the legs' IPv6 subnets that have an
  ``ipv6_ra_mode`` (radvd.py: SLAAC, DHCPv6 flags, the MTU), a gateway leg ``qg-…`` on the external
  network's bridge holding the gateway address and the floating IPs, the default
  route via the external subnet's gateway, the static routes, and its NAT
  (firewall.router_nat). The external network's bridge gets the external subnet's
  gateway address on the host side (devstack's br-ex), so the host is "outside".
- security groups of the ports bound here (firewall.security_groups): one
  ``bridge`` and one ``inet`` table per host.

Several hosts of one machine share bridges and may take a router or a network's
DHCP over from each other: a bridge goes when no host wants it and no port is on
it, a namespace when the host that last synced it lets it go (kernel.Owners).
What this host made is recorded in ``<state dir>/dataplane/record.json`` (written
before it is made), which ``cleanup()`` removes in full.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from gureum.config import Settings
from gureum.netagent.dataplane import dnsmasq, firewall, kernel, radvd
from gureum.netagent.dataplane.base import DataPlane, DataPlaneError, register
from gureum.netagent.state import HostNetState
from gureum.virt.qemu import vif

log = logging.getLogger("gureum.netagent.dataplane.linuxbridge")

DHCP_NS = "qdhcp-"
IPV6 = Path("/proc/sys/net/ipv6")
ROUTER_NS = "qrouter-"


def _short(port_id: str) -> str:
    return port_id[:11]


def unusable(settings: Settings | None = None) -> str | None:
    """Why this data plane cannot run here (None: it can): it needs root, ``ip``,
    ``nft`` and dnsmasq, and (with settings) guests on the QEMU driver plugged as taps
    on bridges."""
    if os.geteuid() != 0:
        return "the linuxbridge data plane needs root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is missing (apt-get install {package})"
    if dnsmasq.binary() is None:
        return "dnsmasq is missing (apt-get install dnsmasq-base)"
    if settings is not None:
        from gureum.virt import resolve_driver
        if resolve_driver(settings.compute.driver) != "qemu":
            return "the compute driver is not qemu (no taps to carry)"
        mechanism = settings.compute.vif_mechanism
        if mechanism == "user" or (mechanism == "auto" and not vif.BridgeVif.usable()):
            return "the QEMU driver plugs ports with user networking, not bridges"
    return None


@register
class LinuxBridgeDataPlane(DataPlane):
    """Bridges, dnsmasq, router namespaces and nftables for one host."""

    name = "linuxbridge"
    auto_priority = 10

    def __init__(self, settings: Settings, host: str, state_dir: Path | str | None = None
                 ) -> None:
        super().__init__(settings, host)
        self._setup(host, state_dir if state_dir is not None
                    else settings.host_state_dir(host))

    @classmethod
    def for_state_dir(cls, host: str, state_dir: Path | str) -> LinuxBridgeDataPlane:
        """The data plane a host ran with this state directory (to clean up after it
        without its settings: a test, or an operator after the cloud stopped)."""
        plane = cls.__new__(cls)
        plane.host = host
        plane._setup(host, state_dir)
        return plane

    def _setup(self, host: str, state_dir: Path | str) -> None:
        self.dir = Path(state_dir) / "dataplane"
        self.me = f"{host}@{Path(state_dir).resolve()}"
        digest = hashlib.sha1(self.me.encode()).hexdigest()[:8]
        self.sg_table = f"{firewall.SG_TABLE}_{digest}"
        self.owners = kernel.Owners(self.me)
        self.applied: dict[tuple[str, str, str], str] = {}
        self.bridge_netfilter: bool | None = None

    @classmethod
    def usable(cls, settings: Settings) -> bool:
        return unusable(settings) is None

    # -- the interface ----------------------------------------------------------------------
    async def sync(self, state: HostNetState) -> None:
        try:
            await asyncio.to_thread(self.sync_now, dict(state))
        except (kernel.KernelError, OSError) as exc:
            raise DataPlaneError(f"{self.host}: {exc}") from exc

    async def cleanup(self) -> None:
        try:
            await asyncio.to_thread(self.cleanup_now)
        except (kernel.KernelError, OSError) as exc:
            raise DataPlaneError(f"{self.host}: {exc}") from exc

    def report(self) -> dict[str, object]:
        return {"bridge_mappings": {}, "interface_mappings": {}, "data_plane": self.name,
                "bridge_netfilter": self.port_filter()}

    def port_filter(self) -> bool:
        """Security groups are enforced where bridged traffic reaches nftables' inet
        hooks (bridge netfilter): known from the first report on, before any sync."""
        if self.bridge_netfilter is None:
            self.bridge_netfilter = kernel.bridge_netfilter()
        return bool(self.bridge_netfilter)

    # -- the record of what this host made --------------------------------------------------
    def _record(self) -> dict[str, list[str]]:
        try:
            data = json.loads((self.dir / "record.json").read_text())
        except (OSError, ValueError):
            data = {}
        return {k: sorted(set(data.get(k, []))) for k in ("bridges", "namespaces")}

    def _save(self, record: dict[str, list[str]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "record.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(self.dir / "record.json")

    # -- converging -------------------------------------------------------------------------
    def sync_now(self, state: dict[str, Any]) -> None:
        networks = {n["id"]: n for n in state.get("networks", [])}
        routers = list(state.get("routers", []))
        mtus = {n["bridge"]: int(n["mtu"]) for n in networks.values() if n.get("mtu")}
        bridges: dict[str, int | None] = {n["bridge"]: mtus.get(n["bridge"])
                                          for n in networks.values()}
        for router in routers:
            for leg in [*router.get("interfaces", []),
                        *([router["external"]] if router.get("external") else [])]:
                bridges.setdefault(leg["bridge"], mtus.get(leg["bridge"]))
        dhcp = {nid: n for nid, n in networks.items()
                if n.get("dhcp") and n.get("dhcp_ports") and dnsmasq.dhcp_subnets(n)}
        namespaces = {DHCP_NS + nid for nid in dhcp} | {ROUTER_NS + r["id"] for r in routers}
        if self.bridge_netfilter is None:
            self.bridge_netfilter = kernel.bridge_netfilter()
            if not self.bridge_netfilter:
                log.warning("%s: no bridge netfilter (br_netfilter) here: security groups "
                            "cannot be enforced on bridged traffic", self.host)
        with kernel.locked():
            self.owners.prune(set(kernel.links()), kernel.namespaces())
            self._reap()
            record = self._record()
            record["bridges"] = sorted(set(record["bridges"]) | set(bridges))
            record["namespaces"] = sorted(set(record["namespaces"]) | namespaces)
            self._save(record)
            for bridge, mtu in sorted(bridges.items()):
                self.owners.want("bridge", bridge)
                kernel.ensure_bridge(bridge, mtu)
            for ns in sorted(namespaces):
                self.owners.want("netns", ns, exclusive=True)
                kernel.ensure_namespace(ns)
            self._taps(state, networks)
            for _nid, network in sorted(dhcp.items()):
                self._dhcp(network)
            for router in routers:
                self._router(router, mtus)
            self._host_addresses(routers)
            self._security_groups(state)
            self._remove(record, set(bridges), namespaces)

    def _reap(self) -> None:
        """Remove what data planes whose state directory is gone left behind."""
        order = {"netns": 0, "table": 1, "bridge": 2}  # a bridge once its legs are gone
        for kind, name in sorted(self.owners.orphans(), key=lambda o: order.get(o[0], 3)):
            log.warning("%s: removing %s %s, left by a data plane that is gone", self.host,
                        kind, name)
            if kind == "netns":
                kernel.delete_namespace(name)
            elif kind == "bridge":
                if not kernel.slaves(name):
                    kernel.delete_link(name)
            elif kind == "table":
                family, _, table = name.partition(" ")
                kernel.nft_delete(family, table)
            self.owners.forget(kind, name)

    def _taps(self, state: dict[str, Any], networks: dict[str, Any]) -> None:
        """The guests' taps of this host's ports get their network's MTU."""
        present = kernel.links()
        for port in state.get("ports", []):
            network = networks.get(port.get("network_id"))
            if not network or not network.get("mtu"):
                continue
            for tap in self._tap_names(port):
                link = present.get(tap)
                if link is not None and link.get("mtu") != int(network["mtu"]):
                    kernel.set_mtu(tap, int(network["mtu"]))

    def _tap_names(self, port: dict[str, Any]) -> list[str]:
        """A port's tap: the name the state gives, and the QEMU VIF driver's (which
        holds the host, so two hosts of one machine do not collide)."""
        names = [vif.tap_name(str(port["id"]), self.host)]
        if port.get("tap") and port["tap"] not in names:
            names.append(str(port["tap"]))
        return names

    def _dhcp(self, network: dict[str, Any]) -> None:
        ns = DHCP_NS + network["id"]
        port = network["dhcp_ports"][0]
        inner = "ns-" + _short(port["id"])
        outer = "tap" + _short(port["id"])
        # The DHCP port's addresses are its fixed IPs: none made from the router's
        # advertisements (which the next sync would remove again).
        if IPV6.exists():  # (a kernel booted with ipv6.disable=1 has none)
            kernel.sysctl(ns, "net.ipv6.conf.default.accept_ra", "0")
        kernel.ensure_veth(outer, network["bridge"], inner, ns, port["mac_address"],
                           int(network["mtu"]) if network.get("mtu") else None)
        if IPV6.exists():
            kernel.sysctl(ns, f"net.ipv6.conf.{inner}.accept_ra", "0")
        cidrs = {s["id"]: s["cidr"] for s in network.get("subnets", [])}
        wanted = {kernel.with_prefix(f["ip_address"], cidrs[f["subnet_id"]])
                  for f in port.get("fixed_ips", []) if f["subnet_id"] in cidrs}
        kernel.converge_addresses(inner, wanted, ns)
        dnsmasq.converge(network, self.dir / "dhcp" / network["id"], ns, inner)

    def _router(self, router: dict[str, Any], mtus: dict[str, int]) -> None:
        ns = ROUTER_NS + router["id"]
        kernel.sysctl(ns, "net.ipv4.ip_forward", "1")
        if IPV6.exists():
            kernel.sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
        legs: set[str] = set()
        advertised: list[dict[str, Any]] = []
        for iface in router.get("interfaces", []):
            inner = "qr-" + _short(iface["port_id"])
            legs.add(inner)
            kernel.ensure_veth("tap" + _short(iface["port_id"]), iface["bridge"], inner, ns,
                               iface["mac_address"], mtus.get(iface["bridge"]))
            kernel.converge_addresses(inner, self._leg_addresses(iface), ns)
            advertised.append({"device": inner, "mtu": mtus.get(iface["bridge"]),
                               "subnets": iface.get("ipv6_subnets") or []})
        self._radvd(router["id"], ns, radvd.config(advertised))
        ext = router.get("external")
        gateway_dev = None
        routes: dict[str, str] = {}
        if ext:
            gateway_dev = "qg-" + _short(ext["port_id"])
            legs.add(gateway_dev)
            kernel.ensure_veth("tap" + _short(ext["port_id"]), ext["bridge"], gateway_dev,
                               ns, ext["mac_address"], mtus.get(ext["bridge"]))
            wanted = self._leg_addresses(ext)
            for fip in router.get("floating_ips", []):
                if fip.get("floating_ip_address"):
                    wanted.add(kernel.with_prefix(str(fip["floating_ip_address"]),
                                                  str(fip["floating_ip_address"])))
            for pf in router.get("port_forwardings", []):
                if pf.get("floating_ip_address"):
                    wanted.add(kernel.with_prefix(str(pf["floating_ip_address"]),
                                                  str(pf["floating_ip_address"])))
            kernel.converge_addresses(gateway_dev, wanted, ns)
            if ext.get("gateway_ip"):
                routes["default"] = str(ext["gateway_ip"])
        for route in router.get("routes", []):
            routes[str(route["destination"])] = str(route["nexthop"])
        for name in kernel.links(ns):
            if name.startswith(("qr-", "qg-")) and name not in legs:
                kernel.delete_link(name, ns)
        kernel.converge_routes(ns, routes)
        self._nft("ip", firewall.NAT_TABLE, firewall.router_nat(router, gateway_dev), ns)

    def _radvd(self, router_id: str, ns: str, text: str) -> None:
        directory = self.dir / "ra" / router_id
        if text and radvd.binary() is None:
            if not (directory / "missing").exists():
                log.warning("%s: radvd is missing (apt-get install radvd): router %s "
                            "sends no IPv6 router advertisements", self.host, router_id)
                directory.mkdir(parents=True, exist_ok=True)
                (directory / "missing").touch()
            return
        radvd.converge(directory, ns, text)

    @staticmethod
    def _leg_addresses(leg: dict[str, Any]) -> set[str]:
        cidr = str(leg.get("cidr") or "")
        v6 = {str(sn["id"]): str(sn["cidr"]) for sn in leg.get("ipv6_subnets") or []}
        out = set()
        for f in leg.get("fixed_ips", []):
            address = str(f["ip_address"])
            if f.get("subnet_id") in v6:
                out.add(kernel.with_prefix(address, v6[str(f["subnet_id"])]))
            elif cidr and (":" in cidr) == (":" in address):
                out.add(kernel.with_prefix(address, cidr))
        return out

    def _host_addresses(self, routers: list[dict[str, Any]]) -> None:
        """The external subnets' gateway addresses on their bridges, host side."""
        for router in routers:
            ext = router.get("external")
            if ext and ext.get("gateway_ip") and ext.get("cidr"):
                cidr = kernel.with_prefix(str(ext["gateway_ip"]), str(ext["cidr"]))
                if cidr in kernel.addresses(ext["bridge"]):
                    continue
                # Another cloud of this machine (or one that stopped without cleaning
                # up) may hold the same address on its own external bridge: two
                # connected routes for one subnet send the replies to the wrong one.
                # The cloud converging now takes it.
                for entry in kernel.ip_json("-4", "addr", "show"):
                    name = str(entry.get("ifname", ""))
                    if name == ext["bridge"] or not name.startswith("brq"):
                        continue
                    for a in entry.get("addr_info", []):
                        if f"{a.get('local')}/{a.get('prefixlen')}" == cidr:
                            log.warning("%s: %s was on %s too; moving it to %s", self.host,
                                        cidr, name, ext["bridge"])
                            kernel.ip("addr", "del", cidr, "dev", name, check=False)
                kernel.converge_addresses(ext["bridge"], {cidr}, remove=False)

    def _security_groups(self, state: dict[str, Any]) -> None:
        ports = []
        for port in state.get("ports", []):
            if port.get("port_security_enabled", True):
                ports.append({**port, "taps": self._tap_names(port)})
        if not ports:
            self._nft_delete("bridge", self.sg_table)
            self._nft_delete("inet", self.sg_table)
            for family in ("bridge", "inet"):
                self.owners.release("table", f"{family} {self.sg_table}")
            return
        bridge, inet = firewall.security_groups(ports)
        for family in ("bridge", "inet"):
            self.owners.want("table", f"{family} {self.sg_table}")
        self._nft("bridge", self.sg_table, bridge)
        self._nft("inet", self.sg_table, inet)

    def _nft(self, family: str, table: str, body: str, ns: str = "") -> None:
        key = (family, table, ns)
        if self.applied.get(key) == body and (family, table) in kernel.nft_tables(ns or None):
            return
        kernel.nft_apply(family, table, body, ns or None)
        self.applied[key] = body

    def _nft_delete(self, family: str, table: str, ns: str = "") -> None:
        if self.applied.pop((family, table, ns), None) is not None or \
                (family, table) in kernel.nft_tables(ns or None):
            kernel.nft_delete(family, table, ns or None)

    # -- removing ---------------------------------------------------------------------------
    def _remove(self, record: dict[str, list[str]], bridges: set[str],
                namespaces: set[str]) -> None:
        for ns in sorted(set(record["namespaces"]) - namespaces):
            self._remove_namespace(ns)
        for bridge in sorted(set(record["bridges"]) - bridges):
            self._remove_bridge(bridge)
        record["namespaces"] = sorted(namespaces)
        record["bridges"] = sorted(bridges)
        self._save(record)

    def _remove_namespace(self, ns: str) -> None:
        if ns.startswith(DHCP_NS):
            directory = self.dir / "dhcp" / ns[len(DHCP_NS):]
            dnsmasq.stop(directory)
        if ns.startswith(ROUTER_NS):
            radvd.remove(self.dir / "ra" / ns[len(ROUTER_NS):])
        if self.owners.release("netns", ns):
            kernel.delete_namespace(ns)
        if ns.startswith(DHCP_NS):
            dnsmasq.remove(self.dir / "dhcp" / ns[len(DHCP_NS):])
        for key in [k for k in self.applied if k[2] == ns]:
            del self.applied[key]

    def _remove_bridge(self, bridge: str) -> None:
        if self.owners.release("bridge", bridge) and not kernel.slaves(bridge):
            kernel.delete_link(bridge)

    def cleanup_now(self) -> None:
        """Remove everything this host's data plane made (bridges other hosts still
        want, or with guests' taps on them, stay)."""
        with kernel.locked():
            record = self._record()
            for family in ("bridge", "inet"):
                self._nft_delete(family, self.sg_table)
                self.owners.release("table", f"{family} {self.sg_table}")
            self._remove(record, set(), set())
        self.applied.clear()
