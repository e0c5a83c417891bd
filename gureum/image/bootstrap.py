"""First start: the public `cirros` image every new cloud has, owned by the admin project.

On the fake driver ``cirros`` is a placeholder disk (``cirros_source``). On the QEMU
driver it is the test guest gureum builds from Debian's packages (gureum/testimage):
``cirros-kernel`` (aki), ``cirros-ramdisk`` (ari) and ``cirros`` (qcow2, with
``kernel_id``, ``ramdisk_id`` and ``os_command_line``), as Glance holds an image
with its own kernel and ramdisk. A cloud whose ``cirros`` is still the placeholder
gets the test guest when it starts on the QEMU driver.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
PLACEHOLDER_DESCRIPTION = "A placeholder image created by gureum on first start"
# On a registered test guest: its build (gureum.testimage.GuestImage.key).
TEST_GUEST_PROPERTY = "gureum_test_guest"


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
                       properties={"os_distro": "cirros",
                                   "description": PLACEHOLDER_DESCRIPTION})


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def admin_project_id(db: Database) -> str | None:
    with db.session(write=False) as s:
        return s.scalar(select(identity_models.Project.id).where(
            identity_models.Project.name == ADMIN_PROJECT,
            identity_models.Project.domain_id == DEFAULT_DOMAIN_ID))


def register_default_images(settings: Settings, db: Database, out: Any = sys.stderr
                            ) -> list[str]:
    """Register the default images that do not exist yet; return the new image ids.

    On the QEMU driver that is the test guest (built, or found in its cache); when
    it cannot be built here the placeholder is registered, with a line saying why.
    """
    owner = admin_project_id(db)
    if owner is None:
        return []
    if _effective_driver(settings) == "qemu":
        return ensure_test_guest(settings, db, out)
    if _current_cirros(db, owner) is not None:
        return []
    return [_register(settings, db, owner, DEFAULT_IMAGE_NAME, cirros_source(), out)]


def _effective_driver(settings: Settings) -> str:
    from gureum.virt import resolve_driver

    return resolve_driver(settings.compute.driver)


def ensure_test_guest(settings: Settings, db: Database, out: Any = sys.stderr,
                      replace: bool = False, output: Path | None = None) -> list[str]:
    """Make ``cirros`` the test guest unless it already is one (or, with ``replace``,
    unless it is this very build). A ``cirros`` it supersedes is renamed
    ``cirros-<id prefix>`` and hidden, not deleted: servers may use it."""
    from gureum import testimage

    owner = admin_project_id(db)
    if owner is None:
        return []
    current = _current_cirros(db, owner)
    current_key = None if current is None else current[1].get(TEST_GUEST_PROPERTY)
    if current_key is not None and not replace:
        return []
    try:
        image = testimage.build(output or testimage.default_output(settings.data_dir),
                                out=out)
    except testimage.TestImageError as exc:
        print(f"the test guest cannot be built here ({exc.message}); cirros is a "
              "placeholder that boots nothing", file=out)
        if current is not None:
            return []
        return [_register(settings, db, owner, DEFAULT_IMAGE_NAME, cirros_source(), out)]
    if current_key == image.key:
        return []
    if current is not None:
        _retire(db, current[0])
    return register_test_guest(settings, db, owner, image, out)


def upgrade_placeholder(settings: Settings, db: Database, out: Any = sys.stderr
                        ) -> list[str]:
    """A restart on the QEMU driver: a ``cirros`` that is still the placeholder becomes
    the test guest. A deleted ``cirros`` stays deleted, as on the fake driver."""
    owner = admin_project_id(db)
    current = None if owner is None else _current_cirros(db, owner)
    if current is None or TEST_GUEST_PROPERTY in current[1]:
        return []
    return ensure_test_guest(settings, db, out)


def register_test_guest(settings: Settings, db: Database, owner: str, image: Any,
                        out: Any = sys.stderr) -> list[str]:
    """Register a built test guest (gureum.testimage.GuestImage) as cirros-kernel,
    cirros-ramdisk and cirros."""
    from gureum import testimage

    common = {"os_distro": "cirros", TEST_GUEST_PROPERTY: image.key}
    kernel_id = _register(settings, db, owner, f"{DEFAULT_IMAGE_NAME}-kernel", ImageSource(
        "aki", "aki", _file_chunks(image.kernel),
        properties={**common, "description": f"Linux {image.kernel_version} (Debian's "
                    "linux-image-amd64) for the gureum test guest"}), out)
    ramdisk_id = _register(settings, db, owner, f"{DEFAULT_IMAGE_NAME}-ramdisk", ImageSource(
        "ari", "ari", _file_chunks(image.ramdisk),
        properties={**common, "description": "busybox initramfs of the gureum test guest"}),
        out)
    disk_id = _register(settings, db, owner, DEFAULT_IMAGE_NAME, ImageSource(
        "qcow2", "bare", _file_chunks(image.disk), properties={
            **common, "kernel_id": kernel_id, "ramdisk_id": ramdisk_id,
            "os_command_line": testimage.DEFAULT_COMMAND_LINE,
            "description": "The gureum test guest (gureum/testimage): prints "
            f"{testimage.READY_MARKER}, its sizes and a boot counter on ttyS0"}), out)
    return [kernel_id, ramdisk_id, disk_id]


def _current_cirros(db: Database, owner: str) -> tuple[str, dict[str, str]] | None:
    with db.session(write=False) as s:
        image = s.scalars(select(m.Image).where(
            m.Image.name == DEFAULT_IMAGE_NAME, m.Image.owner == owner,
            m.Image.os_hidden.is_(False)).order_by(m.Image.created_at.desc())).first()
        return None if image is None else (image.id, image.props())


def _retire(db: Database, image_id: str) -> None:
    with db.session() as s:
        image = s.get(m.Image, image_id)
        if image is not None:
            image.name = f"{DEFAULT_IMAGE_NAME}-{image_id[:8]}"
            image.os_hidden = True
            image.updated_at = utcnow()


def _register(settings: Settings, db: Database, owner: str, name: str, source: ImageSource,
              out: Any) -> str:
    store = ImageStore(settings.image_store_dir)
    image_id = new_uuid()
    written = store.write(image_id, source.chunks)
    store.commit(written, image_id)
    now = utcnow()
    try:
        with db.session() as s:
            s.add(m.Image(
                id=image_id, name=name, status=m.ACTIVE, visibility="public",
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
    print(f"registered the public image {name} ({image_id}, "
          f"{source.disk_format}, {written.size} bytes)", file=out)
    return image_id
