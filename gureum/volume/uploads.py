"""Volume to image (``os-volume_upload_image``, ``openstack image create --volume``).

The API creates the image (queued, in the caller's project) and puts the volume
in ``uploading`` with the image named in its task, in one transaction; the
volume manager writes the volume's data into the image store (converted to
the asked disk format), activates the image, and puts the volume back where it
was. A failed copy removes the queued image, as Cinder does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from gureum.config import Settings
from gureum.context import RequestContext
from gureum.db import Database, compare_and_swap, utcnow
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import schemas
from gureum.volume.backends.base import BackendError, VolumeBackend
from gureum.volume.volumes import change_status, hand_over

log = logging.getLogger("gureum.volume")

DISK_FORMATS = ("raw", "qcow2")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "docker", "compressed")


def start_upload(s: Session, ctx: RequestContext, v: m.Volume, body: dict[str, Any]
                 ) -> dict[str, Any]:
    """Create the image and hand the copy over; the action's response body."""
    from gureum.image import service as images

    force = schemas.boolean(body.get("force", False), "force")
    allowed = ("available", "in-use") if force else ("available",)
    if v.status not in allowed:
        raise e.invalid_volume(f"Volume {v.id} status must be available or in-use (with "
                               f"force), but current status is: {v.status}.")
    name = schemas.text(body.get("image_name"), "image_name") or ""
    if not name:
        raise e.bad_request("Invalid input for field/attribute image_name. Value: None.",
                            "image_name")
    disk_format = schemas.one_of(body.get("disk_format", "raw"), "disk_format",
                                 DISK_FORMATS)
    container_format = schemas.one_of(body.get("container_format", "bare"),
                                      "container_format", CONTAINER_FORMATS)
    visibility = body.get("visibility", "private")
    schemas.one_of(visibility, "visibility", ("public", "private", "shared", "community"))
    protected = schemas.boolean(body.get("protected", False), "protected")
    image_body: dict[str, Any] = {"name": name, "disk_format": disk_format,
                                  "container_format": container_format,
                                  "visibility": visibility, "protected": protected}
    from gureum.image import patch

    # The source image's own properties go along (hw_*, os_*…), as Cinder copies
    # them; what Glance keeps for itself (ids, sizes, hashes, status) does not.
    skip = {"image_id", "image_name", "container_format", "disk_format", "min_disk",
            "min_ram", "owner", "visibility", "protected", "os_hidden", "tags", "name",
            *patch.DISALLOWED, *patch.READ_ONLY, *patch.RESERVED}
    for key, value in (v.image_metadata or {}).items():
        if key not in skip and not key.startswith(patch.RESERVED_PREFIX) and \
                isinstance(value, str):
            image_body[key] = value
    image = images.create_image(s, ctx, image_body)
    previous = v.status
    change_status(s, v, allowed, {"status": "uploading", "task": {
        "op": "upload", "image_id": image.id, "disk_format": disk_format,
        "previous_status": previous}})
    hand_over(s, "volume", v.id, ctx.request_id)
    from gureum.volume.views import iso

    return {"id": v.id, "updated_at": iso(v.updated_at),
            "status": "uploading", "display_description": v.description, "size": v.size,
            "volume_type": {"id": v.volume_type.id, "name": v.volume_type.name},
            "image_id": image.id, "container_format": container_format,
            "disk_format": disk_format, "image_name": name, "protected": protected,
            "visibility": visibility}


def copy_to_image(settings: Settings, db: Database, backend: VolumeBackend, volume_id: str,
                  location: str, task: dict[str, Any]) -> None:
    """The manager's half: write the data, then activate the image."""
    from gureum.image import models as im
    from gureum.image.store import HASH_ALGO, ImageStore, virtual_size

    image_id = str(task.get("image_id") or "")
    store = ImageStore(settings.image_store_dir)
    with db.session() as s:
        image = s.get(im.Image, image_id)
        if image is None:
            raise BackendError(f"image {image_id} is gone")
        if image.status == im.ACTIVE:
            return  # done before a restart
        compare_and_swap(s, im.Image, image_id, {"status": [im.QUEUED, im.SAVING]},
                         {"status": im.SAVING, "updated_at": utcnow()})
    target = store.path(image_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        backend.copy_to_image(volume_id, location, tmp, str(task.get("disk_format") or "raw"))
        written = store.hash_file(tmp)
        store.commit(written, image_id)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with db.session() as s:
        image = s.get(im.Image, image_id)
        activated = image is not None and compare_and_swap(
            s, im.Image, image_id, {"status": im.SAVING}, {
                "status": im.ACTIVE, "size": written.size, "checksum": written.checksum,
                "os_hash_algo": HASH_ALGO, "os_hash_value": written.os_hash_value,
                "virtual_size": virtual_size(image.disk_format, written.size, written.head),
                "updated_at": utcnow()})
    if not activated:
        store.delete(image_id)
        raise BackendError(f"image {image_id} was deleted during the upload")


def forget_image(db: Database, image_id: str) -> None:
    """A failed upload's image goes (it never had data)."""
    from gureum.image import models as im

    if not image_id:
        return
    try:
        with db.session() as s:
            image = s.get(im.Image, image_id)
            if image is not None and image.status in (im.QUEUED, im.SAVING):
                s.delete(image)
    except Exception:  # the volume's state matters more
        log.exception("could not remove image %s after a failed upload", image_id)
