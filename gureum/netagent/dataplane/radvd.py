"""radvd sending a router's IPv6 router advertisements in its ``qrouter-`` namespace.

Neutron's way: the router, not the DHCP server, advertises the IPv6 subnets
attached to it whose ``ipv6_ra_mode`` is set, on the leg (``qr-…``) of each, with
the flags the mode asks for:

============================  =======  ==========  ===========  ============
ipv6_ra_mode                  Managed  OtherConfig  Autonomous   addresses by
============================  =======  ==========  ===========  ============
``slaac``                     off      off          on           SLAAC
``dhcpv6-stateless``          off      on           on           SLAAC, DNS by DHCPv6
``dhcpv6-stateful``           on       on           off          DHCPv6 (dnsmasq)
============================  =======  ==========  ===========  ============

and the network's MTU (``AdvLinkMTU``: S7 for IPv6) and, for SLAAC, the subnet's
DNS servers (RDNSS). A subnet whose ``ipv6_ra_mode`` is unset is advertised by
some other router, not ours. The DHCPv6 half is dnsmasq's (dnsmasq.py).

The files live in ``<state dir>/ra/<router id>/`` (``radvd.conf``, ``pid``,
``log``); a changed configuration is a SIGHUP, none left a stop.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from gureum.netagent.dataplane import kernel

SLAAC, STATELESS, STATEFUL = "slaac", "dhcpv6-stateless", "dhcpv6-stateful"
MODES = (SLAAC, STATELESS, STATEFUL)
# Neutron's intervals (seconds); a guest asks at boot (router solicitation) anyway.
MIN_INTERVAL, MAX_INTERVAL = 30, 100


def binary() -> str | None:
    return shutil.which("radvd") or next(
        (p for p in ("/usr/sbin/radvd", "/sbin/radvd") if os.path.exists(p)), None)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def config(legs: list[dict[str, Any]]) -> str:
    """radvd.conf for the router's legs: each ``{"device", "mtu", "subnets"}``, a subnet
    ``{"cidr", "ipv6_ra_mode", "dns_nameservers"}``; "" when nothing is advertised."""
    blocks = []
    for leg in sorted(legs, key=lambda g: str(g["device"])):
        subnets = [s for s in leg.get("subnets", []) if s.get("ipv6_ra_mode") in MODES]
        if not subnets:
            continue
        modes = {s["ipv6_ra_mode"] for s in subnets}
        lines = [f"interface {leg['device']}", "{", "    AdvSendAdvert on;",
                 f"    MinRtrAdvInterval {MIN_INTERVAL};",
                 f"    MaxRtrAdvInterval {MAX_INTERVAL};",
                 f"    AdvManagedFlag {_on(STATEFUL in modes)};",
                 f"    AdvOtherConfigFlag {_on(bool(modes & {STATEFUL, STATELESS}))};"]
        if leg.get("mtu"):
            lines.append(f"    AdvLinkMTU {int(leg['mtu'])};")
        dns: list[str] = []
        for subnet in sorted(subnets, key=lambda s: str(s["cidr"])):
            net = ipaddress.ip_network(str(subnet["cidr"]), strict=False)
            lines += [f"    prefix {net}", "    {", "        AdvOnLink on;",
                      f"        AdvAutonomous {_on(subnet['ipv6_ra_mode'] != STATEFUL)};",
                      "    };"]
            if subnet["ipv6_ra_mode"] == SLAAC:
                dns += [d for d in subnet.get("dns_nameservers") or []
                        if ":" in d and d not in dns]
        if dns:
            lines += [f"    RDNSS {' '.join(dns[:3])}", "    {", "    };"]
        lines.append("};")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + ("\n" if blocks else "")


def running(directory: Path) -> int | None:
    """The pid of our radvd for this directory, when it runs."""
    try:
        pid = int((directory / "pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if b"radvd" in cmdline and str(directory / "radvd.conf").encode() in cmdline:
        return pid
    return None


def converge(directory: Path, ns: str, text: str) -> None:
    """radvd runs in ``ns`` with this configuration (none runs when it is empty)."""
    if not text:
        remove(directory)
        return
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "radvd.conf"
    changed = _read(conf) != text
    if changed:
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(conf)
    pid = running(directory)
    if pid is not None:
        if changed:
            os.kill(pid, signal.SIGHUP)  # radvd reads its configuration again
        return
    (directory / "pid").unlink(missing_ok=True)  # a stale one stops radvd starting
    argv = [binary() or "radvd", "-C", str(conf), "-p", str(directory / "pid"),
            "-m", "logfile", "-l", str(directory / "log")]
    # radvd daemonizes: the parent exits once the child runs.
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise kernel.KernelError(f"radvd in {ns} did not start ({done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()}")


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
