"""dnsmasq serving one network's DHCP in its ``qdhcp-<network id>`` namespace.

Static leases only (Neutron's way): one host entry per port of the network (MAC →
address, hostname ``host-<address with dashes>``), one ``dhcp-range`` per IPv4
subnet with DHCP on and per IPv6 subnet with DHCP on whose ``ipv6_address_mode`` is
``dhcpv6-stateful`` (host entries ``[address]``: DHCPv6 gives each port its
address) or ``dhcpv6-stateless`` (no host entries: the ports make their addresses
by SLAAC and ask DHCPv6 only for the rest, the DNS servers). dnsmasq sends no
router advertisements: the router's radvd does (radvd.py). Per IPv4 subnet the
options: router (3) = the gateway,
interface MTU (26) = the network's MTU, DNS servers (6), classless static routes
(121) = the subnet's host routes plus the default route via the gateway (a client
given option 121 ignores option 3). Options are forced (sent whether or not the
client asked). A port's ``extra_dhcp_opts`` are added for that port alone.

The files live in ``<state dir>/dhcp/<network id>/`` (``pid``, ``hosts``, ``opts``,
``leases``, ``args``); host and option changes are a SIGHUP, a changed command line
(a subnet added or removed) a restart.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from gureum.netagent.dataplane import kernel

LEASE = "86400s"


def binary() -> str | None:
    return shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.path.exists(p)), None)


def _tag(subnet_id: str) -> str:
    return "subnet-" + subnet_id


STATEFUL, STATELESS = "dhcpv6-stateful", "dhcpv6-stateless"


def dhcp_subnets(network: dict[str, Any]) -> list[dict[str, Any]]:
    """The subnets dnsmasq serves: IPv4 ones with DHCP on, IPv6 ones with DHCP on in a
    DHCPv6 address mode."""
    return [s for s in network.get("subnets", [])
            if s.get("enable_dhcp") and (int(s.get("ip_version", 4)) == 4 or
                                         s.get("ipv6_address_mode") in (STATEFUL, STATELESS))]


def hosts_file(network: dict[str, Any]) -> str:
    subnets = {s["id"] for s in dhcp_subnets(network)
               if int(s.get("ip_version", 4)) == 4 or s.get("ipv6_address_mode") == STATEFUL}
    lines = []
    for port in sorted(network.get("ports", []), key=lambda p: str(p["id"])):
        if str(port.get("device_owner", "")) == "network:dhcp":
            continue
        for fixed in port.get("fixed_ips", []):
            if fixed["subnet_id"] not in subnets:
                continue
            address = str(fixed["ip_address"])
            name = "host-" + address.replace(".", "-").replace(":", "-")
            if ":" in address:
                address = f"[{address}]"
            tag = f"set:port-{port['id']}," if port.get("extra_dhcp_opts") else ""
            lines.append(f"{str(port['mac_address']).lower()},{tag}{name},{address}")
    return "\n".join(lines) + ("\n" if lines else "")


def subnet_options(network: dict[str, Any]) -> list[str]:
    """The subnets' options (``--dhcp-option-force`` values: sent whether the client
    asked or not; udhcpc asks for few)."""
    lines = []
    mtu = int(network.get("mtu") or 0)
    for subnet in dhcp_subnets(network):
        tag = "tag:" + _tag(subnet["id"])
        if int(subnet.get("ip_version", 4)) == 6:
            # No router, MTU or routes in DHCPv6: the router advertisement has them.
            dns = [f"[{d}]" for d in subnet.get("dns_nameservers") or [] if ":" in d]
            if dns:
                lines.append(f"{tag},option6:dns-server,{','.join(dns)}")
            continue
        gateway = subnet.get("gateway_ip")
        if gateway:
            lines.append(f"{tag},option:router,{gateway}")
        else:
            lines.append(f"{tag},option:router")
        if mtu:
            lines.append(f"{tag},option:mtu,{mtu}")
        if subnet.get("dns_nameservers"):
            lines.append(f"{tag},option:dns-server,{','.join(subnet['dns_nameservers'])}")
        routes = [f"{r['destination']},{r['nexthop']}" for r in subnet.get("host_routes", [])
                  if ":" not in str(r["destination"])
                  and str(r["destination"]) not in ("0.0.0.0/0",)]
        default = [r for r in subnet.get("host_routes", [])
                   if str(r["destination"]) == "0.0.0.0/0"]
        if default:
            routes.append(f"0.0.0.0/0,{default[0]['nexthop']}")
        elif gateway:
            routes.append(f"0.0.0.0/0,{gateway}")
        if routes:
            lines.append(f"{tag},option:classless-static-route,{','.join(routes)}")
    return lines


def opts_file(network: dict[str, Any]) -> str:
    """The ports' own options (``extra_dhcp_opts``): a SIGHUP re-reads them."""
    lines = []
    for port in sorted(network.get("ports", []), key=lambda p: str(p["id"])):
        for opt in port.get("extra_dhcp_opts") or []:
            if int(opt.get("ip_version", 4) or 4) != 4 or not opt.get("opt_name"):
                continue
            name = str(opt["opt_name"])
            key = name if name.isdigit() else f"option:{name}"
            lines.append(f"tag:port-{port['id']},{key},{opt.get('opt_value', '')}")
    return "\n".join(lines) + ("\n" if lines else "")


def arguments(network: dict[str, Any], directory: Path, device: str) -> list[str]:
    args = [binary() or "dnsmasq", "--no-hosts", "--no-resolv", "--port=0",
            "--conf-file=/dev/null", "--user=root", "--group=root",
            f"--pid-file={directory / 'pid'}",
            f"--dhcp-hostsfile={directory / 'hosts'}",
            f"--dhcp-optsfile={directory / 'opts'}",
            f"--dhcp-leasefile={directory / 'leases'}",
            f"--interface={device}", "--except-interface=lo", "--bind-interfaces",
            "--dhcp-authoritative", "--domain=openstacklocal",
            f"--log-facility={directory / 'log'}", "--quiet-dhcp"]
    count = 0
    for subnet in dhcp_subnets(network):
        net = ipaddress.ip_network(subnet["cidr"], strict=False)
        mask = net.netmask if net.version == 4 else net.prefixlen
        args.append(f"--dhcp-range=set:{_tag(subnet['id'])},{net.network_address},"
                    f"static,{mask},{LEASE}")
        count += net.num_addresses
    args.append(f"--dhcp-lease-max={max(16, min(count, 1 << 16))}")
    args.extend(f"--dhcp-option-force={o}" for o in subnet_options(network))
    return args


def running(directory: Path) -> int | None:
    """The pid of our dnsmasq for this directory, when it runs."""
    try:
        pid = int((directory / "pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if b"dnsmasq" in cmdline and f"--pid-file={directory / 'pid'}".encode() in cmdline:
        return pid
    return None


def converge(network: dict[str, Any], directory: Path, ns: str, device: str) -> None:
    """dnsmasq runs in ``ns`` on ``device`` with the network's current hosts and options."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts, opts = hosts_file(network), opts_file(network)
    args = arguments(network, directory, device)
    changed = _write(directory / "hosts", hosts) | _write(directory / "opts", opts)
    pid = running(directory)
    same = _read(directory / "args") == json.dumps(args)
    if pid is not None and same:
        if changed:
            os.kill(pid, signal.SIGHUP)
        return
    if pid is not None:
        stop(directory)
    # Anything else running in the namespace (a dnsmasq another host started there
    # before this one took the network over) goes.
    for other in kernel.namespace_pids(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(other, signal.SIGKILL)
    (directory / "args").write_text(json.dumps(args))
    # dnsmasq daemonizes: the parent exits once the child runs (its descriptors are
    # files, so nothing waits on a pipe the daemon keeps).
    with open(directory / "start.log", "w+") as log:
        code = subprocess.run(["ip", "netns", "exec", ns, *args], stdin=subprocess.DEVNULL,
                              stdout=log, stderr=log, check=False, timeout=30).returncode
        if code != 0:
            log.seek(0)
            raise kernel.KernelError(f"dnsmasq in {ns} did not start ({code}): "
                                     f"{log.read().strip()}")


def stop(directory: Path) -> None:
    kernel.stop_daemon(lambda: running(directory))


def remove(directory: Path) -> None:
    stop(directory)
    shutil.rmtree(directory, ignore_errors=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, text: str) -> bool:
    if _read(path) == text:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True
