"""VIF drivers: how a port of ``spec.network_info`` becomes a guest NIC on this host.

Every port becomes a virtio-net-pci device with the port's MAC. What backs it
on the host is chosen by the port's binding (``vif_type``, computed for this
host from what the host reported: network/bindings.py), from a small registry
of VIF drivers keyed by ``vif_type``:

- ``bridge``: a tap per port on the network's Linux bridge (``brq`` + the network
  id, the name the binding's ``vif_details["bridge_name"]`` gives), as Neutron's
  linuxbridge agent plugs them; the bridge is made when missing and removed with
  its last tap. Needs root (CAP_NET_ADMIN) and /dev/net/tun.
- ``user``: QEMU's user networking (slirp): no privileges, no host side.

A host reports the mechanism it plugs with its resources (``Vifs.report``, the
agent's capability): ``bridge`` when it can make taps, ``user`` otherwise. A
port whose binding names a ``vif_type`` this host has no driver for (a binding
made before the host reported) is plugged with the host's own mechanism.

The interface (the networking issue plugs its data plane in by registering a
``VifDriver`` for its ``vif_type``, never by touching the QEMU driver):

- ``Vifs(host).plug(guest_id, port, index) -> nic``: prepare the host side of one
  port and return its NIC entry, a JSON-able dict kept in ``domain.json`` under
  ``nics``: ``id`` (the QEMU netdev id, ``net<index>``), ``mac``, ``port_id``,
  ``vif_type``, ``backend`` (the driver that plugged it) and what that driver
  needs later (``tap``, ``bridge``). Idempotent: plugging what is plugged changes
  nothing, so every (re)definition of a guest plugs again.
- ``qemu_args(nic) -> argv``: the ``-netdev``/``-device`` arguments for the entry.
- ``unplug(guest_id, nic)``: undo ``plug`` (idempotent; the guest's process is
  gone). Both work from the entry alone.

NICs sit on PCIe root ports (a q35 machine cannot hot-plug onto its root bus):
the port of its ``device_index`` (the NIC's place in the instance, which Compute
keeps for the port), ``hp-net0`` … ``hp-net7``, made at boot. The place of each
NIC is so a function of the spec alone: a hard reboot, and a live migration's
destination, define the same devices at the same addresses as the guest that
runs, hot-plugged NICs included. A port without a ``device_index`` (a guest
defined by hand) sits on the root bus, and cannot be hot-unplugged.

Hot-plug (``hot_plug``/``hot_unplug``): the host side is plugged as for a boot
(``plug``), then QMP ``netdev_add`` and ``device_add`` of a virtio-net-pci with
the port's MAC on its root port; unplugging is ``device_del``, waiting until the
guest released the device (DEVICE_DELETED: it is gone from the QOM tree), then
``netdev_del`` and the host side's ``unplug``.

Tap names hold the host: the hosts of one machine (`gureum up --hosts 2`) share
its network namespace, and during a live migration both run a QEMU for the port.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger("gureum.virt.qemu.vif")

IFNAMSIZ = 15  # usable characters of a Linux interface name
NIC_PORTS = 8  # hot-plug root ports for NICs: device_index 0 … 7
FIRST_NIC_CHASSIS = 64  # their chassis numbers (volumes' ports use 32 …)
LOCK = Path(tempfile.gettempdir()) / "gureum-vif.lock"  # one machine, every agent


class VifError(Exception):
    """The host side of a port could not be plugged (the message says why)."""


class VifDriver(ABC):
    """Plugs ports of one ``vif_type`` on one host."""

    vif_type: ClassVar[str]
    agent_type: ClassVar[str]  # how the host's agent shows (Neutron's agent_type)
    vif_details: ClassVar[dict[str, Any]] = {}

    def __init__(self, host: str) -> None:
        self.host = host

    @abstractmethod
    def plug(self, guest_id: str, port: dict[str, Any], index: int) -> dict[str, Any]:
        ...

    @classmethod
    @abstractmethod
    def netdev(cls, nic: dict[str, Any]) -> str:
        """The ``-netdev`` value of a NIC this driver plugged (from the entry alone)."""

    @classmethod
    def unplug(cls, guest_id: str, nic: dict[str, Any]) -> None:
        """Undo ``plug`` from the entry alone (any host's agent can, after a restart)."""
        return None

    def nic(self, port: dict[str, Any], index: int, **extra: Any) -> dict[str, Any]:
        mac = str(port.get("mac_address") or "")
        if not mac:
            raise VifError(f"port {port.get('port_id')} has no MAC address")
        return {"id": f"net{index}", "mac": mac.lower(), "port_id": port.get("port_id"),
                "vif_type": port.get("vif_type"), "backend": self.vif_type, **extra}


class UserVif(VifDriver):
    """QEMU user networking: the guest gets a private NAT'd network of its own."""

    vif_type = "user"
    agent_type = "QEMU user networking"

    def plug(self, guest_id: str, port: dict[str, Any], index: int) -> dict[str, Any]:
        return self.nic(port, index)

    @classmethod
    def netdev(cls, nic: dict[str, Any]) -> str:
        return f"user,id={nic['id']}"


class BridgeVif(VifDriver):
    """A tap per port on the network's Linux bridge (Neutron's linuxbridge agent)."""

    vif_type = "bridge"
    agent_type = "Linux bridge agent"
    vif_details = {"connectivity": "l2", "port_filter": False}

    @staticmethod
    def usable() -> bool:
        return (os.geteuid() == 0 and shutil.which("ip") is not None
                and os.path.exists("/dev/net/tun"))

    def tap_name(self, port_id: str) -> str:
        return tap_name(port_id, self.host)

    def plug(self, guest_id: str, port: dict[str, Any], index: int) -> dict[str, Any]:
        port_id = str(port.get("port_id") or "")
        if not port_id:
            raise VifError(f"a port of {guest_id} has no id")
        details = port.get("vif_details") or {}
        network_id = str(port.get("network_id") or "")
        if not (details.get("bridge_name") or network_id):
            raise VifError(f"port {port_id} of {guest_id} names no network to bridge to")
        bridge = str(details.get("bridge_name") or bridge_name(network_id))
        nic = self.nic(port, index, tap=self.tap_name(port_id), bridge=bridge)
        mtu = port.get("mtu")
        with _locked():
            _ensure_bridge(bridge)
            _ensure_tap(nic["tap"], bridge, int(mtu) if mtu else None)
        return nic

    @classmethod
    def netdev(cls, nic: dict[str, Any]) -> str:
        return f"tap,id={nic['id']},ifname={nic['tap']},script=no,downscript=no"

    @classmethod
    def unplug(cls, guest_id: str, nic: dict[str, Any]) -> None:
        tap, bridge = nic.get("tap"), nic.get("bridge")
        with _locked():
            if tap and _exists(tap):
                _ip("link", "del", "dev", tap)
            if bridge and _exists(bridge) and not _ports_of(bridge):
                _ip("link", "del", "dev", bridge)


# -- the registry ---------------------------------------------------------------------------

REGISTRY: dict[str, type[VifDriver]] = {"user": UserVif, "bridge": BridgeVif}


def register(driver: type[VifDriver]) -> None:
    """Add (or replace) the VIF driver for ``driver.vif_type``: how the networking
    issue plugs its data plane in."""
    REGISTRY[driver.vif_type] = driver


class Vifs:
    """One host's VIF drivers: its own mechanism first, QEMU user networking always."""

    def __init__(self, host: str, mechanism: str | None = None) -> None:
        self.host = host
        if mechanism is None:
            mechanism = "bridge" if BridgeVif.usable() else "user"
        if mechanism not in REGISTRY:
            raise VifError(f"no VIF driver for {mechanism!r}; known: {sorted(REGISTRY)}")
        self.mechanism = mechanism
        self.drivers: dict[str, VifDriver] = {"user": UserVif(host)}
        self.drivers[mechanism] = REGISTRY[mechanism](host)

    def report(self) -> dict[str, Any]:
        """What the host tells the conductor it plugs (HostResources.vif)."""
        driver = self.drivers[self.mechanism]
        return {"agent_type": driver.agent_type, "vif_type": driver.vif_type,
                "vif_details": dict(driver.vif_details)}

    def for_port(self, port: dict[str, Any]) -> VifDriver:
        found = self.drivers.get(str(port.get("vif_type")))
        if found is None:
            log.warning("%s: port %s is bound with vif_type %r, which this host does not "
                        "plug; plugging it as %s", self.host, port.get("port_id"),
                        port.get("vif_type"), self.mechanism)
            found = self.drivers[self.mechanism]
        return found

    def plug(self, guest_id: str, port: dict[str, Any], index: int) -> dict[str, Any]:
        nic = self.for_port(port).plug(guest_id, port, index)
        slot = slot_of(port)
        if slot is not None:
            nic["slot"] = slot
        return nic

    def plug_all(self, guest_id: str, network_info: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
        """Every port, in order; when one fails, the ones plugged before it are undone."""
        nics: list[dict[str, Any]] = []
        slots = [slot_of(p) for p in network_info]
        taken = {s for s in slots if s is not None}
        spare = (i for i in range(NIC_PORTS + len(network_info)) if i not in taken)
        try:
            for port, slot in zip(network_info, slots, strict=True):
                # The netdev id follows the slot, so a hot-plugged NIC's id never
                # collides with a boot NIC's.
                nics.append(self.plug(guest_id, port, slot if slot is not None
                                      else next(spare)))
        except BaseException:
            unplug_all(guest_id, nics, self.host)
            raise
        return nics

    def unplug_all(self, guest_id: str, nics: list[dict[str, Any]]) -> None:
        unplug_all(guest_id, nics, self.host)


def driver_of(nic: dict[str, Any]) -> type[VifDriver]:
    backend = str(nic.get("backend", "user"))
    found = REGISTRY.get(backend)
    if found is None:
        raise VifError(f"unknown VIF backend {backend!r} (known: {sorted(REGISTRY)})")
    return found


def slot_of(port: dict[str, Any]) -> int | None:
    """The root port a port's NIC sits on: its ``device_index`` (None: the root bus)."""
    index = port.get("device_index")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < NIC_PORTS:
        return index
    return None


def port_args() -> list[str]:
    """The NICs' hot-plug root ports every guest is made with (before its NICs)."""
    args: list[str] = []
    for i in range(NIC_PORTS):
        args += ["-device", f"pcie-root-port,id=hp-net{i},chassis={FIRST_NIC_CHASSIS + i},"
                            "bus=pcie.0"]
    return args


def qemu_args(nic: dict[str, Any]) -> list[str]:
    """The ``-netdev``/``-device`` arguments of a NIC entry: a virtio-net device with the
    port's MAC on the backend its driver plugged (on its root port when it has one)."""
    bus = f",bus=hp-net{nic['slot']}" if nic.get("slot") is not None else ""
    return ["-netdev", driver_of(nic).netdev(nic),
            "-device", f"virtio-net-pci,netdev={nic['id']},mac={nic['mac']},"
                       f"id=dev-{nic['id']}{bus}"]


def netdev_arguments(nic: dict[str, Any]) -> dict[str, Any]:
    """QMP ``netdev_add`` arguments for a NIC entry (the ``-netdev`` value as a dict)."""
    kind, *options = driver_of(nic).netdev(nic).split(",")
    args: dict[str, Any] = {"type": kind}
    for option in options:
        key, _, value = option.partition("=")
        args[key] = value
    return args


def device_arguments(nic: dict[str, Any]) -> dict[str, Any]:
    """QMP ``device_add`` arguments for a NIC entry."""
    dev: dict[str, Any] = {"driver": "virtio-net-pci", "id": f"dev-{nic['id']}",
                           "netdev": nic["id"], "mac": nic["mac"]}
    if nic.get("slot") is not None:
        dev["bus"] = f"hp-net{nic['slot']}"
    return dev


def unplug(guest_id: str, nic: dict[str, Any]) -> None:
    driver_of(nic).unplug(guest_id, nic)


def unplug_all(guest_id: str, nics: list[dict[str, Any]], host: str = "") -> None:
    """Unplug every NIC of a guest; one that cannot be unplugged is logged, not raised
    (the guest is gone either way)."""
    for nic in nics:
        try:
            unplug(guest_id, nic)
        except (VifError, OSError) as exc:
            log.warning("%s: could not unplug %s of %s: %s", host, nic.get("id"), guest_id,
                        exc)


def unplug_stale(guest_id: str, old: list[dict[str, Any]], new: list[dict[str, Any]],
                 host: str = "") -> None:
    """After a redefinition: unplug what the old NIC entries plugged that the new ones
    do not (a port detached, or bound another way), so no tap outlives its port."""
    kept = {(n.get("backend"), n.get("port_id"), n.get("tap")) for n in new}
    unplug_all(guest_id, [n for n in old
                          if (n.get("backend"), n.get("port_id"), n.get("tap")) not in kept],
               host)


# -- names ------------------------------------------------------------------------------------

def bridge_name(network_id: str) -> str:
    """Neutron's linuxbridge name of a network's bridge: ``brq`` + the id, 14 characters."""
    return ("brq" + network_id)[:IFNAMSIZ - 1]


def host_tag(host: str) -> str:
    """Three characters that tell this machine's hosts apart in interface names."""
    if re.fullmatch(r"[A-Za-z0-9]{1,3}", host):
        return host
    return hashlib.sha1(host.encode()).hexdigest()[:3]


def tap_name(port_id: str, host: str) -> str:
    """``tap`` + the port id's first 8 characters + ``-`` + the host's tag (15)."""
    return f"tap{port_id[:8]}-{host_tag(host)}"[:IFNAMSIZ]


# -- the host's links -------------------------------------------------------------------------

@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One plug or unplug at a time on this machine: an unplug must not remove a bridge
    another host's plug is about to attach a tap to."""
    with open(LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise VifError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def _link(name: str) -> dict[str, Any] | None:
    proc = _ip("-j", "link", "show", "dev", name, check=False)
    if proc.returncode != 0:
        return None
    found = json.loads(proc.stdout or "[]")
    return dict(found[0]) if found else None


def _exists(name: str) -> bool:
    return _link(name) is not None


def _ports_of(bridge: str) -> list[str]:
    proc = _ip("-j", "link", "show", "master", bridge, check=False)
    if proc.returncode != 0:
        return []
    return [link["ifname"] for link in json.loads(proc.stdout or "[]")]


def _ensure_bridge(bridge: str) -> None:
    if not _exists(bridge):
        proc = _ip("link", "add", "name", bridge, "type", "bridge", check=False)
        if proc.returncode != 0 and not _exists(bridge):
            raise VifError(f"could not make bridge {bridge}: {proc.stderr.strip()}")
    _ip("link", "set", "dev", bridge, "up")


def _ensure_tap(tap: str, bridge: str, mtu: int | None) -> None:
    link = _link(tap)
    if link is None:
        _ip("tuntap", "add", "dev", tap, "mode", "tap")
        link = _link(tap) or {}
    if mtu and link.get("mtu") != mtu:
        _ip("link", "set", "dev", tap, "mtu", str(mtu))
    if link.get("master") != bridge:
        _ip("link", "set", "dev", tap, "master", bridge)
    _ip("link", "set", "dev", tap, "up")


