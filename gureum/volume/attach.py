"""Attaching a volume to a server: reserve, attach, begin/roll back detaching, detach.

Cinder's legacy actions (``os-reserve``, ``os-attach``…), the attachments API
(3.27+) and Compute (``gureum/volume/service.py``) all go through these, so a
volume has one state machine whoever drives it:

    available --reserve--> attaching --attach--> in-use --begin_detaching-->
    detaching --detach--> available      (unreserve / roll_detaching go back)

A volume's attachments are rows from the moment they are reserved; a
multiattach volume may have several, and is available again only when its
last one goes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.db import utcnow
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume.backends import current_backend
from gureum.volume.volumes import change_status


def _live(v: m.Volume) -> list[m.VolumeAttachment]:
    return [a for a in v.attachments if a.attach_status != "detached"]


def reserve(s: Session, v: m.Volume, instance_id: str | None,
            status: str = "reserved") -> m.VolumeAttachment:
    """A new attachment row; the volume goes available → attaching (or stays in-use
    for another attachment of a multiattach volume)."""
    if v.multiattach and v.status in ("in-use", "attaching", "reserved"):
        if instance_id and any(a.instance_id == instance_id for a in _live(v)):
            raise e.invalid_volume(f"Volume {v.id} is already attached to server "
                                   f"{instance_id}.")
    else:
        change_status(s, v, "available", {"status": "attaching",
                                           "attach_status": "attaching"},
                      reason=f"Volume {v.id} status must be available to reserve, but the "
                      f"status is {v.status}.")
    a = m.VolumeAttachment(volume_id=v.id, instance_id=instance_id, attach_status=status,
                           created_at=utcnow())
    s.add(a)
    s.flush()
    s.refresh(v)
    return a


def unreserve(s: Session, v: m.Volume, attachment: m.VolumeAttachment | None = None) -> None:
    """Back from attaching: the reserved attachments (or the one named) go."""
    gone = [attachment] if attachment is not None else [
        a for a in _live(v) if a.attach_status in ("reserved", "attaching")]
    for a in gone:
        s.delete(a)
    s.flush()
    s.refresh(v)
    if not _live(v) and v.status in ("attaching", "reserved", "in-use", "detaching"):
        change_status(s, v, v.status, {"status": "available", "attach_status": "detached"})


def attach(s: Session, v: m.Volume, instance_id: str | None, host: str | None,
           mountpoint: str | None, mode: str = "rw",
           attachment: m.VolumeAttachment | None = None) -> m.VolumeAttachment:
    """The attachment (the one reserved for this server, else a new one) becomes attached;
    the volume in-use."""
    if attachment is None:
        attachment = next((a for a in _live(v) if a.instance_id == instance_id
                           and a.attach_status in ("reserved", "attaching")), None)
    if attachment is None:
        if v.status == "available" or (v.multiattach and v.status == "in-use"):
            attachment = reserve(s, v, instance_id)
        else:
            raise e.invalid_volume(f"Volume {v.id} status must be available or attaching to "
                                   f"attach, but current status is: {v.status}.")
    if v.status not in ("attaching", "reserved", "in-use"):
        raise e.invalid_volume(f"Volume {v.id} status must be attaching to attach, but "
                               f"current status is: {v.status}.")
    now = utcnow()
    attachment.instance_id = instance_id or attachment.instance_id
    attachment.attached_host = host
    attachment.mountpoint = mountpoint
    attachment.attach_mode = mode
    attachment.attach_status = "attached"
    attachment.attach_time = now
    attachment.updated_at = now
    if v.status != "in-use":
        change_status(s, v, v.status, {"status": "in-use", "attach_status": "attached"})
    admin = dict(v.admin_metadata or {})
    admin["attached_mode"] = mode
    v.admin_metadata = admin
    s.flush()
    return attachment


def begin_detaching(s: Session, v: m.Volume) -> None:
    change_status(s, v, "in-use", {"status": "detaching", "attach_status": "detaching"},
                  reason=f"Unable to detach volume. Volume status must be 'in-use' and "
                  f"attach_status must be 'attached' to detach. Currently: status: "
                  f"'{v.status}', attach_status: '{v.attach_status}.'")


def roll_detaching(s: Session, v: m.Volume) -> None:
    if v.status == "detaching":
        change_status(s, v, "detaching", {"status": "in-use", "attach_status": "attached"})


def find_attachment(v: m.Volume, attachment_id: str | None) -> m.VolumeAttachment:
    live = _live(v)
    if attachment_id:
        for a in live:
            if a.id == attachment_id:
                return a
        raise e.not_found("attachment", attachment_id)
    if len(live) == 1:
        return live[0]
    if not live:
        raise e.invalid_volume(f"Volume {v.id} is not attached.")
    raise e.invalid_volume("Detach volume failed: Volume is attached to several servers; "
                           "attachment_id is required.")


def detach(s: Session, v: m.Volume, attachment_id: str | None) -> None:
    """The attachment goes; the volume is available once none is left."""
    a = find_attachment(v, attachment_id)
    if v.status not in ("in-use", "detaching", "attaching", "reserved", "error_attaching"):
        raise e.invalid_volume(f"Volume {v.id} status must be in-use or detaching to detach, "
                               f"but current status is: {v.status}.")
    s.delete(a)
    s.flush()
    s.refresh(v)
    if not _live(v):
        admin = dict(v.admin_metadata or {})
        admin.pop("attached_mode", None)
        change_status(s, v, v.status, {"status": "available", "attach_status": "detached",
                                       "admin_metadata": admin})
    elif v.status == "detaching":
        change_status(s, v, "detaching", {"status": "in-use", "attach_status": "attached"})


def connection_info(v: m.Volume, host: str) -> dict[str, Any]:
    if not v.provider_location:
        raise e.invalid_volume(f"Volume {v.id} has no data yet (status {v.status}).")
    info = current_backend().connection_info(v.id, v.provider_location, host)
    info["data"]["access_mode"] = "ro" if (v.admin_metadata or {}).get(
        "readonly") == "True" else "rw"
    return info
