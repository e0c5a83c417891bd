"""NICs hot-plugged into (and unplugged from) a running QEMU guest over QMP.

The NIC entries are the VIF drivers' (``vif.py``): the host side (a tap on the
network's bridge, or QEMU's user networking) is plugged before and unplugged
after, by the host's VIF registry; here only the QEMU side: ``netdev_add`` +
``device_add`` of a virtio-net-pci with the port's MAC on the NIC's root port,
and ``device_del`` (waiting until the guest released the device, QEMU's
DEVICE_DELETED: the device leaves the QOM tree) + ``netdev_del``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from gureum.virt.driver import InterfaceAttachFailed
from gureum.virt.qemu import vif
from gureum.virt.qemu.monitor import Monitor, MonitorError


async def plugged(mon: Monitor) -> dict[str, str]:
    """The running QEMU's NICs: device id (``dev-net…``) → MAC."""
    found = await mon.execute("qom-list", {"path": "/machine/peripheral"})
    names = [str(p.get("name")) for p in found or []
             if isinstance(p, dict) and str(p.get("name", "")).startswith("dev-net")]
    macs: dict[str, str] = {}
    for name in names:
        mac = await mon.execute("qom-get", {"path": f"/machine/peripheral/{name}",
                                            "property": "mac"})
        macs[name] = str(mac).lower()
    return macs


async def _netdevs(mon: Monitor) -> set[str]:
    """The ids in ``info network`` (NIC devices and their backends, ``net…``)."""
    names: set[str] = set()
    text = await mon.execute("human-monitor-command", {"command-line": "info network"})
    for line in str(text).splitlines():
        head = line.strip().lstrip("\\").strip().split(":", 1)[0]
        if head:
            names.add(head)
    return names


async def hot_plug(mon: Monitor, nic: dict[str, Any]) -> None:
    """Add the NIC's backend and device to the running QEMU; on failure nothing of it
    stays in the QEMU."""
    if nic.get("slot") is None:
        raise InterfaceAttachFailed(f"Port {nic.get('port_id')} has no hot-plug slot.")
    async with mon.session() as s:
        try:
            await s.execute("netdev_add", vif.netdev_arguments(nic))
        except MonitorError as exc:
            raise InterfaceAttachFailed(f"QEMU cannot open the backend of port "
                                        f"{nic.get('port_id')}: {exc}") from exc
        try:
            await s.execute("device_add", vif.device_arguments(nic))
        except MonitorError as exc:
            with contextlib.suppress(MonitorError):
                await s.execute("netdev_del", {"id": nic["id"]})
            raise InterfaceAttachFailed(f"Plugging the NIC of port {nic.get('port_id')} "
                                        f"into the guest failed: {exc}") from exc


async def hot_unplug(mon: Monitor, nic: dict[str, Any], timeout: float) -> None:
    """Ask the guest to release the NIC, wait until it is gone, drop its backend.
    InterfaceAttachFailed when the guest does not let go within ``timeout`` (the
    request stays pending: a later detach finds the device gone)."""
    device = f"dev-{nic['id']}"
    if device in await plugged(mon):
        if nic.get("slot") is None:
            raise InterfaceAttachFailed(f"The NIC of port {nic.get('port_id')} sits on the "
                                        "root bus and cannot be unplugged while the guest "
                                        "runs.")
        try:
            await mon.execute("device_del", {"id": device})
        except MonitorError as exc:
            if exc.error_class != "DeviceNotFound":
                raise InterfaceAttachFailed(f"Unplugging the NIC of port "
                                            f"{nic.get('port_id')} failed: {exc}") from exc
        deadline = time.monotonic() + timeout
        while device in await plugged(mon):
            if time.monotonic() >= deadline:
                raise InterfaceAttachFailed(
                    f"The guest did not release the NIC of port {nic.get('port_id')} "
                    f"within {timeout:g}s (its kernel must handle PCIe hot-unplug); it "
                    "stays attached. Try again once the guest has booted.")
            await asyncio.sleep(0.2)
    if nic["id"] in await _netdevs(mon):
        try:
            await mon.execute("netdev_del", {"id": nic["id"]})
        except MonitorError as exc:
            if exc.error_class != "DeviceNotFound":
                raise InterfaceAttachFailed(f"Dropping the backend of port "
                                            f"{nic.get('port_id')} failed: {exc}") from exc
