"""What Compute asks of Block Storage (server add/remove volume, boot from volume,
moves): the same database, the caller's session and transaction.

These are the agreed calls of lane ``volcompute`` (HELPERS.md). They share the
state machine of ``gureum/volume/attach.py`` with Cinder's own API, and answer
a volume in the wrong state with 409 (InvalidState), as Compute reports it,
instead of Cinder's 400.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.errors import InvalidInput, InvalidState, NotFound
from gureum.volume import attach as att
from gureum.volume import models as m
from gureum.volume import volumes


@contextlib.contextmanager
def _as_conflict() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        raise InvalidState(exc.message) from None


def _volume(s: Session, volume_id: str) -> m.Volume:
    v = s.get(m.Volume, volume_id)
    if v is None:
        raise NotFound(f"Volume {volume_id} could not be found.", kind="volume")
    return v


def get_for_attach(s: Session, ctx_project_id: str | None, volume_id: str,
                   is_admin: bool = False) -> m.Volume:
    """The volume a server of ``ctx_project_id`` may attach: 404 when it is not the
    project's (unless admin), 409 when it is not available (multiattach: in-use too)."""
    v = s.get(m.Volume, volume_id)
    if v is None or (not is_admin and v.project_id != ctx_project_id):
        raise NotFound(f"Volume {volume_id} could not be found.", kind="volume")
    ok = v.status == "available" or (v.multiattach and v.status == "in-use")
    if not ok:
        raise InvalidState(f"Invalid volume: volume '{volume_id}' status must be 'available'. "
                           f"Currently in '{v.status}'")
    return v


def reserve(s: Session, volume_id: str, instance_id: str) -> str:
    """available → attaching, with a reserved attachment for the server; its id."""
    with _as_conflict():
        return att.reserve(s, _volume(s, volume_id), instance_id).id


def attach(s: Session, volume_id: str, instance_id: str, host: str | None,
           mountpoint: str | None, mode: str = "rw") -> str:
    """→ in-use with an attached attachment row; returns the attachment id."""
    with _as_conflict():
        return att.attach(s, _volume(s, volume_id), instance_id, host, mountpoint, mode).id


def connection_info(s: Session, volume_id: str, host: str) -> dict[str, Any]:
    """``{"driver_volume_type": "file", "data": {"path", "format", "volume_id", …}}``."""
    with _as_conflict():
        return att.connection_info(_volume(s, volume_id), host)


def unreserve(s: Session, volume_id: str, instance_id: str | None = None) -> None:
    v = _volume(s, volume_id)
    with _as_conflict():
        mine = None
        if instance_id:
            mine = next((a for a in v.attachments if a.instance_id == instance_id
                         and a.attach_status in ("reserved", "attaching")), None)
        att.unreserve(s, v, mine)


def begin_detaching(s: Session, volume_id: str) -> None:
    with _as_conflict():
        att.begin_detaching(s, _volume(s, volume_id))


def roll_detaching(s: Session, volume_id: str) -> None:
    with _as_conflict():
        att.roll_detaching(s, _volume(s, volume_id))


def detach(s: Session, volume_id: str, attachment_id: str | None) -> None:
    with _as_conflict():
        att.detach(s, _volume(s, volume_id), attachment_id)


def attachments_of(s: Session, instance_id: str) -> list[m.VolumeAttachment]:
    """The live attachments of a server (for moves and deletes)."""
    return list(s.scalars(select(m.VolumeAttachment).where(
        m.VolumeAttachment.instance_id == instance_id,
        m.VolumeAttachment.attach_status != "detached")))


def update_attachment_host(s: Session, attachment_id: str, host: str) -> None:
    """A server moved: its attachment now names the new host."""
    a = s.get(m.VolumeAttachment, attachment_id)
    if a is not None:
        a.attached_host = host


def create_for_boot(s: Session, ctx: RequestContext, size: int | None, image_id: str | None,
                    name: str | None = None, snapshot_id: str | None = None) -> str:
    """A new volume for a server to boot from (block_device_mapping_v2 source image with
    destination volume): its id. The volume is ``creating`` until the conductor filled
    it; wait for ``available`` before attaching."""
    body: dict[str, Any] = {"name": name}
    if size is not None:
        body["size"] = size
    if image_id:
        body["imageRef"] = image_id
    if snapshot_id:
        body["snapshot_id"] = snapshot_id
    return volumes.create_volume(s, ctx, body).id


def snapshot_attached(s: Session, ctx: RequestContext, volume_id: str, name: str,
                      description: str | None = None) -> tuple[str, int]:
    """A snapshot of a volume a server uses (Cinder's force: in-use is taken), made by
    the volume manager after this transaction: its id and size (GB)."""
    from gureum.volume import snapshots

    snap = snapshots.create_snapshot(s, ctx, {"volume_id": volume_id, "force": True,
                                              "name": name, "description": description})
    return snap.id, int(snap.size)


def status_of(s: Session, volume_id: str) -> str | None:
    v = s.get(m.Volume, volume_id)
    return None if v is None else v.status


def check_swap(s: Session, ctx_project_id: str | None, old_volume_id: str,
               new_volume_id: str, is_admin: bool = False) -> None:
    """Nova's checks of a swap volume's two volumes, each a 400 (Nova's InvalidVolume; a
    new volume it cannot find is a 400 too: it is named in the body, not the URL)."""
    new = s.get(m.Volume, new_volume_id)
    if new is None or (not is_admin and new.project_id != ctx_project_id):
        raise InvalidInput(f"Volume {new_volume_id} could not be found.", field="volumeId")
    if new.status != "available":
        raise InvalidInput(f"Invalid volume: volume '{new_volume_id}' status must be "
                           f"'available'. Currently in '{new.status}'", field="volumeId")
    old = _volume(s, old_volume_id)
    if old.status != "in-use":
        raise InvalidInput(f"Invalid volume: volume '{old_volume_id}' status must be "
                           f"'in-use'. Currently in '{old.status}'", field="volume_id")
    if len(att._live(old)) > 1:
        raise InvalidInput("Swapping multi-attach volumes with more than one read/write "
                           "attachment is not supported.", field="volume_id")
    if int(new.size or 0) < int(old.size or 0):
        raise InvalidInput("Invalid volume: New volume must be the same size or larger.",
                           field="volumeId")
