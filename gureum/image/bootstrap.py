"""First start: the public `cirros` image every new cloud has, owned by the admin project.

``cirros_source`` is the one place that decides what the image holds; swap it
for a real bootable image and nothing else changes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from gureum.config import Settings
from gureum.db import Database, utcnow
from gureum.db.base import new_uuid
from gureum.identity import models as identity_models
from gureum.image import models as m
from gureum.image.store import HASH_ALGO, ImageStore, virtual_size

DEFAULT_IMAGE_NAME = "cirros"
ADMIN_PROJECT = "admin"
DEFAULT_DOMAIN_ID = "default"


@dataclass(frozen=True)
class ImageSource:
    """What a default image is: its formats, its properties, and its data."""

    disk_format: str
    container_format: str
    chunks: Iterator[bytes]
    min_disk: int = 0
    min_ram: int = 0
    properties: dict[str, str] = field(default_factory=dict)


def cirros_source() -> ImageSource:
    """A placeholder disk: 1 MiB of raw data with an MBR boot signature.

    It is real image data (upload, download and checksums all work on it) but
    boots nothing yet.
    """
    def chunks() -> Iterator[bytes]:
        sector = bytearray(512)
        banner = b"gureum placeholder disk: replace with a bootable image"
        sector[:len(banner)] = banner
        sector[510:512] = b"\x55\xaa"
        yield bytes(sector)
        yield bytes((1 << 20) - 512)

    return ImageSource("raw", "bare", chunks(),
                       properties={"os_distro": "cirros", "description":
                                   "A placeholder image created by gureum on first start"})


def admin_project_id(db: Database) -> str | None:
    with db.session(write=False) as s:
        return s.scalar(select(identity_models.Project.id).where(
            identity_models.Project.name == ADMIN_PROJECT,
            identity_models.Project.domain_id == DEFAULT_DOMAIN_ID))


def register_default_images(settings: Settings, db: Database, out: Any = sys.stderr
                            ) -> list[str]:
    """Register the default images that do not exist yet; return the new image ids."""
    owner = admin_project_id(db)
    if owner is None:
        return []
    with db.session(write=False) as s:
        if s.scalar(select(m.Image.id).where(m.Image.name == DEFAULT_IMAGE_NAME,
                                             m.Image.owner == owner)) is not None:
            return []
    source = cirros_source()
    store = ImageStore(settings.image_store_dir)
    image_id = new_uuid()
    written = store.write(image_id, source.chunks)
    store.commit(written, image_id)
    now = utcnow()
    try:
        with db.session() as s:
            s.add(m.Image(
                id=image_id, name=DEFAULT_IMAGE_NAME, status=m.ACTIVE, visibility="public",
                protected=False, os_hidden=False, owner=owner,
                disk_format=source.disk_format, container_format=source.container_format,
                size=written.size, checksum=written.checksum, os_hash_algo=HASH_ALGO,
                os_hash_value=written.os_hash_value,
                virtual_size=virtual_size(source.disk_format, written.size, written.head),
                min_disk=source.min_disk, min_ram=source.min_ram, created_at=now,
                updated_at=now, tags=[],
                properties=[m.ImageProperty(name=k, value=v)
                            for k, v in source.properties.items()]))
    except BaseException:
        store.delete(image_id)
        raise
    print(f"registered the public image {DEFAULT_IMAGE_NAME} ({image_id}, "
          f"{source.disk_format}, {written.size} bytes)", file=out)
    return [image_id]
