"""Images: lookup with visibility, create, JSON-patch updates, delete, actions, tags.

Every function takes the request context and an open session; the caller (an
API handler, bootstrap) owns the transaction. Image data (the store) is never
touched here except through the names handed back to the caller, who removes
files only after the transaction that forgot them has committed.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db import compare_and_swap, utcnow
from gureum.db.base import new_uuid
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from gureum.image import models as m
from gureum.image import patch, policy, schemas
from gureum.validation import validate

# Glance's default quotas (image_property_quota, image_tag_quota, image_member_quota).
MAX_PROPERTIES = 128
MAX_TAGS = 128
MAX_MEMBERS = 128
MAX_INT = 2**31 - 1
MAX_VALUE_BYTES = 65535  # a TEXT column on MariaDB
CORE = ("name", "visibility", "protected", "os_hidden", "owner", "disk_format",
        "container_format", "min_disk", "min_ram", "tags")
_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def check_text(value: str, field: str, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """Text every database stores: no NUL, no lone surrogates, bounded."""
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"Invalid input for field '{field}': not valid UTF-8 text.",
                           field=field) from None
    if b"\x00" in encoded:
        raise InvalidInput(f"Invalid input for field '{field}': NUL characters are not "
                           "allowed.", field=field)
    if len(encoded) > max_bytes:
        raise InvalidInput(f"Invalid input for field '{field}': longer than {max_bytes} "
                           "bytes.", field=field)
    return value


_FOUR_BYTE = re.compile("[\U00010000-\U0010ffff]")


def check_stored_text(value: str, field: str, max_bytes: int = MAX_VALUE_BYTES,
                      what: str = "value") -> str:
    """Text an image keeps: ``check_text``, and no character beyond U+FFFF.

    Glance refuses 4-byte UTF-8 characters in every value it writes (its
    ``no_4byte_params``), with one wording for property names, one for values
    and one for bare parameters (tags, members); ``what`` picks it.
    """
    check_text(value, field, max_bytes)
    if _FOUR_BYTE.search(value):
        message = {"name": "Property names can't contain 4 byte unicode.",
                   "param": "Param values can't contain 4 byte unicode."}.get(
            what, f"{field.title()} can't contain 4 byte unicode characters.")
        raise InvalidInput(message, field=field)
    return value


def flush_or_conflict(s: Session, message: str) -> None:
    """Flush; a unique key another request just took is a 409, not a 500."""
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(message) from None


def image_not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}", kind="image")


def member_status(s: Session, image: m.Image, project_id: str | None) -> str | None:
    if project_id is None or image.visibility != "shared":
        return None
    row = s.get(m.ImageMember, (image.id, project_id))
    return row.status if row is not None else None


def get_visible(s: Session, ctx: RequestContext, image_id: str,
                for_update: bool = False) -> m.Image:
    """The image if the caller may see it; 404 otherwise (never 403)."""
    policy.check_read(ctx, "get_image")
    if not _ID.match(image_id):
        raise image_not_found(image_id)
    stmt = select(m.Image).where(m.Image.id == image_id)
    if for_update:
        stmt = stmt.with_for_update()
    image = s.scalars(stmt).first()
    if image is None or not policy.is_visible(ctx, image,
                                              member_status(s, image, ctx.project_id)):
        raise image_not_found(image_id)
    return image


def touch(image: m.Image) -> None:
    image.updated_at = utcnow()


# -- create --------------------------------------------------------------------------

def create_image(s: Session, ctx: RequestContext, body: Any) -> m.Image:
    if not isinstance(body, dict):
        raise InvalidInput("Invalid input for the request body: a JSON object is expected.")
    for key in patch.DISALLOWED:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    validate(schemas.IMAGE, body)
    for key in body:
        if len(key) > 255:
            raise InvalidInput("Custom property should not be greater than 255 characters.",
                               field=key[:40])
        check_stored_text(key, key[:40], what="name")
        if key == "locations":
            raise Forbidden("Attribute 'locations' is reserved.")
        if key != "id":
            patch.check_name(key)
    owner = body.get("owner", ctx.project_id)
    if isinstance(owner, str):
        check_stored_text(owner, "owner")
    policy.check_create(ctx, owner)
    policy.check_visibility(ctx, body.get("visibility"))
    image_id = body.get("id")
    if image_id is not None and s.get(m.Image, image_id) is not None:
        raise Conflict(f"An image with identifier {image_id} already exists")
    now = utcnow()
    image = m.Image(id=image_id or new_uuid(), owner=owner, status=m.QUEUED, created_at=now,
                    updated_at=now, visibility="shared", protected=False, os_hidden=False,
                    min_disk=0, min_ram=0, properties=[], tags=[])
    for key, value in body.items():
        if key in ("id", "owner"):
            continue
        set_attribute(image, key, value, creating=True)
    s.add(image)
    flush_or_conflict(s, f"An image with identifier {image.id} already exists")
    return image


def set_attribute(image: m.Image, key: str, value: Any, creating: bool = False) -> None:
    """Set a core attribute or custom property (already schema-validated)."""
    if key in ("min_disk", "min_ram"):
        number = int(value)
        if number < 0 or number > MAX_INT:
            raise InvalidInput(f"Invalid value '{value}' for parameter '{key}': Cannot be a "
                               "negative value" if number < 0 else
                               f"Invalid value '{value}' for parameter '{key}': too large",
                               field=key)
        setattr(image, key, number)
    elif key in ("disk_format", "container_format"):
        if not creating and image.status not in (m.QUEUED, m.IMPORTING):
            raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
        setattr(image, key, value)
    elif key == "name":
        image.name = None if value is None else check_stored_text(value, key)
    elif key == "owner":
        image.owner = None if value is None else check_stored_text(value, key)
    elif key in ("visibility", "protected", "os_hidden"):
        setattr(image, key, value)
    elif key == "tags":
        set_tags(image, value)
    else:
        set_property(image, key, value)


def set_tags(image: m.Image, values: list[str]) -> None:
    wanted = {check_stored_text(v, "tags", what="param") for v in values}
    if len(wanted) > MAX_TAGS:
        raise PayloadTooLarge(f"Maximum number of tags exceeded: {MAX_TAGS} allowed.")
    keep = [t for t in image.tags if t.value in wanted]
    have = {t.value for t in keep}
    image.tags = keep + [m.ImageTag(value=v) for v in sorted(wanted - have)]


def set_property(image: m.Image, key: str, value: Any) -> None:
    if len(key) > 255:
        raise InvalidInput("Custom property should not be greater than 255 characters.",
                           field=key[:40])
    check_stored_text(key, key[:40], what="name")
    if value is None:  # the schema allows null for kernel_id and ramdisk_id
        value = ""
    check_stored_text(value, key)
    for prop in image.properties:
        if prop.name == key:
            prop.value = value
            return
    if len(image.properties) >= MAX_PROPERTIES:
        raise PayloadTooLarge(f"Maximum number of properties exceeded: {MAX_PROPERTIES} "
                              "allowed.")
    image.properties.append(m.ImageProperty(name=key, value=value))


# -- update (JSON patch) -------------------------------------------------------------

def apply_changes(s: Session, ctx: RequestContext, image: m.Image,
                  changes: list[patch.Change]) -> m.Image:
    policy.check_modify(ctx, image)
    for change in changes:
        key = change.path
        if key == "owner":
            policy.check_owner_change(ctx)
        if key == "visibility" and change.op != "remove":
            policy.check_visibility(ctx, change.value)
        is_core = key in CORE
        has_prop = any(p.name == key for p in image.properties)
        if change.op == "remove":
            if is_core:
                raise Forbidden(f"Property {key} may not be removed.")
            if not has_prop:
                raise Conflict(f"Property {key} does not exist.")
            image.properties = [p for p in image.properties if p.name != key]
        elif change.op == "replace":
            if not is_core and not has_prop:
                raise Conflict(f"Property {key} does not exist.")
            set_attribute(image, key, change.value)
        else:  # add
            if change.draft == 4 and (is_core or has_prop):
                raise Conflict(f"Property {key} already present.")
            set_attribute(image, key, change.value)
    if changes:
        touch(image)
    s.flush()
    return image


# -- delete and actions --------------------------------------------------------------

def delete_image(s: Session, ctx: RequestContext, image: m.Image) -> None:
    policy.check_modify(ctx, image, "delete_image")
    if image.protected:
        raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
    s.delete(image)
    s.flush()


def set_active(s: Session, ctx: RequestContext, image: m.Image, active: bool) -> None:
    """deactivate (active → deactivated) and reactivate (the way back); no-ops stay 204."""
    action = "reactivate" if active else "deactivate"
    policy.check_modify(ctx, image, action)
    source, target = (m.DEACTIVATED, m.ACTIVE) if active else (m.ACTIVE, m.DEACTIVATED)
    if image.status == target:
        return
    if image.status != source:
        raise Forbidden(f"Not allowed to {action} image in status '{image.status}'")
    if not compare_and_swap(s, m.Image, image.id, {"status": source},
                            {"status": target, "updated_at": utcnow()}):
        raise Conflict(f"Image {image.id} changed status while being {action}d; try again.")


# -- tags ----------------------------------------------------------------------------

def add_tag(s: Session, ctx: RequestContext, image: m.Image, tag: str) -> None:
    policy.check_modify(ctx, image)
    validate(schemas.IMAGE, {"tags": [tag]})
    check_stored_text(tag, "tag", what="param")
    if tag in image.tag_values():
        return
    if len(image.tags) >= MAX_TAGS:
        raise PayloadTooLarge(f"Image tag limit exceeded for image {image.id}: "
                              f"{MAX_TAGS} allowed.")
    image.tags.append(m.ImageTag(value=tag))
    touch(image)
    s.flush()


def remove_tag(s: Session, ctx: RequestContext, image: m.Image, tag: str) -> None:
    policy.check_modify(ctx, image)
    if tag not in image.tag_values():
        raise NotFound(f"Tag {tag} not found on image {image.id}.")
    image.tags = [t for t in image.tags if t.value != tag]
    touch(image)
    s.flush()
