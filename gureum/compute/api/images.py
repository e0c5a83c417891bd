"""/v2.1/images: Nova's proxy to the image service (deprecated; gone from 2.36).

Old clients (and openstacksdk's compute image calls) list, show and delete
images and change their metadata (the image's custom properties) here. The
image service's own rules decide what a caller may see and change
(compute/image_proxy.py asks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import image_proxy
from gureum.compute.api.common import ctx_of, settings_of
from gureum.compute.api.params import MAX_LIMIT, limit_marker
from gureum.compute.views import images as views
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_metadata = {"type": "object", "additionalProperties": False, "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}}
metadata_body = {"type": "object", "required": ["metadata"], "additionalProperties": False,
                 "properties": {"metadata": _metadata}}
meta_body = {"type": "object", "required": ["meta"], "additionalProperties": False,
             "properties": {"meta": {**_metadata, "minProperties": 1, "maxProperties": 1}}}


def _until_2_35(req: Request) -> None:
    if at_least(req, "2.36"):
        raise NotFound("The resource could not be found.")


def _size(req: Request, name: str) -> int | None:
    value = req.arg(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidInput(f"Invalid {name} filter [{value}]", field=name)
    return int(value)


def _list(req: Request, s: Session, detail: bool) -> Response:
    _until_2_35(req)
    ctx = ctx_of(req)
    limit, marker = limit_marker(req)
    found = image_proxy.list_images(
        s, ctx, limit if limit is not None else MAX_LIMIT, marker, name=req.arg("name"),
        status=(req.arg("status") or "").upper() or None, min_ram=_size(req, "minRam"),
        min_disk=_size(req, "minDisk"))
    items = [views.image(req, i, detail) for i in found]
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


def _image(req: Request, s: Session) -> Any:
    _until_2_35(req)
    return image_proxy.get(s, ctx_of(req), req.path_params["image_id"])


@router.get("/v2.1/images/{image_id}", tx=True)
def show_proxy_image(req: Request, s: Session) -> Response:
    return json_response({"image": views.image(req, _image(req, s), detail=True)})


@router.delete("/v2.1/images/{image_id}", tx=True)
def delete_proxy_image(req: Request, s: Session) -> Response:
    _until_2_35(req)
    image_proxy.delete(s, ctx_of(req), req.path_params["image_id"])
    return empty(204)


# -- metadata (the image's custom properties) ------------------------------------------------

def _change(req: Request, s: Session, mutate: Callable[[dict[str, str]], dict[str, str]]
            ) -> dict[str, str]:
    _until_2_35(req)
    return image_proxy.change_metadata(s, ctx_of(req), req.path_params["image_id"], mutate,
                                       settings_of(req))


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
