"""VIF layer: how a port of ``spec.network_info`` becomes a guest NIC.

The interface the driver uses (the networking lanes replace the insides, never
the driver):

- ``plug(guest_id, port, index) -> nic``: prepare the host side of one port (a
  tap on a bridge, nothing for user networking) and return its NIC entry, a
  JSON-able dict kept in ``domain.json`` under ``nics``. It has at least ``id``
  (the QEMU netdev id, ``net<index>``), ``mac``, ``port_id``, ``vif_type`` and
  ``backend`` (which plug made it).
- ``qemu_args(nic) -> argv``: the ``-netdev``/``-device`` arguments for the entry.
- ``unplug(guest_id, nic)``: undo ``plug`` (idempotent; the guest's process is gone).

This first version gives every port QEMU user networking (slirp) and a
virtio-net-pci device with the port's MAC; it needs no privileges.
"""

from __future__ import annotations

from typing import Any


def plug(guest_id: str, port: dict[str, Any], index: int) -> dict[str, Any]:
    mac = str(port.get("mac_address") or "")
    if not mac:
        raise ValueError(f"port {port.get('port_id')} of {guest_id} has no MAC address")
    return {"id": f"net{index}", "mac": mac, "port_id": port.get("port_id"),
            "vif_type": port.get("vif_type"), "backend": "user"}


def qemu_args(nic: dict[str, Any]) -> list[str]:
    if nic.get("backend", "user") != "user":
        raise ValueError(f"unknown VIF backend {nic.get('backend')!r}")
    return ["-netdev", f"user,id={nic['id']}",
            "-device", f"virtio-net-pci,netdev={nic['id']},mac={nic['mac']},id=dev-{nic['id']}"]


def unplug(guest_id: str, nic: dict[str, Any]) -> None:
    return None
