"""The host's kernel objects as the linuxbridge data plane sees them: links, bridges,
veth pairs, network namespaces, addresses, routes and nftables tables, through the
``ip`` and ``nft`` tools (as root).

Every helper is idempotent (making what exists, or removing what is gone, changes
nothing) and blocking: the data plane runs them in a worker thread.

Several hosts of one machine (``gureum up --hosts 2``) share its bridges, and the
QEMU VIF driver (gureum/virt/qemu/vif.py) makes and removes bridges too: whoever
touches a bridge holds the machine-wide lock ``locked()`` (the VIF driver's lock
file), and who wants which bridge or namespace is kept in ``Owners``, a small
machine-wide registry under /run (gone on reboot, like the kernel objects).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gureum.virt.qemu import vif

log = logging.getLogger("gureum.netagent.dataplane.kernel")

REGISTRY_DIR = Path(os.environ.get("GUREUM_DATAPLANE_REGISTRY", "/run/gureum-dataplane"))


class KernelError(Exception):
    """A tool failed (the message names the command and what it said)."""


def run(argv: list[str], check: bool = True, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, input=stdin)
    if check and proc.returncode != 0:
        raise KernelError(f"`{' '.join(argv)}` failed ({proc.returncode}): "
                          f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def ip(*args: str, ns: str | None = None, check: bool = True
       ) -> subprocess.CompletedProcess[str]:
    return run(["ip", *(["-n", ns] if ns else []), *args], check=check)


def ip_json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    proc = ip("-j", *args, ns=ns, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return list(json.loads(proc.stdout))


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """The machine-wide lock the QEMU VIF driver takes to plug and unplug taps."""
    with open(vif.LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- links ------------------------------------------------------------------------------------

def links(ns: str | None = None) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in ip_json("link", "show", ns=ns)}


def link(name: str, ns: str | None = None) -> dict[str, Any] | None:
    found = ip_json("link", "show", "dev", name, ns=ns)
    return found[0] if found else None


def slaves(bridge: str) -> list[str]:
    return [x["ifname"] for x in ip_json("link", "show", "master", bridge)]


def ensure_bridge(name: str, mtu: int | None) -> None:
    """The bridge, up, with its MTU pinned (a bridge whose MTU was set keeps it,
    whatever its ports' are)."""
    found = link(name)
    if found is None:
        proc = ip("link", "add", "name", name, "type", "bridge", check=False)
        if proc.returncode != 0 and link(name) is None:
            raise KernelError(f"could not make bridge {name}: {proc.stderr.strip()}")
        found = link(name) or {}
    if mtu and found.get("mtu") != mtu:
        ip("link", "set", "dev", name, "mtu", str(mtu))
    if "UP" not in found.get("flags", []):
        ip("link", "set", "dev", name, "up")


def delete_link(name: str, ns: str | None = None) -> None:
    if link(name, ns) is not None:
        ip("link", "del", "dev", name, ns=ns, check=False)


def set_mtu(name: str, mtu: int, ns: str | None = None) -> None:
    found = link(name, ns)
    if found is not None and found.get("mtu") != mtu:
        ip("link", "set", "dev", name, "mtu", str(mtu), ns=ns, check=False)


def ensure_veth(outer: str, bridge: str, inner: str, ns: str, mac: str, mtu: int | None
                ) -> None:
    """A veth pair: ``outer`` on ``bridge`` in the host's namespace, ``inner`` (with
    ``mac``) in ``ns``; both up, both with ``mtu``."""
    inside = link(inner, ns)
    if inside is None or link(outer) is None:
        delete_link(outer)
        delete_link(inner, ns)
        ip("link", "add", "name", outer, "type", "veth", "peer", "name", inner,
           "netns", ns)
        inside = link(inner, ns) or {}
    if mac and str(inside.get("address", "")).lower() != mac.lower():
        ip("link", "set", "dev", inner, "address", mac, ns=ns)
    if mtu:
        set_mtu(outer, mtu)
        set_mtu(inner, mtu, ns)
    outside = link(outer) or {}
    if outside.get("master") != bridge:
        ip("link", "set", "dev", outer, "master", bridge)
    if "UP" not in outside.get("flags", []):
        ip("link", "set", "dev", outer, "up")
    if "UP" not in inside.get("flags", []):
        ip("link", "set", "dev", inner, "up", ns=ns)


# -- namespaces -------------------------------------------------------------------------------

def namespaces() -> set[str]:
    return {str(n["name"]) for n in ip_json("netns", "list")}


def ensure_namespace(ns: str) -> None:
    if ns not in namespaces():
        proc = ip("netns", "add", ns, check=False)
        if proc.returncode != 0 and ns not in namespaces():
            raise KernelError(f"could not make namespace {ns}: {proc.stderr.strip()}")
    lo = link("lo", ns) or {}
    if "UP" not in lo.get("flags", []):
        ip("link", "set", "lo", "up", ns=ns)


def namespace_pids(ns: str) -> list[int]:
    proc = ip("netns", "pids", ns, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def delete_namespace(ns: str) -> None:
    """Kill what runs in it (dnsmasq), then remove it with its links."""
    import signal
    for pid in namespace_pids(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if ns in namespaces():
        # A namespace's links go with it, but later (the kernel cleans up namespaces in
        # the background): delete them first, so their bridges are free now.
        for name in links(ns):
            if name != "lo":
                ip("link", "del", "dev", name, ns=ns, check=False)
        ip("netns", "del", ns, check=False)


def sysctl(ns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    run(["ip", "netns", "exec", ns, "sh", "-c", f"[ \"$(cat {path})\" = {value} ] || "
         f"echo {value} > {path}"])


# -- addresses and routes ---------------------------------------------------------------------

def addresses(dev: str, ns: str | None = None) -> set[str]:
    """The device's global addresses as ``ip/prefix``."""
    out: set[str] = set()
    for entry in ip_json("addr", "show", "dev", dev, ns=ns):
        for a in entry.get("addr_info", []):
            if a.get("scope") == "global":
                out.add(f"{a['local']}/{a['prefixlen']}")
    return out


def converge_addresses(dev: str, wanted: set[str], ns: str | None = None,
                       remove: bool = True) -> None:
    have = addresses(dev, ns)
    for cidr in sorted(wanted - have):
        ip("addr", "add", cidr, "dev", dev, ns=ns, check=False)
    if remove:
        for cidr in sorted(have - wanted):
            ip("addr", "del", cidr, "dev", dev, ns=ns, check=False)


def with_prefix(address: str, cidr: str) -> str:
    return f"{address}/{ipaddress.ip_network(cidr, strict=False).prefixlen}"


def routes(ns: str) -> dict[str, str]:
    """Gateway routes of the namespace's main table: destination → nexthop."""
    out: dict[str, str] = {}
    for r in ip_json("route", "show", ns=ns) + ip_json("-6", "route", "show", ns=ns):
        if r.get("gateway"):
            out[str(r["dst"])] = str(r["gateway"])
    return out


def converge_routes(ns: str, wanted: dict[str, str]) -> None:
    have = routes(ns)
    for dst, via in wanted.items():
        if have.get(_route_key(dst)) != via:
            ip("route", "replace", dst, "via", via, ns=ns, check=False)
    for dst in set(have) - {_route_key(d) for d in wanted}:
        ip("route", "del", dst, ns=ns, check=False)


def _route_key(dst: str) -> str:
    if dst in ("default", "0.0.0.0/0", "::/0"):
        return "default"
    net = ipaddress.ip_network(dst, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# -- nftables ---------------------------------------------------------------------------------

def nft_apply(family: str, table: str, body: str, ns: str | None = None) -> None:
    """Replace one table atomically with ``body`` (its chains and sets)."""
    script = (f"table {family} {table} {{}}\ndelete table {family} {table}\n"
              f"table {family} {table} {{\n{body}\n}}\n")
    argv = ["nft", "-f", "-"]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    run(argv, stdin=script)


def nft_delete(family: str, table: str, ns: str | None = None) -> None:
    argv = ["nft", "delete", "table", family, table]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    run(argv, check=False)


def nft_tables(ns: str | None = None) -> set[tuple[str, str]]:
    argv = ["nft", "-j", "list", "tables"]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    proc = run(argv, check=False)
    if proc.returncode != 0:
        return set()
    found = json.loads(proc.stdout or "{}").get("nftables", [])
    return {(t["table"]["family"], t["table"]["name"]) for t in found if "table" in t}


def bridge_netfilter() -> bool:
    """Bridged IPv4/IPv6 traffic goes through the inet family's hooks (and conntrack):
    br_netfilter, switched on when it is loaded. The security groups need it."""
    base = Path("/proc/sys/net/bridge")
    if not base.is_dir():
        run(["modprobe", "br_netfilter"], check=False)
    if not base.is_dir():
        return False
    for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        path = base / key
        with contextlib.suppress(OSError):
            if path.read_text().strip() != "1":
                path.write_text("1\n")
    return (base / "bridge-nf-call-iptables").read_text().strip() == "1"


# -- who wants what ---------------------------------------------------------------------------

class Owners:
    """Machine-wide: which data plane (``me``: its host and state directory) wants a
    shared object (a bridge: any number; a namespace: the last one that synced it).
    Called with ``locked()`` held."""

    def __init__(self, me: str, directory: Path = REGISTRY_DIR) -> None:
        self.me = me
        self.path = directory / "owners.json"

    def _load(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def want(self, kind: str, name: str, exclusive: bool = False) -> None:
        data = self._load()
        table = data.setdefault(kind, {})
        owners = [] if exclusive else list(table.get(name, []))
        if self.me not in owners:
            owners.append(self.me)
        if table.get(name) != owners:
            table[name] = owners
            self._save(data)

    def release(self, kind: str, name: str) -> bool:
        """Drop my claim; True when nobody else wants it (it can go)."""
        data = self._load()
        table = data.setdefault(kind, {})
        owners = [o for o in table.get(name, []) if o != self.me]
        if owners:
            if owners != table.get(name):
                table[name] = owners
                self._save(data)
            return False
        if name in table:
            del table[name]
            self._save(data)
        return True

    def prune(self, links: set[str], namespaces: set[str]) -> None:
        """Forget what no longer exists (removed by hand, or by a host that died)."""
        data = self._load()
        kept = {"bridge": {k: v for k, v in data.get("bridge", {}).items() if k in links},
                "netns": {k: v for k, v in data.get("netns", {}).items() if k in namespaces},
                "table": {k: v for k, v in data.get("table", {}).items()
                          if tuple(k.split(" ", 1)) in nft_tables()}}
        if kept != {k: data.get(k, {}) for k in ("bridge", "netns", "table")}:
            self._save({**data, **kept})

    def orphans(self) -> list[tuple[str, str]]:
        """Objects every owner of which is gone: its state directory no longer exists
        (a test's temporary cloud, removed without cleaning up its networks)."""
        out = []
        for kind, table in sorted(self._load().items()):
            for name, owners in sorted(table.items()):
                if owners and not any(Path(o.partition("@")[2]).is_dir() for o in owners):
                    out.append((kind, name))
        return out

    def forget(self, kind: str, name: str) -> None:
        data = self._load()
        if data.get(kind, {}).pop(name, None) is not None:
            self._save(data)

    def owners(self, kind: str, name: str) -> list[str]:
        return list(self._load().get(kind, {}).get(name, []))


def stop_daemon(pid_of: Callable[[], int | None]) -> None:
    """Stop one of our daemons (dnsmasq, radvd): SIGTERM, up to 2 s, then SIGKILL."""
    pid = pid_of()
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    while pid_of() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    if pid_of() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
