"""Images, their tags and actions (/v2/images, /v2/images/{id}[/tags|/actions])."""

from __future__ import annotations

from urllib.parse import parse_qsl

from sqlalchemy.orm import Session

from gureum.api.transaction import AfterTransaction
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.context import RequestContext
from gureum.image import data, listing, patch, service, views
from gureum.image.store import ImageStore

router = Router()


def ctx_of(req: Request) -> RequestContext:
    assert req.context is not None
    return req.context


def store_of(req: Request) -> ImageStore:
    return ImageStore(req.app_state.settings.image_store_dir)


def import_headers() -> dict[str, str]:
    return {"OpenStack-image-import-methods": ",".join(data.IMPORT_METHODS)}


@router.get("/v2/images", tx=True)
def list_images(req: Request, s: Session) -> Response:
    query = listing.parse(req.query)
    images, next_marker = listing.list_images(s, ctx_of(req), query)
    echo = [(k, v) for k, v in parse_qsl(req.query_string.decode("latin-1"),
                                         keep_blank_values=True) if k != "marker"]
    return json_response(views.images(images, echo, next_marker))


@router.post("/v2/images", tx=True)
def create_image(req: Request, s: Session) -> Response:
    image = service.create_image(s, ctx_of(req), req.json())
    headers = {"location": f"{req.base_url}/v2/images/{image.id}", **import_headers()}
    return json_response(views.image(image), 201, headers)


@router.get("/v2/images/{image_id}", tx=True)
def show_image(req: Request, s: Session) -> Response:
    image = service.get_visible(s, ctx_of(req), req.path_params["image_id"])
    return json_response(views.image(image))


@router.patch("/v2/images/{image_id}", tx=True)
def update_image(req: Request, s: Session) -> Response:
    draft = patch.media_type(req.headers.get("content-type", ""))
    changes = patch.parse(req.json(), draft)
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"], for_update=True)
    image = service.apply_changes(s, ctx, image, changes)
    return json_response(views.image(image))


@router.delete("/v2/images/{image_id}", tx=True)
def delete_image(req: Request, s: Session) -> AfterTransaction:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"], for_update=True)
    image_id = image.id
    service.delete_image(s, ctx, image)

    def remove_data() -> Response:
        # The row is gone for good (committed): now the data may go (an upload still
        # running gets 410).
        store = store_of(req)
        store.delete(image_id)
        store.delete(image_id, staging=True)
        return empty()

    return AfterTransaction(remove_data)


@router.post("/v2/images/{image_id}/actions/deactivate", tx=True)
def deactivate(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    service.set_active(s, ctx, image, active=False)
    return empty()


@router.post("/v2/images/{image_id}/actions/reactivate", tx=True)
def reactivate(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    service.set_active(s, ctx, image, active=True)
    return empty()


@router.put("/v2/images/{image_id}/tags/{tag}", tx=True)
def add_tag(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"], for_update=True)
    service.add_tag(s, ctx, image, req.path_params["tag"])
    return empty()


@router.delete("/v2/images/{image_id}/tags/{tag}", tx=True)
def remove_tag(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"], for_update=True)
    service.remove_tag(s, ctx, image, req.path_params["tag"])
    return empty()


@router.get("/v2/images/{image_id}/tasks", tx=True)
def image_tasks(req: Request, s: Session) -> Response:
    # Imports here finish inside their request: there are never tasks to show.
    service.get_visible(s, ctx_of(req), req.path_params["image_id"])
    return json_response({"tasks": []})
