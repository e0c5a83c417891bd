"""Server actions: whether an action may start, and handing it to the conductor.

An action the conductor carries out starts the same way every time, in the
caller's one transaction: the action table (compute/states.py) is checked and
the instance moves to the action's task_state with a compare-and-swap (of two
racing requests, one gets Nova's 409), the instance action is recorded for
os-instance-actions, and an outbox row hands the rest to the conductor, which
hears of it only once the transaction has committed (gureum/outbox.py).

Actions that are over once the row is written (lock, unlock, reset-state) and
the checks of the ones that ask an agent something (console output) are here
too; moves between hosts are in compute/moves.py. The caller owns the session
and has checked the policy rule of the action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gureum import outbox
from gureum.compute import capabilities, instances, policy, states
from gureum.compute.models import Instance
from gureum.compute.quotas import check_metadata_items
from gureum.compute.servers import find_image, image_properties, known_zones
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput


def begin(s: Session, ctx: RequestContext, inst: Instance, action: str,
          nova_action: str) -> None:
    """Move to the action's task_state (compare-and-swap), refuse what the host's driver
    cannot do (compute/capabilities.py), and record the instance action."""
    instances.start_task(s, inst, action)
    capabilities.check(s, inst, action)
    instances.start_action(s, inst.id, nova_action, ctx.request_id, ctx.user_id,
                           ctx.project_id)


def changeable(s: Session, ctx: RequestContext, server_id: str) -> Instance:
    """The server, if ctx sees it (404) and it is not locked against ctx (409)."""
    inst = instances.visible(s, ctx, server_id)
    instances.check_not_locked(ctx, inst)
    return inst


def start(s: Session, ctx: RequestContext, server_id: str, action: str, nova_action: str,
          params: dict[str, Any] | None = None) -> str:
    """Start an action the conductor runs with ``run_action``; the instance id."""
    inst = changeable(s, ctx, server_id)
    begin(s, ctx, inst, action, nova_action)
    outbox.add(s, "run_action", {"instance_id": inst.id, "action": action,
                                 "request_id": ctx.request_id, "params": params or {}})
    return inst.id


# -- actions that end here ------------------------------------------------------------

def lock(s: Session, ctx: RequestContext, server_id: str, reason: str | None) -> None:
    inst = instances.visible(s, ctx, server_id)
    instances.start_action(s, inst.id, "lock", ctx.request_id, ctx.user_id, ctx.project_id)
    # Nova remembers who locked: an owner cannot unlock what an admin locked.
    locked_by = "admin" if ctx.is_admin and inst.project_id != ctx.project_id else "owner"
    instances.update(s, inst.id, {"locked": True, "locked_by": locked_by,
                                  "locked_reason": reason})
    instances.finish_action(s, inst.id, ctx.request_id)


def unlock(s: Session, ctx: RequestContext, server_id: str) -> None:
    inst = instances.visible(s, ctx, server_id)
    if inst.locked and inst.locked_by == "admin":
        policy.authorize(ctx, "os_compute_api:os-lock-server:unlock:unlock_override")
    instances.start_action(s, inst.id, "unlock", ctx.request_id, ctx.user_id,
                           ctx.project_id)
    instances.update(s, inst.id, {"locked": False, "locked_by": None, "locked_reason": None})
    instances.finish_action(s, inst.id, ctx.request_id)


def reset_state(s: Session, ctx: RequestContext, server_id: str, vm_state: str) -> None:
    """Force vm_state (active or error) and clear task_state: the admin's recovery (S2).

    A compare-and-swap too: the state the admin saw is the one replaced (409 if it
    changed in between), and a workflow that held the old task_state then stops.
    """
    inst = instances.visible(s, ctx, server_id)
    instances.start_action(s, inst.id, "resetState", ctx.request_id, ctx.user_id,
                           ctx.project_id)
    instances.save(s, inst.id, {"vm_state": vm_state, "task_state": None},
                   expected_task_state=inst.task_state, expected_vm_state=inst.vm_state)
    instances.finish_action(s, inst.id, ctx.request_id)


# Nova asks the host for any server that has one; a resized server (VERIFY_RESIZE) runs
# on its new host and its console shows the new flavor before the user confirms.
CONSOLE_STATES = (states.ACTIVE, states.RESCUED, states.PAUSED, states.STOPPED,
                  states.SUSPENDED, states.RESIZED)


def console_target(s: Session, ctx: RequestContext, server_id: str) -> tuple[str, str]:
    """(host, instance id) whose agent has the console; 409 when there is no guest."""
    inst = instances.visible(s, ctx, server_id)
    if inst.vm_state not in CONSOLE_STATES or not inst.host:
        raise Conflict(f"Cannot 'os-getConsoleOutput' instance {inst.id} while it is in "
                       f"vm_state {inst.vm_state}")
    capabilities.check(s, inst, "os-getConsoleOutput")
    return inst.host, inst.id


def start_password_change(s: Session, ctx: RequestContext, server_id: str
                          ) -> tuple[str, str | None]:
    """changePassword is a call the request waits for (the password is never stored
    or handed over): move to updating_password; the caller asks the agent after the
    transaction, then ``finish_password_change``. (instance id, host)"""
    inst = changeable(s, ctx, server_id)
    begin(s, ctx, inst, "changePassword", "changePassword")
    return inst.id, inst.host


def finish_password_change(s: Session, ctx: RequestContext, instance_id: str,
                           host: str | None, error: str | None) -> Conflict | None:
    """Clear updating_password and record the outcome; Nova's 409 (to raise once this
    is committed) when it failed."""
    try:
        instances.save(s, instance_id, {"task_state": None},
                       expected_task_state=states.UPDATING_PASSWORD)
    except instances.StateConflict:
        pass  # reset or deleted meanwhile: theirs stands
    instances.event_finish(s, instance_id, ctx.request_id, "compute_set_admin_password",
                           "Error" if error else "Success", host=host, details=error)
    instances.finish_action(s, instance_id, ctx.request_id)
    if error is None:
        return None
    return Conflict(f"Failed to set admin password on {instance_id} because {error}")


def check_shelve_offload(s: Session, ctx: RequestContext, server_id: str) -> None:
    """Shelving offloads at once here (shelved_offload_time = 0), so a server is never
    left in "shelved": the table answers 409 as Nova does in the other states."""
    inst = instances.visible(s, ctx, server_id)
    states.check("shelveOffload", inst.id, inst.vm_state, inst.task_state,
                 launched=inst.launched_at is not None)


# -- snapshots, shelve, unshelve, rebuild -------------------------------------------------

# Image properties a snapshot does not take from its instance's image (Nova's
# SANITIZE_IMAGE_PROPERTIES and what names the original image itself).
_NOT_INHERITED = frozenset({"mappings", "image_location", "image_state", "image_id",
                            "block_device_mapping", "bdm_v2", "root_device_name",
                            "instance_uuid", "image_type", "base_image_ref",
                            "backup_type", "owner_user_name", "owner_id",
                            "gureum_test_guest"})


def _image_record(s: Session, ctx: RequestContext, inst: Instance, name: str,
                  metadata: dict[str, str], data: bool = True) -> str:
    """The image row a snapshot fills (queued until the conductor uploads the disk)."""
    from gureum.image.service import create_image

    # As Nova does, the snapshot keeps the instance's image properties that say how to
    # boot it (kernel_id, ramdisk_id, os_command_line, hw_*…), under the request's.
    inherited = {k: v for k, v in ((inst.system_metadata or {}).get("image_properties")
                                   or {}).items()
                 if k not in _NOT_INHERITED and isinstance(v, str)}
    props = {**inherited,
             **{k: v for k, v in metadata.items() if k not in ("id", "name", "status")}}
    formats = {"disk_format": "qcow2", "container_format": "bare"} if data else {}
    body = {"name": name, **formats,
            "visibility": "private", **props, "instance_uuid": inst.id,
            "image_type": "backup" if "backup_type" in props else "snapshot",
            "base_image_ref": inst.image_ref or "",
            "owner_user_name": ctx.user_name or ""}
    image = create_image(s, ctx, body)
    s.flush()
    return str(image.id)


def _snapshot_volume_backed(s: Session, ctx: RequestContext, inst: Instance, name: str,
                            metadata: dict[str, str]) -> str:
    """createImage of a server booted from a volume, as Nova does it: each of its volumes
    is snapshotted (forced: they are in use), and the image holds no data (size 0,
    active at once) but the properties ``block_device_mapping`` (the bdm_v2 entries,
    source snapshot, that make the volumes again), ``bdm_v2`` and ``root_device_name``.
    Booting from the image makes new volumes from those snapshots."""
    import json

    from gureum.compute import volumes as vols
    from gureum.image import models as image_models
    from gureum.image.service import get_visible

    policy.authorize(ctx, "os_compute_api:servers:create_image:allow_volume_backed")
    states.check("createImage", inst.id, inst.vm_state, inst.task_state,
                 launched=inst.launched_at is not None)
    volsvc = vols.volume_service()
    mapping = []
    for b in vols.mappings(s, inst.id):
        if b.status not in vols.PLUGGED or b.volume_id is None:
            continue
        snapshot_id, size = volsvc.snapshot_attached(s, ctx, b.volume_id,
                                                     f"snapshot for {name}")
        mapping.append({
            "source_type": "snapshot", "destination_type": "volume",
            "snapshot_id": snapshot_id, "volume_id": None, "image_id": None,
            "volume_size": size, "device_name": b.device_name, "boot_index": b.boot_index,
            "delete_on_termination": bool(b.delete_on_termination), "tag": b.tag,
            "device_type": "disk", "disk_bus": "virtio", "guest_format": None,
            "no_device": None, "volume_type": None})
    instances.start_action(s, inst.id, "createImage", ctx.request_id, ctx.user_id,
                           ctx.project_id)
    image_id = _image_record(s, ctx, inst, name, {
        **metadata, "root_device_name": vols.ROOT_DEVICE, "bdm_v2": "True",
        "block_device_mapping": json.dumps(mapping)}, data=False)
    image = get_visible(s, ctx, image_id)
    image.status, image.size = image_models.ACTIVE, 0  # a bucket of properties, no data
    instances.finish_action(s, inst.id, ctx.request_id)
    return image_id


def volume_backed(inst: Instance) -> bool:
    """The server boots from a volume (its root disk is no local disk to copy)."""
    return any(str(b.get("boot_index")) == "0" for b in inst.block_device_mapping or [])


def snapshot(s: Session, ctx: RequestContext, server_id: str, name: str,
             metadata: dict[str, str]) -> str:
    """createImage: the new image's id."""
    inst = changeable(s, ctx, server_id)
    if volume_backed(inst):
        return _snapshot_volume_backed(s, ctx, inst, name, metadata)
    begin(s, ctx, inst, "createImage", "createImage")
    image_id = _image_record(s, ctx, inst, name, metadata)
    outbox.add(s, "snapshot", {"instance_id": inst.id, "image_id": image_id,
                               "request_id": ctx.request_id})
    return image_id


def backup(s: Session, ctx: RequestContext, server_id: str, name: str,
           metadata: dict[str, str], backup_type: str, rotation: int) -> str:
    """createBackup: a snapshot kept in a rotation (only the newest ``rotation`` backups
    of its type stay); the new image's id."""
    inst = changeable(s, ctx, server_id)
    if volume_backed(inst):
        raise InvalidInput("It's not supported to backup volume backed instance.")
    begin(s, ctx, inst, "createBackup", "createBackup")
    image_id = _image_record(s, ctx, inst, name, {**metadata, "backup_type": backup_type})
    outbox.add(s, "snapshot", {"instance_id": inst.id, "image_id": image_id,
                               "request_id": ctx.request_id,
                               "backup": {"type": backup_type, "rotation": rotation}})
    return image_id


def shelve(s: Session, ctx: RequestContext, server_id: str) -> None:
    inst = changeable(s, ctx, server_id)
    begin(s, ctx, inst, "shelve", "shelve")
    image_id = _image_record(s, ctx, inst, f"{inst.name}-shelved", {})
    outbox.add(s, "shelve", {"instance_id": inst.id, "image_id": image_id,
                             "request_id": ctx.request_id})


def unshelve(s: Session, ctx: RequestContext, server_id: str, zone: str | None,
             host: str | None, settings: Settings) -> None:
    from gureum.compute.moves import check_host

    inst = changeable(s, ctx, server_id)
    if host:
        check_host(s, host, None)
    if zone and zone not in known_zones(s, settings):
        raise InvalidInput("The requested availability zone is not available",
                           field="unshelve.availability_zone")
    begin(s, ctx, inst, "unshelve", "unshelve")
    outbox.add(s, "unshelve", {"instance_id": inst.id, "request_id": ctx.request_id,
                               "availability_zone": zone, "host": host})


@dataclass
class Rebuild:
    """What a rebuild changes besides the image: instance attributes by column name
    (name, metadata_, description, access_ip_v4, access_ip_v6, user_data)."""

    image_ref: str
    changes: dict[str, Any] = field(default_factory=dict)


def rebuild(s: Session, ctx: RequestContext, server_id: str, request: Rebuild,
            settings: Settings) -> Instance:
    """Rebuild on the same host from an image; the instance as it now is."""
    inst = changeable(s, ctx, server_id)
    metadata = request.changes.get("metadata_")
    if metadata:
        check_metadata_items(s, inst.project_id, settings, len(metadata))
    image = find_image(s, ctx, request.image_ref)
    begin(s, ctx, inst, "rebuild", "rebuild")
    sysmeta = dict(inst.system_metadata or {})
    sysmeta["image_properties"] = image_properties(image)
    instances.update(s, inst.id, {**request.changes, "image_ref": image.id,
                                  "system_metadata": sysmeta})
    s.refresh(inst)
    outbox.add(s, "rebuild", {"instance_id": inst.id, "request_id": ctx.request_id})
    return inst
