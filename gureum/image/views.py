"""Wire shapes of Image v2 resources, as Glance serializes them.

Links (self, file, schema, first, next) are paths relative to the API root
(``/v2/...``), exactly as Glance writes them; clients join them to the endpoint.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from gureum.image import models as m

CORE = ("name", "disk_format", "container_format", "visibility", "size", "virtual_size",
        "status", "checksum", "protected", "min_ram", "min_disk", "owner", "os_hidden",
        "os_hash_algo", "os_hash_value")


def isotime(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def image(img: m.Image) -> dict[str, Any]:
    out: dict[str, Any] = img.props()
    for key in CORE:
        out[key] = getattr(img, key)
    out["id"] = img.id
    out["created_at"] = isotime(img.created_at)
    out["updated_at"] = isotime(img.updated_at)
    out["tags"] = img.tag_values()
    out["self"] = f"/v2/images/{img.id}"
    out["file"] = f"/v2/images/{img.id}/file"
    out["schema"] = "/v2/schemas/image"
    return out


def images(items: list[m.Image], query: list[tuple[str, str]], next_marker: str | None
           ) -> dict[str, Any]:
    """The list body; query is the request's query without the marker."""
    body: dict[str, Any] = {"images": [image(i) for i in items], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if query:
        body["first"] = f"/v2/images?{urlencode(query)}"
    if next_marker is not None:
        body["next"] = f"/v2/images?{urlencode([*query, ('marker', next_marker)])}"
    return body


def member(mem: m.ImageMember) -> dict[str, Any]:
    return {"member_id": mem.member_id, "image_id": mem.image_id, "status": mem.status,
            "created_at": isotime(mem.created_at), "updated_at": isotime(mem.updated_at),
            "schema": "/v2/schemas/member"}


def members(items: list[m.ImageMember]) -> dict[str, Any]:
    return {"members": [member(i) for i in items], "schema": "/v2/schemas/members"}
