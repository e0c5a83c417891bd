"""Image data (/v2/images/{id}/file, /stage, /import): streamed in and out, never buffered."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gureum.api.validation import validate
from gureum.api.web import ChunkedResponse, Request, Response, Router, empty, stream
from gureum.errors import InvalidInput, UnsupportedMediaType
from gureum.image import data, schemas, service
from gureum.image.api_images import ctx_of, store_of

router = Router()

OCTET_STREAM = "application/octet-stream"


def _expected_size(req: Request) -> int | None:
    """X-OpenStack-Image-Size when the client announced the size of the data."""
    raw = req.headers.get("x-openstack-image-size")
    if raw is None:
        return None
    try:
        size = int(raw)
    except ValueError:
        size = -1
    if size < 0:
        raise InvalidInput("Invalid or missing image size in request headers.",
                           field="X-OpenStack-Image-Size")
    return size


def _check_octet_stream(req: Request) -> None:
    content_type = req.headers.get("content-type")
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base != OCTET_STREAM:
        raise UnsupportedMediaType(f"Invalid content type {content_type}")


def _max_size(req: Request) -> int:
    return int(req.app_state.settings.image.max_image_size)


@router.put("/v2/images/{image_id}/file", stream=True)
def upload(req: Request) -> Response:
    _check_octet_stream(req)
    data.upload(req.app_state.db, store_of(req), ctx_of(req), req.path_params["image_id"],
                req.iter_body(), _expected_size(req), _max_size(req))
    return empty()


@router.put("/v2/images/{image_id}/stage", stream=True)
def stage(req: Request) -> Response:
    _check_octet_stream(req)
    data.stage(req.app_state.db, store_of(req), ctx_of(req), req.path_params["image_id"],
               req.iter_body(), _expected_size(req), _max_size(req))
    return empty()


@router.post("/v2/images/{image_id}/import")
def import_image(req: Request) -> Response:
    body = validate(schemas.IMPORT, req.json())
    if body.get("stores") or body.get("all_stores"):
        raise InvalidInput("Multi backend is not supported at this site.", field="stores")
    data.import_staged(req.app_state.db, store_of(req), ctx_of(req),
                       req.path_params["image_id"], body["method"]["name"])
    return empty(202)


@router.get("/v2/images/{image_id}/file", tx=True)
def download(req: Request, s: Session) -> Response | ChunkedResponse:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    store = store_of(req)
    if not data.check_downloadable(ctx, image, store):
        return empty()
    size = int(image.size or 0)
    part = data.byte_range(req.headers.get("range"), size)
    headers = {"content-type": OCTET_STREAM, "content-length": str(part.length)}
    if part.partial:
        end = part.offset + part.length - 1
        headers["content-range"] = f"bytes {part.offset}-{end}/{size}"
    elif image.checksum:
        headers["content-md5"] = image.checksum
    return stream(req, store.read(image.id, part.offset, part.length),
                  206 if part.partial else 200, headers)
