"""Nova's image proxy (/v2.1/images, gone from 2.36): images through the image service.

Old clients list, show and delete images and change their metadata (the
image's custom properties) through compute. Nothing here decides who may see
or change an image: the image service does (gureum/image), and this module
only translates: Glance's statuses to Nova's, the proxy's filters to image
queries, and Nova's ``metadata_items`` quota on the number of properties.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from gureum.compute.quotas import limits_for
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.errors import Forbidden, NotFound
from gureum.image import models as m
from gureum.image import policy
from gureum.image import service as images
from gureum.image.listing import ListQuery
from gureum.image.listing import list_images as list_visible

# Glance's image status → the one Nova's proxy shows.
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
          "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED",
          "killed": "ERROR", "deactivated": "ERROR"}
PROGRESS = {"queued": 25, "saving": 50, "active": 100}


def list_images(s: Session, ctx: RequestContext, limit: int, marker: str | None,
                name: str | None = None, status: str | None = None,
                min_ram: int | None = None, min_disk: int | None = None) -> list[m.Image]:
    """The images ctx sees, newest first; ``status`` is one of Nova's (ACTIVE, SAVING…)."""
    query = ListQuery(limit=limit, marker=marker, sort=[("created_at", "desc"),
                                                        ("id", "desc")])
    if name:
        query.conditions.append(m.Image.name == name)
    if status:
        query.conditions.append(m.Image.status.in_(
            [k for k, v in STATUS.items() if v == status] or ["-"]))
    if min_ram is not None:
        query.conditions.append(m.Image.min_ram >= min_ram)
    if min_disk is not None:
        query.conditions.append(m.Image.min_disk >= min_disk)
    found, _ = list_visible(s, ctx, query)
    return found


def get(s: Session, ctx: RequestContext, image_id: str) -> m.Image:
    try:
        return images.get_visible(s, ctx, image_id)
    except NotFound:
        raise NotFound("Image not found.") from None


def delete(s: Session, ctx: RequestContext, image_id: str) -> None:
    images.delete_image(s, ctx, get(s, ctx, image_id))


def change_metadata(s: Session, ctx: RequestContext, image_id: str,
                    mutate: Callable[[dict[str, str]], dict[str, str]],
                    settings: Settings) -> dict[str, str]:
    """Apply mutate to the image's custom properties; the new ones. Growing them past
    the project's ``metadata_items`` quota is Nova's 403."""
    image = get(s, ctx, image_id)
    policy.check_modify(ctx, image)
    old = image.props()
    new = mutate(dict(old))
    limit = limits_for(s, ctx.project_id or "", settings).get("metadata_items", -1)
    if len(new) > len(old) and 0 <= limit < len(new):
        raise Forbidden("Image metadata limit exceeded")
    image.properties = [p for p in image.properties if p.name in new]
    for key, value in new.items():
        if old.get(key) != value:
            images.set_property(image, key, value)
    images.touch(image)
    s.flush()
    return new
