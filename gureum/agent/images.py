"""The images a guest needs, made readable on this host before the driver runs.

The driver reads image files (``GuestSpec.image_path``; ``extra["kernel_path"]``
and ``extra["ramdisk_path"]`` for an image booted Glance's way with the
``kernel_id``/``ramdisk_id`` properties) and copies them into its own image
cache (``instances/_base``). The agent fills those paths before every call
that carries a spec (spawn, power on, reboot, rescue, resume, migrations…):
an image is looked up by id in the image store's directory
(``settings.image_store_dir``, ``<store>/<image id>``), read directly.

Limit: this needs the image store's directory to be visible from the compute
host (one machine, or a shared mount). A compute host without it gets specs
with empty paths; the driver then uses what its image cache already holds and
fails with a clear message otherwise. Fetching over the Image API for
distributed hosts comes later.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from gureum.config import Settings
from gureum.virt.driver import GuestSpec

_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def image_file(settings: Settings, image_id: str | None) -> str:
    """The local file of an active image, or "" when it is not readable here."""
    if not image_id or not _ID.match(str(image_id)):
        return ""
    path = Path(settings.image_store_dir) / str(image_id)
    return str(path) if path.is_file() else ""


def prepare(settings: Settings, spec: GuestSpec) -> GuestSpec:
    """The spec with the paths of its image, kernel and ramdisk filled where known."""
    extra: dict[str, Any] = dict(spec.extra)
    props = spec.image_properties or {}
    for key, prop in (("kernel_path", "kernel_id"), ("ramdisk_path", "ramdisk_id")):
        if props.get(prop) and not extra.get(key):
            found = image_file(settings, props.get(prop))
            if found:
                extra[key] = found
    image_path = spec.image_path or image_file(settings, spec.image_id)
    if image_path == spec.image_path and extra == spec.extra:
        return spec
    return dataclasses.replace(spec, image_path=image_path, extra=extra)


def rescue_image(settings: Settings, ref: str) -> str:
    """A rescue image given by id → its local file ("" stays "": the guest's own image)."""
    if ref and _ID.match(ref):
        return image_file(settings, ref)
    return ref
