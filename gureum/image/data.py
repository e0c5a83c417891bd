"""Image data: upload, staging and glance-direct import, download ranges.

An upload is three short transactions around a long stream, never one
transaction held open while bytes arrive:

1. queued → saving (compare-and-swap: two concurrent uploads, one wins, 409);
2. the body streams to a temporary file, hashed on the way;
3. the file is renamed into place and saving → active with size and hashes.

Any failure in 2 puts the image back to queued and removes the partial file.
If the image was deleted during the upload, step 3 finds nothing to update,
removes the data and answers 410 Gone, as Glance does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gureum.context import RequestContext
from gureum.db import Database, compare_and_swap, utcnow
from gureum.errors import (
    Conflict,
    Gone,
    InvalidInput,
    PayloadTooLarge,
    RangeNotSatisfiable,
)
from gureum.image import models as m
from gureum.image import policy, service
from gureum.image.store import HASH_ALGO, ImageStore, Written, virtual_size

log = logging.getLogger("gureum.image")

IMPORT_METHODS = ("glance-direct",)


def _begin(db: Database, ctx: RequestContext, image_id: str, source: str, target: str,
           rule: str, need_formats: bool) -> m.Image:
    with db.session() as s:
        image = service.get_visible(s, ctx, image_id, for_update=True)
        policy.check_modify(ctx, image, rule)
        if image.status != source:
            raise Conflict(f"Image status transition from '{image.status}' to '{target}' is "
                           "not allowed")
        missing = [k for k in ("disk_format", "container_format") if not getattr(image, k)]
        if need_formats and missing:
            noun = "Property" if len(missing) == 1 else "Properties"
            raise InvalidInput(f"{noun} {', '.join(missing)} must be set prior to saving data.",
                               field=missing[0])
        if not compare_and_swap(s, m.Image, image.id, {"status": source},
                                {"status": target, "updated_at": utcnow()}):
            raise Conflict(f"Image {image_id} changed status; try again.")
        s.expunge(image)
        return image


def _restore(db: Database, image_id: str, from_status: str) -> None:
    """Back to queued after a failed write (nothing happens if the image is gone)."""
    try:
        with db.session() as s:
            compare_and_swap(s, m.Image, image_id, {"status": from_status},
                             {"status": m.QUEUED, "size": None, "virtual_size": None,
                              "updated_at": utcnow()})
    except Exception:  # the caller's error matters more than this one
        log.exception("could not put image %s back to queued", image_id)


def _activate(db: Database, image: m.Image, written: Written, from_status: str) -> bool:
    with db.session() as s:
        return compare_and_swap(s, m.Image, image.id, {"status": from_status}, {
            "status": m.ACTIVE, "size": written.size, "checksum": written.checksum,
            "os_hash_algo": HASH_ALGO, "os_hash_value": written.os_hash_value,
            "virtual_size": virtual_size(image.disk_format, written.size, written.head),
            "updated_at": utcnow()})


def _gone(image_id: str) -> Gone:
    return Gone(f"Image {image_id} could not be found after upload. The image may have been "
                "deleted during the upload, cleaning up the chunks uploaded.")


def upload(db: Database, store: ImageStore, ctx: RequestContext, image_id: str,
           chunks: Iterable[bytes], expected_size: int | None, max_size: int) -> None:
    """PUT /v2/images/{id}/file: queued → saving → active."""
    if max_size and expected_size is not None and expected_size > max_size:
        raise PayloadTooLarge(f"The incoming image is too large: {expected_size} bytes, at "
                              f"most {max_size} allowed.")
    image = _begin(db, ctx, image_id, m.QUEUED, m.SAVING, "upload_image", need_formats=True)
    try:
        written = store.write(image.id, chunks, max_size=max_size,
                              expected_size=expected_size)
    except BaseException:
        _restore(db, image.id, m.SAVING)
        raise
    store.commit(written, image.id)
    try:
        activated = _activate(db, image, written, m.SAVING)
    except BaseException:
        store.delete(image.id)
        _restore(db, image.id, m.SAVING)
        raise
    if not activated:
        store.delete(image.id)
        raise _gone(image.id)


def stage(db: Database, store: ImageStore, ctx: RequestContext, image_id: str,
          chunks: Iterable[bytes], expected_size: int | None, max_size: int) -> None:
    """PUT /v2/images/{id}/stage: queued → uploading, data in the staging area."""
    image = _begin(db, ctx, image_id, m.QUEUED, m.UPLOADING, "upload_image",
                   need_formats=False)
    try:
        written = store.write(image.id, chunks, staging=True, max_size=max_size,
                              expected_size=expected_size)
        store.commit(written, image.id, staging=True)
    except BaseException:
        _restore(db, image.id, m.UPLOADING)
        raise
    with db.session(write=False) as s:
        still_there = s.get(m.Image, image.id) is not None
    if not still_there:
        store.delete(image.id, staging=True)
        raise _gone(image.id)


def import_staged(db: Database, store: ImageStore, ctx: RequestContext, image_id: str,
                  method: str) -> None:
    """POST /v2/images/{id}/import (glance-direct): uploading → importing → active.

    The staged file is local, so the import finishes before the 202 is sent.
    """
    if method not in IMPORT_METHODS:
        raise InvalidInput(f"Unknown import method name '{method}'.", field="method.name")
    with db.session(write=False) as s:
        image = service.get_visible(s, ctx, image_id)
        if image.status != m.UPLOADING:
            raise Conflict("Image needs to be staged before 'glance-direct' method can be "
                           "used")
    image = _begin(db, ctx, image_id, m.UPLOADING, m.IMPORTING, "modify_image",
                   need_formats=True)
    try:
        try:
            written = store.hash_file(store.path(image.id, staging=True))
        except FileNotFoundError:
            raise Conflict(f"The staged data of image {image.id} is missing; stage it "
                           "again.") from None
        store.commit(written, image.id)
        activated = _activate(db, image, written, m.IMPORTING)
    except BaseException:
        store.delete(image.id)
        store.delete(image.id, staging=True)
        _restore(db, image.id, m.IMPORTING)
        raise
    if not activated:
        store.delete(image.id)
        raise _gone(image.id)


# -- download ------------------------------------------------------------------------

@dataclass(frozen=True)
class Slice:
    offset: int
    length: int
    partial: bool


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def byte_range(header: str | None, size: int) -> Slice:
    """The part of the data a Range header asks for (one range only, as in Glance)."""
    if header is None:
        return Slice(0, size, False)
    if "," in header:
        raise InvalidInput("Requests with multiple ranges are not supported in Glance. You "
                           "may make multiple single-range requests instead.", field="Range")
    match = _RANGE.match(header)
    if match is None or not (match.group(1) or match.group(2)):
        raise RangeNotSatisfiable("Invalid Range header.")
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiable("Invalid Range header.")
        start = max(size - count, 0)
        end = size - 1
    else:
        start = int(first)
        end = size - 1 if not last else min(int(last), size - 1)
        if last and int(last) < start:
            raise RangeNotSatisfiable("Invalid Range header.")
    if start >= size:
        raise RangeNotSatisfiable("Invalid start position in Range header. Start position "
                                  f"MUST be in the inclusive range [0, {max(size - 1, 0)}].")
    return Slice(start, end - start + 1, True)


def check_downloadable(ctx: RequestContext, image: m.Image, store: ImageStore) -> bool:
    """Policy for GET /file; False when there is no data to send (Glance answers 204)."""
    policy.check_download(ctx, image)
    if image.status not in (m.ACTIVE, m.DEACTIVATED) or image.size is None:
        return False
    if not store.exists(image.id):
        log.warning("image %s is %s but its data is missing from the store", image.id,
                    image.status)
        return False
    return True
