"""Nova's image proxy wire shape (/v2.1/images, until 2.35)."""

from __future__ import annotations

from typing import Any

from gureum.api.web import Request
from gureum.compute.image_proxy import PROGRESS, STATUS
from gureum.compute.views.common import isotime
from gureum.image.models import Image


def _links(req: Request, image_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{req.base_url}/v2.1/images/{image_id}"},
            {"rel": "bookmark", "href": f"{req.base_url}/images/{image_id}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{req.host_url}/image/images/{image_id}"}]


def image(req: Request, image: Image, detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": image.id, "name": image.name, "links": _links(req, image.id)}
    if not detail:
        return out
    props = image.props()
    out.update({"minRam": image.min_ram, "minDisk": image.min_disk, "metadata": props,
                "created": isotime(image.created_at), "updated": isotime(image.updated_at),
                "status": STATUS.get(image.status, "UNKNOWN"),
                "progress": PROGRESS.get(image.status, 0),
                "OS-EXT-IMG-SIZE:size": image.size})
    if props.get("instance_uuid"):
        server = props["instance_uuid"]
        out["server"] = {"id": server, "links": [
            {"rel": "self", "href": f"{req.base_url}/v2.1/servers/{server}"},
            {"rel": "bookmark", "href": f"{req.base_url}/servers/{server}"}]}
    return out
