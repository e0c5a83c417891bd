"""Image members (/v2/images/{id}/members[/{member_id}])."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.image import members, service, views
from gureum.image.api_images import ctx_of

router = Router()


@router.get("/v2/images/{image_id}/members", tx=True)
def list_members(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    return json_response(views.members(members.list_members(s, ctx, image)))


@router.post("/v2/images/{image_id}/members", tx=True)
def add_member(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"], for_update=True)
    return json_response(views.member(members.add_member(s, ctx, image, req.json())))


@router.get("/v2/images/{image_id}/members/{member_id}", tx=True)
def show_member(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    return json_response(views.member(members.get_member(s, ctx, image,
                                                         req.path_params["member_id"])))


@router.put("/v2/images/{image_id}/members/{member_id}", tx=True)
def update_member(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    row = members.update_member(s, ctx, image, req.path_params["member_id"], req.json())
    return json_response(views.member(row))


@router.delete("/v2/images/{image_id}/members/{member_id}", tx=True)
def delete_member(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    image = service.get_visible(s, ctx, req.path_params["image_id"])
    members.delete_member(s, ctx, image, req.path_params["member_id"])
    return empty()
