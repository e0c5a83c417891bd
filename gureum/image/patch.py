"""Parsing image PATCH bodies (JSON patch, as the Image v2 API reference defines it).

Two media types exist: ``application/openstack-images-v2.1-json-patch`` (JSON
Schema draft 10 style: ``{"op": "add", "path": "/name", "value": ...}``) and
the older ``...-v2.0-json-patch`` (draft 4: ``{"add": "/name", "value": ...}``).
Paths name one top-level attribute: a core attribute or a custom property.
Parsing checks shapes and read-only/reserved names; applying the changes to an
image is service.apply_changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gureum.errors import Forbidden, InvalidInput, UnsupportedMediaType
from gureum.image import schemas
from gureum.validation import validate

MEDIA_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
               "application/openstack-images-v2.1-json-patch": 10}
OPERATIONS = ("add", "remove", "replace")

# glance/api/v2/images.py RequestDeserializer
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
READ_ONLY = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size",
             "direct_url", "self", "file", "schema", "id", "os_hash_algo", "os_hash_value")
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"


@dataclass(frozen=True)
class Change:
    op: str
    path: str  # the attribute: the pointer's only token, decoded
    value: Any = None
    draft: int = 10


def check_name(name: str) -> None:
    """403 for attributes nobody may set (read-only or reserved)."""
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")


def media_type(content_type: str) -> int:
    base = content_type.split(";", 1)[0].strip().lower()
    draft = MEDIA_TYPES.get(base)
    if draft is None:
        allowed = ", ".join(sorted(MEDIA_TYPES))
        raise UnsupportedMediaType(f"Image PATCH expects Content-Type one of: {allowed}",
                                   headers={"accept-patch": allowed})
    return draft


def decode_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise InvalidInput("Invalid input for field 'path': a JSON pointer string is "
                           "expected.", field="path")
    if not pointer.startswith("/"):
        raise InvalidInput(f"Pointer `{pointer}` does not start with \"/\".", field="path")
    if re.search(r"/\s*?/", pointer[1:]):
        raise InvalidInput(f"Pointer `{pointer}` contains adjacent \"/\".", field="path")
    if len(pointer) > 1 and pointer.endswith("/"):
        raise InvalidInput(f"Pointer `{pointer}` end with \"/\".", field="path")
    if pointer[1:].strip() == "/":
        raise InvalidInput(f"Pointer `{pointer}` does not contains valid token.", field="path")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise InvalidInput(f"Pointer `{pointer}` contains \"~\" not part of a recognized "
                           "escape sequence.", field="path")
    return [part.replace("~1", "/").replace("~0", "~").strip()
            for part in pointer.lstrip("/").split("/")]


def _op_and_pointer(raw: dict[str, Any], draft: int) -> tuple[str, Any]:
    if draft == 10:
        op = raw.get("op")
        if op is None:
            raise InvalidInput("Unable to find `op` in JSON Schema change. It must be one of "
                               f"the following: {', '.join(OPERATIONS)}.", field="op")
        if op not in OPERATIONS:
            raise InvalidInput(f"Invalid operation: `{op}`. It must be one of the following: "
                               f"{', '.join(OPERATIONS)}.", field="op")
        if "path" not in raw:
            raise InvalidInput("Unable to find 'path' in JSON Schema change", field="path")
        return str(op), raw["path"]
    present = [key for key in OPERATIONS if key in raw]
    if len(present) != 1:
        raise InvalidInput('Operation objects must contain exactly one member named "add", '
                           '"remove", or "replace".', field="op")
    return present[0], raw[present[0]]


def parse(body: Any, draft: int) -> list[Change]:
    if not isinstance(body, list):
        raise InvalidInput("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise InvalidInput("Operations must be JSON objects.")
        op, pointer = _op_and_pointer(raw, draft)
        path = decode_pointer(pointer)
        root = path[0]
        if root == "locations":
            # Locations stay invisible here (show_multiple_locations is off in Glance's
            # defaults), and Glance forbids changing what it does not show.
            raise Forbidden("It's not allowed to update locations if locations are "
                            "invisible.")
        if len(path) != 1:
            raise InvalidInput(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'",
                               field="path")
        value = None
        if op != "remove":
            if "value" not in raw:
                raise InvalidInput(f'Operation "{op}" requires a member named "value".',
                                   field="value")
            value = raw["value"]
        check_name(root)
        if op != "remove":
            validate(schemas.IMAGE, {root: value})
        changes.append(Change(op, root, value, draft))
    return changes
