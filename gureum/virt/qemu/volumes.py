"""Volumes in QEMU guests: how a volume is defined, hot-plugged and unplugged.

A volume is a file (``connection_info`` ``{"driver_volume_type": "file", "data":
{"path", "format", "volume_id"}}``) opened by a ``-blockdev`` node (qcow2 or raw
over a file node) and shown to the guest as a virtio-blk disk whose serial is the
volume id's first 20 characters (as Nova/libvirt do: the guest finds it in
``/dev/disk/by-id/virtio-<serial>``).

A q35 machine cannot hot-plug onto its root bus, so every guest has one PCIe root
port per data-volume device name, ``/dev/vdb`` … (``PORTS``), made at boot; a data
volume always sits on the port of its device name, and its disk's id is the device
name's (``dev-vol-vdb``), not the volume's: a swap changes the volume under a disk
and keeps the disk. The place and id of each disk are so a function of the spec
alone: a hard reboot, and a live migration's destination, define the same devices
at the same addresses as the guest that runs, before and after a swap. A volume
the guest boots from (boot_index 0) replaces the local root disk on the root bus
and cannot be detached.

The same node definition serves the command line (``-blockdev`` takes JSON) and
QMP's ``blockdev-add``; unplugging is ``device_del`` (the guest's kernel releases
the slot, pciehp waits ~5 s first), waiting until the device is gone, then
``blockdev-del``. Volumes never take part in a block migration: they are on
storage both hosts reach, and the destination opens the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import string
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gureum.virt.driver import VolumeAttachFailed, volume_id_of
from gureum.virt.qemu import domain
from gureum.virt.qemu.monitor import Monitor, MonitorError

if TYPE_CHECKING:
    from gureum.virt.qemu.driver import QemuDriver

log = logging.getLogger("gureum.virt.qemu.volumes")

# Device names with a hot-plug port: /dev/vdb … /dev/vdq.
PORT_LETTERS = string.ascii_lowercase[1:17]
FIRST_CHASSIS = 32  # root ports' chassis numbers (each needs its own)
SERIAL_LENGTH = 20


def node_name(volume_id: str) -> str:
    """The block node of a volume (QEMU node names have at most 31 characters): a swap
    opens the new volume's node beside the old one's, so it is the volume's."""
    return "vol-" + volume_id.replace("-", "")[:24]


def device_id(device_name: str, boot: bool = False) -> str:
    """The id of the guest's disk ``/dev/vdX`` (``dev-vol-vdX``; the disk booted from:
    ``dev-vol-vda``): the disk's, not the volume's, as its slot is. A swap changes the
    volume under the disk and keeps the disk, so its id is the same whoever defines the
    guest (the running QEMU, a hard reboot, a live migration's destination), and the
    volume swapped out can be attached again beside it."""
    return "dev-vol-vda" if boot else "dev-vol-" + port_of(device_name).removeprefix("hp-")


def port_of(device_name: str) -> str:
    """The root port a data volume named ``/dev/vdX`` (or sdX, xvdX) sits on."""
    letter = device_name.rstrip("/").rsplit("/", 1)[-1][-1:]
    if letter not in PORT_LETTERS:
        raise VolumeAttachFailed(f"No hot-plug slot for device {device_name!r}: data "
                                 f"volumes use /dev/vd{PORT_LETTERS[0]} to "
                                 f"/dev/vd{PORT_LETTERS[-1]}.")
    return f"hp-vd{letter}"


def port_args() -> list[str]:
    """The hot-plug root ports every guest is made with (last on the command line, so
    the addresses of its other devices do not depend on them)."""
    args: list[str] = []
    for i, letter in enumerate(PORT_LETTERS):
        args += ["-device", f"pcie-root-port,id=hp-vd{letter},chassis={FIRST_CHASSIS + i},"
                            "bus=pcie.0"]
    return args


def entry(block_device: dict[str, Any], direct: bool) -> dict[str, Any] | None:
    """A volume's entry in the domain definition (None: nothing to plug)."""
    info = block_device.get("connection_info")
    if not isinstance(info, dict) or not info:
        return None
    return entry_from(info, str(block_device.get("device_name") or ""),
                      boot=str(block_device.get("boot_index")) == "0", direct=direct)


def entry_from(info: dict[str, Any], device_name: str, boot: bool = False,
               direct: bool = True) -> dict[str, Any]:
    volume_id = volume_id_of(info)
    kind = info.get("driver_volume_type")
    data = info.get("data") or {}
    if kind != "file" or not data.get("path"):
        raise VolumeAttachFailed(f"Volume {volume_id}: the QEMU driver plugs file volumes "
                                 f"only, not {kind!r}.")
    fmt = str(data.get("format") or "raw")
    if fmt not in ("raw", "qcow2"):
        raise VolumeAttachFailed(f"Volume {volume_id}: unknown format {fmt!r}.")
    return {"volume_id": volume_id, "node": node_name(volume_id),
            "device": device_id(device_name, boot), "device_name": device_name,
            "path": str(data["path"]), "format": fmt, "direct": direct,
            "readonly": bool(data.get("access_mode") == "ro"),
            "serial": volume_id[:SERIAL_LENGTH], "boot": boot,
            "port": None if boot else port_of(device_name)}


def blockdev(vol: dict[str, Any]) -> dict[str, Any]:
    """The node definition (``-blockdev`` JSON, QMP ``blockdev-add`` arguments)."""
    cache = {"direct": bool(vol["direct"]), "no-flush": False}
    return {"driver": vol["format"], "node-name": vol["node"], "cache": cache,
            "read-only": bool(vol["readonly"]), "discard": "unmap",
            "file": {"driver": "file", "filename": vol["path"], "cache": cache,
                     "aio": "threads"}}


def device(vol: dict[str, Any]) -> dict[str, Any]:
    """The virtio-blk device (QMP ``device_add`` arguments)."""
    dev: dict[str, Any] = {"driver": "virtio-blk-pci", "id": vol["device"],
                           "drive": vol["node"], "serial": vol["serial"]}
    if vol["boot"]:
        dev["bootindex"] = 1
    else:
        dev["bus"] = vol["port"]
    return dev


def qemu_args(vol: dict[str, Any]) -> list[str]:
    dev = device(vol)
    opts = ",".join(f"{k}={v}" for k, v in dev.items() if k != "driver")
    return ["-blockdev", json.dumps(blockdev(vol), sort_keys=True),
            "-device", f"{dev['driver']},{opts}"]


# -- a running guest (QMP) -----------------------------------------------------------------

async def hot_plug(mon: Monitor, vol: dict[str, Any]) -> None:
    """Open the volume in the running QEMU and plug its disk; on failure nothing of it
    stays in the QEMU."""
    async with mon.session() as s:
        try:
            await s.execute("blockdev-add", blockdev(vol))
        except MonitorError as exc:
            raise VolumeAttachFailed(f"QEMU cannot open volume {vol['volume_id']} "
                                     f"({vol['path']}): {exc}") from exc
        try:
            await s.execute("device_add", device(vol))
        except MonitorError as exc:
            with contextlib.suppress(MonitorError):
                await s.execute("blockdev-del", {"node-name": vol["node"]})
            raise VolumeAttachFailed(f"Plugging volume {vol['volume_id']} into the guest "
                                     f"failed: {exc}") from exc


async def plugged(mon: Monitor) -> set[str]:
    """The ids of the user-made devices of the running QEMU (``dev-vol-…`` among them)."""
    found = await mon.execute("qom-list", {"path": "/machine/peripheral"})
    return {str(p.get("name")) for p in found or [] if isinstance(p, dict)}


async def hot_unplug(mon: Monitor, vol: dict[str, Any], timeout: float) -> None:
    """Ask the guest to release the disk, wait until its device is gone, close the
    volume. VolumeAttachFailed when the guest does not let go within ``timeout`` (the
    request stays pending: a later detach finds the device gone)."""
    if vol["device"] in await plugged(mon):
        try:
            await mon.execute("device_del", {"id": vol["device"]})
        except MonitorError as exc:
            if exc.error_class != "DeviceNotFound":
                raise VolumeAttachFailed(f"Unplugging volume {vol['volume_id']} failed: "
                                         f"{exc}") from exc
        deadline = time.monotonic() + timeout
        while vol["device"] in await plugged(mon):
            if time.monotonic() >= deadline:
                raise VolumeAttachFailed(
                    f"The guest did not release volume {vol['volume_id']} within "
                    f"{timeout:g}s (its kernel must handle PCIe hot-unplug); it stays "
                    "attached. Try again once the guest has booted.")
            await asyncio.sleep(0.2)
    nodes = await mon.execute("query-named-block-nodes", {"flat": True})
    if any(isinstance(n, dict) and n.get("node-name") == vol["node"] for n in nodes or []):
        try:
            await mon.execute("blockdev-del", {"node-name": vol["node"]})
        except MonitorError as exc:
            raise VolumeAttachFailed(f"Closing volume {vol['volume_id']} failed: "
                                     f"{exc}") from exc


# -- the driver's attach_volume / detach_volume (under the guest's lock) ------------------

async def attach(d: QemuDriver, guest_id: str, connection_info: dict[str, Any],
                 device_name: str) -> None:
    dom = d._domain(guest_id)
    files = d.files(guest_id)
    vol = entry_from(connection_info, device_name,
                     direct=d._volume_direct({"connection_info": connection_info}))
    present = list(dom.get("volumes") or [])
    if any(v["volume_id"] == vol["volume_id"] for v in present):
        return
    if any(v.get("port") == vol["port"] for v in present):
        raise VolumeAttachFailed(f"Device {device_name} of guest {guest_id} is in use by "
                                 "another volume.")
    if files.suspend_state.exists():
        raise VolumeAttachFailed(f"Guest {guest_id} is suspended: its saved state cannot "
                                 "take a new disk.")
    if not Path(vol["path"]).is_file():
        raise VolumeAttachFailed(f"The file of volume {vol['volume_id']} ({vol['path']}) is "
                                 f"not reachable on {d.host}.")
    if d._pid(guest_id) is not None:
        await hot_plug(d.monitor(guest_id), vol)
    dom["volumes"] = [*present, vol]
    spec = dict(dom.get("spec") or {})
    spec["block_devices"] = [*(b for b in spec.get("block_devices") or []
                               if b.get("volume_id") != vol["volume_id"]),
                             {"volume_id": vol["volume_id"], "device_name": device_name,
                              "boot_index": None, "connection_info": connection_info}]
    dom["spec"] = spec
    domain.save(files, dom)


async def extend(d: QemuDriver, guest_id: str, volume_id: str, new_size: int) -> None:
    """Grow an attached volume: a running QEMU resizes the image it holds open
    (block_resize on the volume's node: qemu-img cannot, the file is locked); a
    stopped guest's file is resized by qemu-img."""
    dom = d._domain(guest_id)
    vol = next((v for v in dom.get("volumes") or [] if v["volume_id"] == volume_id), None)
    if vol is None:
        raise VolumeAttachFailed(f"Volume {volume_id} is not attached to guest {guest_id}.")
    from gureum.virt.qemu import disks

    try:
        current = int((await disks.info(Path(vol["path"])))["virtual-size"])
    except Exception as exc:
        raise VolumeAttachFailed(f"The file of volume {volume_id} cannot be read: {exc}"
                                 ) from exc
    if current >= new_size:
        return  # never shrinks; already that large
    if d._pid(guest_id) is not None:
        try:
            async with d.monitor(guest_id).session() as s:
                await s.execute("block_resize", {"node-name": vol["node"], "size": new_size})
        except MonitorError as exc:
            raise VolumeAttachFailed(f"QEMU cannot grow volume {volume_id} to {new_size} "
                                     f"bytes: {exc}") from exc
        return
    try:
        await disks.run(disks.qemu_img(), "resize", "-q", "-f", vol.get("format") or "raw",
                        str(vol["path"]), str(new_size))
    except Exception as exc:
        raise VolumeAttachFailed(f"Growing the file of volume {volume_id} failed: {exc}"
                                 ) from exc


async def detach(d: QemuDriver, guest_id: str, volume_id: str) -> None:
    dom = d._domain(guest_id)
    files = d.files(guest_id)
    vol = next((v for v in dom.get("volumes") or [] if v["volume_id"] == volume_id), None)
    if vol is None:
        return
    if vol.get("boot"):
        raise VolumeAttachFailed(f"Volume {volume_id} is the disk guest {guest_id} boots "
                                 "from; it cannot be detached.")
    if files.suspend_state.exists():
        raise VolumeAttachFailed(f"Guest {guest_id} is suspended: its saved state holds the "
                                 "disk.")
    if d._pid(guest_id) is not None:
        await hot_unplug(d.monitor(guest_id), vol, d.volume_detach_timeout)
    dom["volumes"] = [v for v in dom["volumes"] if v["volume_id"] != volume_id]
    spec = dict(dom.get("spec") or {})
    spec["block_devices"] = [b for b in spec.get("block_devices") or []
                             if b.get("volume_id") != volume_id]
    dom["spec"] = spec
    domain.save(files, dom)


# -- swap (Nova's swap volume): mirror the disk onto the new volume, then pivot -----------

class SwapSize:
    """The size the new volume of a running guest's swap had before it was shrunk to
    the old one's for the mirror, kept in the guest's definition (``swap_size``) from
    just before the shrink until the swap is done: a swap cut there (the agent killed,
    QEMU running on with the new volume's node open and shrunk) is resumed by the next
    call, which reads the shrunk size from QEMU and the original from here."""

    KEY = "swap_size"

    def __init__(self, files: domain.GuestFiles, dom: dict[str, Any], volume_id: str
                 ) -> None:
        self.files, self.dom, self.volume_id = files, dom, volume_id

    def original(self) -> int:
        kept = self.dom.get(self.KEY) or {}
        return int(kept.get("size") or 0) if kept.get("volume_id") == self.volume_id else 0

    def remember(self, size: int) -> None:
        if self.original() != size:
            self.dom[self.KEY] = {"volume_id": self.volume_id, "size": size}
            domain.save(self.files, self.dom)

    def forget(self) -> None:
        if self.dom.pop(self.KEY, None) is not None:
            domain.save(self.files, self.dom)


async def _node_sizes(s: Any) -> dict[str, int]:
    nodes = await s.execute("query-named-block-nodes", {"flat": True})
    return {str(n.get("node-name")): int((n.get("image") or {}).get("virtual-size") or 0)
            for n in nodes or [] if isinstance(n, dict)}


async def _device_node(s: Any, device: str) -> str | None:
    """The node the guest's disk ``device`` reads now (query-block's inserted node)."""
    for b in await s.execute("query-block") or []:
        if isinstance(b, dict) and str(b.get("qdev") or "").startswith(
                f"/machine/peripheral/{device}/"):
            return str((b.get("inserted") or {}).get("node-name") or "") or None
    return None


async def _job(s: Any, job_id: str) -> dict[str, Any] | None:
    for j in await s.execute("query-jobs") or []:
        if isinstance(j, dict) and j.get("id") == job_id:
            return j
    return None


async def _wait_job(s: Any, job_id: str, wanted: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await _job(s, job_id)
        if job is None:
            raise VolumeAttachFailed(f"The disk copy {job_id} ended before it was {wanted}.")
        if job.get("status") == wanted or job.get("status") == "concluded":
            return job
        if time.monotonic() >= deadline:
            raise VolumeAttachFailed(f"The disk copy {job_id} was not {wanted} within "
                                     f"{timeout:g}s.")
        await asyncio.sleep(0.1)


async def mirror(mon: Monitor, old: dict[str, Any], new: dict[str, Any], timeout: float,
                 size: SwapSize) -> None:
    """Copy the running guest's disk (``old``'s node) onto ``new`` and switch the guest's
    device to it (blockdev-mirror, then block-job-complete: the pivot); the old node is
    closed and the new volume has its own size again. Resumes a swap an earlier call
    left half done (the new node open and shrunk to the old one's size, the job running
    or the pivot made: ``size`` knows the size the new volume had before); on failure
    the guest's disk stays the old node and the new volume keeps its size. What fails
    after the pivot is only logged: the guest reads the new volume, the swap is made."""
    job_id = "swap-" + new["node"]
    async with mon.session() as s:
        sizes = await _node_sizes(s)
        if await _device_node(s, old["device"]) != new["node"]:
            if new["node"] not in sizes:
                try:
                    await s.execute("blockdev-add", blockdev(new))
                except MonitorError as exc:
                    raise VolumeAttachFailed(f"QEMU cannot open volume {new['volume_id']} "
                                             f"({new['path']}): {exc}") from exc
                sizes = await _node_sizes(s)
            try:
                await _pivot(s, job_id, old, new, sizes, timeout, size)
            except (VolumeAttachFailed, MonitorError) as exc:
                pivoted = False
                with contextlib.suppress(MonitorError):
                    if await _job(s, job_id) is not None:
                        with contextlib.suppress(MonitorError):
                            await s.execute("job-cancel", {"id": job_id})
                        with contextlib.suppress(VolumeAttachFailed):
                            await _wait_job(s, job_id, "concluded", 10)
                        await s.execute("job-dismiss", {"id": job_id})
                    pivoted = await _device_node(s, old["device"]) == new["node"]
                    if not pivoted:
                        original = max(size.original(), sizes.get(new["node"], 0))
                        if original > (await _node_sizes(s)).get(new["node"], 0):
                            # shrunk for the mirror: as it was
                            await s.execute("block_resize", {"node-name": new["node"],
                                                             "size": original})
                        size.forget()
                        await s.execute("blockdev-del", {"node-name": new["node"]})
                if pivoted:  # the guest is on the new volume: the swap is made
                    log.warning("swap of %s onto %s: %s after the pivot", old["volume_id"],
                                new["volume_id"], exc)
                elif isinstance(exc, VolumeAttachFailed):
                    raise
                else:
                    raise VolumeAttachFailed(f"Copying volume {old['volume_id']} onto "
                                             f"{new['volume_id']} failed: {exc}") from exc
        # Pivoted (now or by an earlier call): the new volume grows back to its size.
        # Failing that, the guest still reads the new volume (smaller than it is): the
        # swap is made, which the caller must record, so it is not refused for this.
        now = (await _node_sizes(s)).get(new["node"], 0)
        if size.original() > now:
            try:
                await s.execute("block_resize", {"node-name": new["node"],
                                                 "size": size.original()})
            except MonitorError as exc:
                log.warning("volume %s swapped in for %s stays at %d bytes, not %d: %s",
                            new["volume_id"], old["volume_id"], now, size.original(), exc)
        if old["node"] in await _node_sizes(s):
            with contextlib.suppress(MonitorError):  # still in use: closed with the QEMU
                await s.execute("blockdev-del", {"node-name": old["node"]})


async def _pivot(s: Any, job_id: str, old: dict[str, Any], new: dict[str, Any],
                 sizes: dict[str, int], timeout: float, size: SwapSize) -> None:
    source, target = sizes.get(old["node"], 0), sizes.get(new["node"], 0)
    job = await _job(s, job_id)
    if job is None:
        target = max(target, size.original())  # shrunk by an earlier call: its size
        if target < source:
            raise VolumeAttachFailed(f"Volume {new['volume_id']} ({target} bytes) is smaller "
                                     f"than volume {old['volume_id']} ({source} bytes).")
        if sizes.get(new["node"], 0) > source:
            # A mirror's target has the source's size: shrunk for the copy, grown after.
            # Its size is written down first: an agent killed after the shrink finds
            # the volume at the old one's size, and only this says what it was.
            size.remember(target)
            await s.execute("block_resize", {"node-name": new["node"], "size": source})
        await s.execute("blockdev-mirror", {"job-id": job_id, "device": old["node"],
                                            "target": new["node"], "sync": "full",
                                            "auto-dismiss": False})
    job = await _wait_job(s, job_id, "ready", timeout)
    if job.get("status") == "ready":
        await s.execute("block-job-complete", {"device": job_id})
        job = await _wait_job(s, job_id, "concluded", timeout)
    await s.execute("job-dismiss", {"id": job_id})
    if job.get("error"):
        raise VolumeAttachFailed(f"Copying volume {old['volume_id']} onto "
                                 f"{new['volume_id']} failed: {job['error']}")


async def swap(d: QemuDriver, guest_id: str, old_volume_id: str,
               connection_info: dict[str, Any]) -> None:
    dom = d._domain(guest_id)
    files = d.files(guest_id)
    present = list(dom.get("volumes") or [])
    new_id = volume_id_of(connection_info)
    old = next((v for v in present if v["volume_id"] == old_volume_id), None)
    if old is None:
        if any(v["volume_id"] == new_id for v in present):
            return  # swapped already
        raise VolumeAttachFailed(f"Volume {old_volume_id} is not attached to guest "
                                 f"{guest_id}.")
    new = entry_from(connection_info, old["device_name"], boot=bool(old.get("boot")),
                     direct=d._volume_direct({"connection_info": connection_info}))
    # The guest's device stays (its id, its slot): only the node under it changes. (Its
    # id is the device name's, but a guest started before it was keeps the volume's.)
    new["device"], new["port"] = old["device"], old.get("port")
    if files.suspend_state.exists():
        raise VolumeAttachFailed(f"Guest {guest_id} is suspended: its saved state holds the "
                                 "disk.")
    if not Path(new["path"]).is_file():
        raise VolumeAttachFailed(f"The file of volume {new_id} ({new['path']}) is not "
                                 f"reachable on {d.host}.")
    size = SwapSize(files, dom, new_id)
    if d._pid(guest_id) is not None:
        await mirror(d.monitor(guest_id), old, new, d.volume_swap_timeout, size)
    else:
        await _copy_file(old, new, size.original())
    dom.pop(SwapSize.KEY, None)
    dom["volumes"] = [new if v is old else v for v in present]
    spec = dict(dom.get("spec") or {})
    spec["block_devices"] = [
        {**b, "volume_id": new_id, "connection_info": connection_info}
        if b.get("volume_id") == old_volume_id else b
        for b in spec.get("block_devices") or []]
    dom["spec"] = spec
    domain.save(files, dom)


async def _copy_file(old: dict[str, Any], new: dict[str, Any], original: int) -> None:
    """A stopped guest: qemu-img copies the old volume's data onto the new one (which
    gets back the size ``original`` a running guest's swap that stopped half way had
    shrunk it from)."""
    from gureum.virt.qemu import disks

    try:
        source = int((await disks.info(Path(old["path"])))["virtual-size"])
        target = int((await disks.info(Path(new["path"])))["virtual-size"])
        if max(target, original) < source:
            raise VolumeAttachFailed(f"Volume {new['volume_id']} ({target} bytes) is smaller "
                                     f"than volume {old['volume_id']} ({source} bytes).")
        await disks.run(disks.qemu_img(), "convert", "-n", "-f", old["format"], "-O",
                        new["format"], str(old["path"]), str(new["path"]))
        if original > target:
            await disks.run(disks.qemu_img(), "resize", "-q", "-f", new["format"],
                            str(new["path"]), str(original))
    except VolumeAttachFailed:
        raise
    except Exception as exc:
        raise VolumeAttachFailed(f"Copying volume {old['volume_id']} onto "
                                 f"{new['volume_id']} failed: {exc}") from exc
