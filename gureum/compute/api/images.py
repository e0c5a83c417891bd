"""/v2.1/images: Nova's proxy to the image service (deprecated; gone from 2.36).

Old clients (and openstacksdk's compute image calls) list, show and delete
images and change their metadata (the image's custom properties) here. The
image service's own rules decide what a caller may see and change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute.api.common import ctx_of, settings_of
from gureum.compute.api.params import MAX_LIMIT, limit_marker
from gureum.compute.quotas import limits_for
from gureum.compute.views.common import isotime
from gureum.errors import Forbidden, InvalidInput, NotFound
from gureum.image import models as m
from gureum.image import policy
from gureum.image import service as images
from gureum.image.listing import ListQuery, list_images

router = Router()

_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
           "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED",
           "killed": "ERROR", "deactivated": "ERROR"}
_PROGRESS = {"queued": 25, "saving": 50, "active": 100}
_metadata = {"type": "object", "additionalProperties": False, "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}}
metadata_body = {"type": "object", "required": ["metadata"], "additionalProperties": False,
                 "properties": {"metadata": _metadata}}
meta_body = {"type": "object", "required": ["meta"], "additionalProperties": False,
             "properties": {"meta": {**_metadata, "minProperties": 1, "maxProperties": 1}}}


def _until_2_35(req: Request) -> None:
    if at_least(req, "2.36"):
        raise NotFound("The resource could not be found.")


def _links(req: Request, image_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{req.base_url}/v2.1/images/{image_id}"},
            {"rel": "bookmark", "href": f"{req.base_url}/images/{image_id}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{req.host_url}/image/images/{image_id}"}]


def view(req: Request, image: m.Image, detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": image.id, "name": image.name, "links": _links(req, image.id)}
    if not detail:
        return out
    props = image.props()
    out.update({"minRam": image.min_ram, "minDisk": image.min_disk, "metadata": props,
                "created": isotime(image.created_at), "updated": isotime(image.updated_at),
                "status": _STATUS.get(image.status, "UNKNOWN"),
                "progress": _PROGRESS.get(image.status, 0),
                "OS-EXT-IMG-SIZE:size": image.size})
    if props.get("instance_uuid"):
        server = props["instance_uuid"]
        out["server"] = {"id": server, "links": [
            {"rel": "self", "href": f"{req.base_url}/v2.1/servers/{server}"},
            {"rel": "bookmark", "href": f"{req.base_url}/servers/{server}"}]}
    return out


def _list(req: Request, s: Session, detail: bool) -> Response:
    _until_2_35(req)
    ctx = ctx_of(req)
    limit, marker = limit_marker(req)
    query = ListQuery(limit=limit if limit is not None else MAX_LIMIT, marker=marker,
                      sort=[("created_at", "desc"), ("id", "desc")])
    if req.arg("name"):
        query.conditions.append(m.Image.name == req.arg("name"))
    status = (req.arg("status") or "").upper()
    if status:
        query.conditions.append(m.Image.status.in_(
            [k for k, v in _STATUS.items() if v == status] or ["-"]))
    for name, column in (("minRam", m.Image.min_ram), ("minDisk", m.Image.min_disk)):
        value = req.arg(name)
        if value is not None:
            if not value.isdigit() or len(value) > 9:
                raise InvalidInput(f"Invalid {name} filter [{value}]", field=name)
            query.conditions.append(column >= int(value))
    found, _ = list_images(s, ctx, query)
    items = [view(req, i, detail) for i in found]
    body: dict[str, Any] = {"images": items}
    if limit is not None and len(items) == limit and items:
        path = "images/detail" if detail else "images"
        body["images_links"] = [{"rel": "next", "href": f"{req.base_url}/v2.1/{path}?"
                                 f"limit={limit}&marker={items[-1]['id']}"}]
    return json_response(body)


@router.get("/v2.1/images", tx=True)
def list_proxy_images(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/images/detail", tx=True)
def list_proxy_images_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


def _image(req: Request, s: Session) -> m.Image:
    _until_2_35(req)
    try:
        return images.get_visible(s, ctx_of(req), req.path_params["image_id"])
    except NotFound:
        raise NotFound("Image not found.") from None


@router.get("/v2.1/images/{image_id}", tx=True)
def show_proxy_image(req: Request, s: Session) -> Response:
    return json_response({"image": view(req, _image(req, s), detail=True)})


@router.delete("/v2.1/images/{image_id}", tx=True)
def delete_proxy_image(req: Request, s: Session) -> Response:
    image = _image(req, s)
    images.delete_image(s, ctx_of(req), image)
    return empty(204)


# -- metadata (the image's custom properties) ------------------------------------------------

def _change(req: Request, s: Session, mutate: Callable[[dict[str, str]], dict[str, str]]
            ) -> dict[str, str]:
    ctx = ctx_of(req)
    image = _image(req, s)
    policy.check_modify(ctx, image)
    old = image.props()
    new = mutate(dict(old))
    limit = limits_for(s, ctx.project_id or "", settings_of(req)).get("metadata_items", -1)
    if len(new) > len(old) and 0 <= limit < len(new):
        raise Forbidden("Image metadata limit exceeded")
    image.properties = [p for p in image.properties if p.name in new]
    for key, value in new.items():
        if old.get(key) != value:
            images.set_property(image, key, value)
    images.touch(image)
    s.flush()
    return new


@router.get("/v2.1/images/{image_id}/metadata", tx=True)
def list_image_metadata(req: Request, s: Session) -> Response:
    return json_response({"metadata": _image(req, s).props()})


@router.post("/v2.1/images/{image_id}/metadata", tx=True)
def update_image_metadata(req: Request, s: Session) -> Response:
    _until_2_35(req)
    body = validate(metadata_body, req.json())["metadata"]
    return json_response({"metadata": _change(req, s, lambda old: {**old, **body})})


@router.put("/v2.1/images/{image_id}/metadata", tx=True)
def replace_image_metadata(req: Request, s: Session) -> Response:
    _until_2_35(req)
    body = validate(metadata_body, req.json())["metadata"]
    return json_response({"metadata": _change(req, s, lambda old: dict(body))})


@router.get("/v2.1/images/{image_id}/metadata/{key}", tx=True)
def show_image_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    props = _image(req, s).props()
    if key not in props:
        raise NotFound("The resource could not be found.")
    return json_response({"meta": {key: props[key]}})


@router.put("/v2.1/images/{image_id}/metadata/{key}", tx=True)
def set_image_metadata_item(req: Request, s: Session) -> Response:
    _until_2_35(req)
    key = req.path_params["key"]
    body = validate(meta_body, req.json())["meta"]
    if key not in body:
        raise InvalidInput("Request body and URI mismatch", field="meta")
    _change(req, s, lambda old: {**old, **body})
    return json_response({"meta": body})


@router.delete("/v2.1/images/{image_id}/metadata/{key}", tx=True)
def delete_image_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]

    def without(old: dict[str, str]) -> dict[str, str]:
        if key not in old:
            raise NotFound("Invalid metadata key")
        return {k: v for k, v in old.items() if k != key}

    _change(req, s, without)
    return empty(204)
