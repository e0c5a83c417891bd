"""Volumes of servers: the block device mappings and their steps (os-volume_attachments).

Attaching, as Nova does it: the API checks the server's state (the action table's
``attach_volume``), asks Block Storage for the volume (404 unknown, 409 not
available), reserves it (available → attaching), picks the device name and writes
the mapping row (``attaching``), in the caller's one transaction, with an outbox
row for the conductor. The conductor (conductor/volumes.py) gets the connection
info for the server's host, has the host's agent plug it (``attach_volume``), and
then marks the volume in-use with an attachment for the host; if plugging fails,
the volume goes back to available and the row is removed. Detaching is the
mirror image (in-use → detaching; unplugged → available, row removed; a failed
unplug leaves it in-use and attached).

The rows are the truth. ``Instance.block_device_mapping`` keeps a copy of the
attached ones (``refresh``) that the views and every GuestSpec read, as
``network_info`` caches the ports: a spawn, a start, a hard reboot and every move
plug what it lists. When a server lands on another host (``follow``), each
mapping gets connection info for that host and its attachment names that host.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.compute import instances, states
from gureum.compute.models import BlockDeviceMapping, Instance
from gureum.context import RequestContext
from gureum.errors import Conflict, GureumError, InvalidInput, NotFound

log = logging.getLogger("gureum.compute.volumes")

# Nova's device names: /dev/vdb, /dev/sdc, /dev/xvdd (a prefix and a letter or more).
_DEVICE = re.compile(r"^/dev/(x?v|s|h)d[a-z]+$")
DATA_LETTERS = "bcdefghijklmnopq"  # /dev/vdb …: the data volumes a guest may have
ROOT_DEVICE = "/dev/vda"
# Statuses whose volume is in the guest (``swapping``: being replaced by the row of the
# same device in status ``swap_target``, whose volume is not in the guest yet).
PLUGGED = ("attached", "detaching", "swapping")


def mappings(s: Session, instance_id: str) -> list[BlockDeviceMapping]:
    """The server's volume mappings, oldest first."""
    return list(s.scalars(select(BlockDeviceMapping).where(
        BlockDeviceMapping.instance_id == instance_id,
        BlockDeviceMapping.volume_id.is_not(None)).order_by(BlockDeviceMapping.id)))


def mapping(s: Session, instance_id: str, volume_id: str) -> BlockDeviceMapping | None:
    return s.scalar(select(BlockDeviceMapping).where(
        BlockDeviceMapping.instance_id == instance_id,
        BlockDeviceMapping.volume_id == volume_id))


def block_device(b: BlockDeviceMapping) -> dict[str, Any]:
    """A mapping as GuestSpec.block_devices (and the instance's copy) has it."""
    return {"volume_id": b.volume_id, "device_name": b.device_name,
            "boot_index": b.boot_index, "connection_info": b.connection_info,
            "delete_on_termination": bool(b.delete_on_termination),
            "attachment_id": b.attachment_id, "tag": b.tag, "bdm_id": b.uuid,
            "source_type": b.source_type, "destination_type": b.destination_type}


def refresh(s: Session, instance_id: str) -> None:
    """Keep the instance's copy of its attached volumes in step with the rows (set on
    the loaded row, so a caller's unflushed changes to it are kept)."""
    s.flush()
    inst = s.get(Instance, instance_id)
    if inst is None:
        return
    wanted = [block_device(b) for b in mappings(s, instance_id) if b.status in PLUGGED]
    if wanted != list(inst.block_device_mapping or []):
        inst.block_device_mapping = wanted


def _device_name(used: set[str], requested: str | None) -> str:
    """The device the volume gets: the one asked for (400 when it is no device name or
    is taken), else the first free /dev/vdX."""
    if requested:
        if not _DEVICE.match(requested):
            raise InvalidInput(f"The supplied device path ({requested}) is invalid.",
                               field="device")
        if requested in used or requested == ROOT_DEVICE:
            raise InvalidInput(f"The supplied device path ({requested}) is in use.",
                               field="device")
        return requested
    for letter in DATA_LETTERS:
        name = f"/dev/vd{letter}"
        if name not in used:
            return name
    raise InvalidInput(f"No free device name: a server has at most {len(DATA_LETTERS)} "
                       "data volumes.", field="device")


def volume_service() -> Any:
    """Block Storage's calls for Compute (gureum/volume/service.py), imported late."""
    from gureum.volume import service

    return service


_volume_service = volume_service


def attach(s: Session, ctx: RequestContext, inst: Instance, volume_id: str,
           device: str | None = None, tag: str | None = None,
           delete_on_termination: bool = False) -> BlockDeviceMapping:
    """Reserve the volume for the server and hand the plugging to the conductor."""
    volsvc = _volume_service()
    states.check("attach_volume", inst.id, inst.vm_state, inst.task_state,
                 launched=inst.launched_at is not None)
    present = mappings(s, inst.id)
    if any(b.volume_id == volume_id for b in present):
        raise InvalidInput(f"Invalid volume: volume {volume_id} is already attached to "
                           f"server {inst.id}.", field="volumeId")
    volsvc.get_for_attach(s, ctx.project_id, volume_id, is_admin=ctx.is_admin)
    name = _device_name({b.device_name for b in present if b.device_name}, device)
    attachment_id = volsvc.reserve(s, volume_id, inst.id)
    b = BlockDeviceMapping(
        instance_id=inst.id, volume_id=volume_id, source_type="volume",
        destination_type="volume", device_name=name, boot_index=None,
        delete_on_termination=bool(delete_on_termination), tag=tag,
        attachment_id=attachment_id, status="attaching", host=inst.host)
    s.add(b)
    s.flush()
    instances.start_action(s, inst.id, "attach_volume", ctx.request_id, ctx.user_id,
                           ctx.project_id)
    outbox.add(s, "attach_volume", {"instance_id": inst.id, "volume_id": volume_id,
                                    "request_id": ctx.request_id})
    return b


def attached(s: Session, inst: Instance, volume_id: str) -> BlockDeviceMapping:
    """The server's mapping of the volume (404 as Nova: it is not attached to it)."""
    b = mapping(s, inst.id, volume_id)
    if b is None:
        raise NotFound(f"Volume {volume_id} is not attached to server {inst.id}",
                       kind="volume")
    return b


def detach(s: Session, ctx: RequestContext, inst: Instance, volume_id: str) -> None:
    """Start unplugging the volume; the conductor finishes (or rolls back)."""
    states.check("detach_volume", inst.id, inst.vm_state, inst.task_state,
                 launched=inst.launched_at is not None)
    b = attached(s, inst, volume_id)
    if b.boot_index == 0:
        raise InvalidInput("Cannot detach a root device volume", field="volume_id")
    if b.status != "attached":
        raise Conflict(f"Volume {volume_id} is still {b.status} on server {inst.id}; "
                       "try again when that is over.")
    _volume_service().begin_detaching(s, volume_id)
    b.status = "detaching"
    instances.start_action(s, inst.id, "detach_volume", ctx.request_id, ctx.user_id,
                           ctx.project_id)
    outbox.add(s, "detach_volume", {"instance_id": inst.id, "volume_id": volume_id,
                                    "request_id": ctx.request_id})


def check_settled(s: Session, instance_id: str) -> None:
    """A move waits until no volume of the server is being attached, detached or swapped
    (the host doing it is the one the server leaves): 409 as Nova's instance lock
    answers."""
    for b in mappings(s, instance_id):
        if b.status in ("attaching", "detaching", "swapping"):
            raise Conflict(f"Volume {b.volume_id} of server {instance_id} is being "
                           f"{b.status.removesuffix('ing')}ed; try again when that is over.")


def swap(s: Session, ctx: RequestContext, inst: Instance, old_volume_id: str,
         new_volume_id: str) -> BlockDeviceMapping:
    """Nova's swap volume: the attached volume ``old_volume_id`` is to be replaced by
    ``new_volume_id`` (same device; its data copied first). The old volume turns
    detaching, the new one is reserved (attaching) with a ``swap_target`` row beside
    the old one's (``swapping``); the conductor has the host copy and switch, then
    merges the rows (``finish_swap``) or rolls both back (``undo_swap``)."""
    volsvc = _volume_service()
    states.check("swap_volume", inst.id, inst.vm_state, inst.task_state,
                 launched=inst.launched_at is not None)
    b = attached(s, inst, old_volume_id)
    if b.status != "attached":
        raise Conflict(f"Volume {old_volume_id} is still {b.status} on server {inst.id}; "
                       "try again when that is over.")
    if mapping(s, inst.id, new_volume_id) is not None:
        raise InvalidInput(f"Invalid volume: volume {new_volume_id} is already attached to "
                           f"server {inst.id}.", field="volumeId")
    volsvc.check_swap(s, ctx.project_id, old_volume_id, new_volume_id,
                      is_admin=ctx.is_admin)
    volsvc.begin_detaching(s, old_volume_id)
    attachment_id = volsvc.reserve(s, new_volume_id, inst.id)
    b.status = "swapping"
    target = BlockDeviceMapping(
        instance_id=inst.id, volume_id=new_volume_id, source_type="volume",
        destination_type="volume", device_name=b.device_name, boot_index=b.boot_index,
        delete_on_termination=False, tag=b.tag, attachment_id=attachment_id,
        status="swap_target", host=inst.host)
    s.add(target)
    s.flush()
    instances.start_action(s, inst.id, "swap_volume", ctx.request_id, ctx.user_id,
                           ctx.project_id)
    outbox.add(s, "swap_volume", {"instance_id": inst.id, "volume_id": old_volume_id,
                                  "request_id": ctx.request_id})
    return b


def swap_target(s: Session, instance_id: str) -> BlockDeviceMapping | None:
    """The row of the volume a swap of the server puts in place (None: no swap)."""
    return s.scalar(select(BlockDeviceMapping).where(
        BlockDeviceMapping.instance_id == instance_id,
        BlockDeviceMapping.status == "swap_target"))


def finish_swap(s: Session, b: BlockDeviceMapping, target: BlockDeviceMapping,
                host: str | None) -> None:
    """The host switched the disk: the old volume is available, the new one in-use on
    the same device, and the server's mapping (its id, tag, delete_on_termination)
    names the new volume, as Nova updates the one mapping."""
    assert b.volume_id is not None and target.volume_id is not None
    volsvc = _volume_service()
    volsvc.detach(s, b.volume_id, b.attachment_id)
    new_id, info = target.volume_id, target.connection_info
    attachment_id = volsvc.attach(s, new_id, b.instance_id, host, b.device_name)
    s.delete(target)
    s.flush()
    b.volume_id, b.attachment_id, b.connection_info = new_id, attachment_id, info
    b.source_type, b.image_id, b.volume_size = "volume", None, None
    b.status, b.host = "attached", host
    refresh(s, b.instance_id)


def undo_swap(s: Session, b: BlockDeviceMapping, target: BlockDeviceMapping | None) -> None:
    """The switch failed: the old volume stays in-use in its place, the new one is
    available again."""
    assert b.volume_id is not None
    volsvc = _volume_service()
    volsvc.roll_detaching(s, b.volume_id)
    if target is not None and target.volume_id is not None:
        volsvc.unreserve(s, target.volume_id, b.instance_id)
        s.delete(target)
    b.status = "attached"
    refresh(s, b.instance_id)


def set_delete_on_termination(s: Session, inst: Instance, volume_id: str,
                              value: bool) -> BlockDeviceMapping:
    b = attached(s, inst, volume_id)
    b.delete_on_termination = bool(value)
    refresh(s, inst.id)
    return b


# -- the conductor's steps (conductor/volumes.py), each in its own transaction ----------

def connect(s: Session, b: BlockDeviceMapping, host: str | None) -> dict[str, Any] | None:
    """Connection info of the mapping's volume for ``host`` (None: no host to plug on),
    recorded on the row."""
    if not host or b.volume_id is None:
        return None
    info: dict[str, Any] = _volume_service().connection_info(s, b.volume_id, host)
    b.connection_info = info
    b.host = host
    return info


def mark_attached(s: Session, b: BlockDeviceMapping, host: str | None) -> None:
    assert b.volume_id is not None
    b.attachment_id = _volume_service().attach(s, b.volume_id, b.instance_id, host,
                                               b.device_name)
    b.status = "attached"
    b.host = host
    refresh(s, b.instance_id)


def undo_attach(s: Session, b: BlockDeviceMapping) -> None:
    """The plug failed: the volume is available again and the row goes."""
    assert b.volume_id is not None
    _volume_service().unreserve(s, b.volume_id, b.instance_id)
    s.delete(b)
    refresh(s, b.instance_id)


def mark_detached(s: Session, b: BlockDeviceMapping) -> None:
    assert b.volume_id is not None
    _volume_service().detach(s, b.volume_id, b.attachment_id)
    s.delete(b)
    refresh(s, b.instance_id)


def undo_detach(s: Session, b: BlockDeviceMapping) -> None:
    """The unplug failed: the volume stays in-use, attached to the server."""
    assert b.volume_id is not None
    _volume_service().roll_detaching(s, b.volume_id)
    b.status = "attached"
    refresh(s, b.instance_id)


def follow(s: Session, instance_id: str, host: str) -> None:
    """The server now runs on ``host`` (a move's cut-over, an evacuation, a revert):
    each volume's connection info is made for that host, and its mapping and its
    attachment name that host (S12)."""
    volsvc = None
    for b in mappings(s, instance_id):
        if b.status not in PLUGGED or b.host == host:
            continue
        volsvc = volsvc or _volume_service()
        connect(s, b, host)
        if b.attachment_id:
            volsvc.update_attachment_host(s, b.attachment_id, host)
    if volsvc is not None:
        refresh(s, instance_id)


def block_devices_for(s: Session, instance_id: str, host: str) -> list[dict[str, Any]]:
    """The server's volumes as a destination host plugs them before the server is its
    (a live migration's incoming guest, a resize's or evacuation's new definition):
    connection info made for ``host``, nothing recorded (``follow`` does at the end)."""
    out = []
    for b in mappings(s, instance_id):
        if b.status not in PLUGGED:
            continue
        device = block_device(b)
        if b.host != host and b.volume_id is not None:
            try:
                device["connection_info"] = _volume_service().connection_info(
                    s, b.volume_id, host)
            except GureumError as exc:  # keep what the server has; the host may cope
                log.warning("no connection info of volume %s for %s: %s", b.volume_id,
                            host, exc)
        out.append(device)
    return out


def release(s: Session, instance_id: str) -> list[str]:
    """The server is deleted: every volume is detached (back to available); returns
    the volumes to delete because their mapping says delete_on_termination."""
    volsvc = None
    doomed: list[str] = []
    for b in mappings(s, instance_id):
        volsvc = volsvc or _volume_service()
        assert b.volume_id is not None
        if b.status in ("attaching", "boot", "swap_target"):
            volsvc.unreserve(s, b.volume_id, instance_id)
        else:
            volsvc.detach(s, b.volume_id, b.attachment_id)
        if b.delete_on_termination:
            doomed.append(b.volume_id)
        s.delete(b)
    if volsvc is not None:
        refresh(s, instance_id)
    return doomed


def delete_volumes(s: Session, volume_ids: list[str], project_id: str,
                   request_id: str) -> None:
    """Delete the volumes a deleted server's mappings marked delete_on_termination (as
    the server's project would; a volume that cannot go now is left, and logged)."""
    if not volume_ids:
        return
    import gureum.volume.volumes as volume_rows
    from gureum.errors import GureumError

    ctx = RequestContext(project_id=project_id, roles=frozenset({"admin", "member"}),
                         request_id=request_id)
    for volume_id in volume_ids:
        try:
            with s.begin_nested():
                volume_rows.delete_volume(s, ctx, volume_id)
        except GureumError as exc:
            log.warning("volume %s of a deleted server was kept: %s", volume_id, exc)


# -- boot from volume (block_device_mapping_v2) ---------------------------------------------

def _int_or_none(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid {field}: {value!r} is not an integer.",
                           field=f"block_device_mapping_v2.{field}") from None


def check_boot_request(bdms: list[dict[str, Any]], image_ref: str, count: int) -> bool:
    """Check the volume entries of a server create's block_device_mapping_v2 (400 naming
    what is wrong); True when the server boots from a volume (no image needed)."""
    boots_from_volume = False
    for bdm in bdms:
        source, dest = bdm.get("source_type"), bdm.get("destination_type")
        if dest != "volume" and source not in ("volume", "snapshot"):
            continue  # an image or blank local disk: the flavor's own
        if source in ("image", "blank") and dest != "volume":
            continue
        if source in ("volume", "image", "snapshot") and not bdm.get("uuid"):
            raise InvalidInput("Missing uuid of the block device.",
                               field="block_device_mapping_v2.uuid")
        if source == "blank" and _int_or_none(bdm.get("volume_size"), "volume_size") is None:
            raise InvalidInput("A blank volume needs volume_size.",
                               field="block_device_mapping_v2.volume_size")
        size = _int_or_none(bdm.get("volume_size"), "volume_size")
        if size is not None and size < 1:
            raise InvalidInput("volume_size must be at least 1.",
                               field="block_device_mapping_v2.volume_size")
        boot = _int_or_none(bdm.get("boot_index"), "boot_index")
        if boot == 0:
            boots_from_volume = True
        if source == "volume" and count > 1:
            raise InvalidInput("Multiple instances cannot share the volume "
                               f"{bdm.get('uuid')}: boot one server from it.",
                               field="block_device_mapping_v2")
    return boots_from_volume


def plan_boot(s: Session, ctx: RequestContext, inst: Instance,
              bdms: list[dict[str, Any]]) -> None:
    """The mapping rows of a new server's volumes (status ``boot``: plugged by the build):
    an existing volume is reserved now (404/409 as an attach); an image or blank source
    gets a new volume (Block Storage fills it; the build waits for it)."""
    volsvc = None
    used: set[str] = set()
    for bdm in bdms:
        source, dest = bdm.get("source_type"), bdm.get("destination_type")
        if dest != "volume" and source != "volume":
            continue
        volsvc = volsvc or _volume_service()
        boot = _int_or_none(bdm.get("boot_index"), "boot_index")
        if boot is not None and boot < 0:
            boot = None
        size = _int_or_none(bdm.get("volume_size"), "volume_size")
        if source == "volume":
            volume_id = str(bdm["uuid"])
            try:
                volsvc.get_for_attach(s, ctx.project_id, volume_id, is_admin=ctx.is_admin)
            except NotFound:
                raise InvalidInput(f"Block Device Mapping is Invalid: failed to get volume "
                                   f"{volume_id}.", field="block_device_mapping_v2") from None
            attachment_id = volsvc.reserve(s, volume_id, inst.id)
        else:
            image_id = str(bdm["uuid"]) if source == "image" else None
            snapshot_id = str(bdm["uuid"]) if source == "snapshot" else None
            try:
                volume_id = volsvc.create_for_boot(s, ctx, size, image_id,
                                                   name=f"{inst.name}-volume",
                                                   snapshot_id=snapshot_id)
            except NotFound:
                raise InvalidInput(f"Block Device Mapping is Invalid: failed to get "
                                   f"snapshot {snapshot_id}.",
                                   field="block_device_mapping_v2") from None
            attachment_id = None
        requested = bdm.get("device_name")
        if requested and not str(requested).startswith("/dev/"):
            requested = f"/dev/{requested}"  # as Nova takes "vdb" at boot
        if boot == 0:
            name = ROOT_DEVICE
            _boot_image_properties(s, inst, volume_id)
        else:
            name = _device_name(used | {ROOT_DEVICE},
                                requested if requested and requested not in used else None)
        used.add(name)
        s.add(BlockDeviceMapping(
            instance_id=inst.id, volume_id=volume_id, image_id=(
                str(bdm["uuid"]) if source == "image" else None),
            source_type=str(source), destination_type="volume", device_name=name,
            boot_index=boot, volume_size=size,
            delete_on_termination=bool(bdm.get("delete_on_termination") in
                                       (True, "true", "True", "1", 1)),
            attachment_id=attachment_id, tag=bdm.get("tag"), status="boot"))
    if volsvc is not None:
        s.flush()


IMAGE_BDM_PROPERTIES = ("block_device_mapping", "bdm_v2", "root_device_name", "mappings")


def image_block_devices(props: dict[str, str], requested: list[dict[str, Any]]
                        ) -> list[dict[str, Any]]:
    """The block_device_mapping_v2 entries of a boot from an image whose properties map
    volumes (Nova's snapshot of a server booted from a volume: JSON entries with
    snapshot_id, volume_size, boot_index…), with the request's own entries taking the
    place of an image entry of the same device, as Nova merges them."""
    import json

    try:
        entries = json.loads(props.get("block_device_mapping") or "[]")
    except ValueError:
        raise InvalidInput("The image's block_device_mapping property is not JSON.",
                           field="imageRef") from None
    if not isinstance(entries, list):
        raise InvalidInput("The image's block_device_mapping property is not a list.",
                           field="imageRef")
    taken = {_short(b.get("device_name")) for b in requested if b.get("device_name")}
    out: list[dict[str, Any]] = []
    for e in entries:
        if not isinstance(e, dict) or _short(e.get("device_name")) in taken:
            continue
        source = e.get("source_type") or ("snapshot" if e.get("snapshot_id") else "volume")
        uuid = e.get("snapshot_id") if source == "snapshot" else (
            e.get("volume_id") if source == "volume" else e.get("image_id"))
        out.append({"source_type": source, "destination_type": e.get("destination_type")
                    or "volume", "uuid": uuid, "boot_index": e.get("boot_index"),
                    "volume_size": e.get("volume_size"), "device_name": e.get("device_name"),
                    "delete_on_termination": e.get("delete_on_termination"),
                    "tag": e.get("tag")})
    return out + list(requested)


def _short(device: Any) -> str:
    return str(device or "").removeprefix("/dev/")


# What Block Storage copies from an image into a volume's image metadata that is no
# image property (Cinder's volume_glance_metadata of the image itself).
_NOT_PROPERTIES = frozenset({"image_id", "image_name", "checksum", "container_format",
                             "disk_format", "min_disk", "min_ram", "size"})


def _boot_image_properties(s: Session, inst: Instance, volume_id: str) -> None:
    """A server booting from a volume has the image properties of the image the volume
    was made from (its kernel, ramdisk, command line, shutdown timeout…), as Nova
    takes them from the volume's image metadata."""
    from gureum.volume.models import Volume

    v = s.get(Volume, volume_id)
    meta = dict(getattr(v, "image_metadata", None) or {})
    props = {k: str(val) for k, val in meta.items() if k not in _NOT_PROPERTIES}
    if not props and not meta:
        return
    sysmeta = dict(inst.system_metadata or {})
    sysmeta["image_properties"] = {**props, **sysmeta.get("image_properties", {})}
    if meta.get("disk_format"):
        sysmeta.setdefault("image_disk_format", meta["disk_format"])
    inst.system_metadata = sysmeta


def waiting_for(s: Session, instance_id: str) -> dict[str, str | None]:
    """The volumes a build still waits for: volume id → its status now."""
    volsvc = _volume_service()
    return {b.volume_id: volsvc.status_of(s, b.volume_id)
            for b in mappings(s, instance_id)
            if b.status == "boot" and b.volume_id is not None
            and b.attachment_id is None}  # made for the server (a reserved one is ready)


def plug_boot_volumes(s: Session, instance_id: str, host: str) -> None:
    """The build placed the server on ``host``: its volumes get connection info for it
    and turn in-use, attached to the server (the spawn then plugs them)."""
    volsvc = None
    for b in mappings(s, instance_id):
        if b.status != "boot" or b.volume_id is None:
            continue
        volsvc = volsvc or _volume_service()
        if b.attachment_id is None:  # made for the server; available now
            b.attachment_id = volsvc.reserve(s, b.volume_id, instance_id)
        connect(s, b, host)
        mark_attached(s, b, host)
    s.flush()
