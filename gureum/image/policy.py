"""Who may do what with an image: Glance's default policy (glance/policies).

Seeing comes first: a caller who may not see an image gets 404 from every API
(``service.get_visible``), never 403, so private images do not leak their
existence. The checks here run on images the caller can see and raise 403.

- admin may do everything;
- a member of the owning project may change, upload, delete, share and
  (de)activate the image; a reader of it may only look;
- anyone who can see an image with the member role may download it;
- only admin may make an image public or give it to another project;
- a project an image is shared with may accept or reject the share, and
  nothing else.
"""

from __future__ import annotations

from gureum.context import RequestContext
from gureum.errors import Forbidden
from gureum.image import models as m


def deny(rule: str, message: str | None = None) -> Forbidden:
    return Forbidden(message or f"Policy doesn't allow {rule} to be performed.")


def is_visible(ctx: RequestContext, image: m.Image, member_status: str | None) -> bool:
    """Glance's is_image_visible: member_status is the caller's membership, if any."""
    if ctx.is_admin or image.owner is None:
        return True
    if image.visibility in ("public", "community"):
        return True
    if ctx.project_id is None:
        return False
    if image.owner == ctx.project_id:
        return True
    return image.visibility == "shared" and member_status is not None


def owns(ctx: RequestContext, image: m.Image) -> bool:
    return ctx.project_id is not None and image.owner == ctx.project_id


def check_read(ctx: RequestContext, rule: str = "get_images") -> None:
    if not (ctx.is_admin or ctx.can_read):
        raise deny(rule)


def check_modify(ctx: RequestContext, image: m.Image, rule: str = "modify_image") -> None:
    """Admin, or a member of the owning project."""
    if ctx.is_admin:
        return
    if not (owns(ctx, image) and ctx.can_write):
        raise deny(rule, "You are not permitted to modify this image."
                   if not owns(ctx, image) else None)


def check_create(ctx: RequestContext, owner: str | None) -> None:
    if ctx.is_admin:
        return
    if owner != ctx.project_id:
        raise deny("add_image", f"You are not permitted to create images owned by '{owner}'.")
    if not ctx.can_write:
        raise deny("add_image")


def check_visibility(ctx: RequestContext, visibility: str | None) -> None:
    """Making an image public is admin-only; community is for members and admin."""
    if visibility == "public" and not ctx.is_admin:
        raise deny("publicize_image")
    if visibility == "community" and not (ctx.is_admin or ctx.can_write):
        raise deny("communitize_image")


def check_owner_change(ctx: RequestContext) -> None:
    if not ctx.is_admin:
        raise deny("modify_image", "Owner can't be updated by non admin.")


def check_download(ctx: RequestContext, image: m.Image) -> None:
    if ctx.is_admin:
        return
    if image.status == m.DEACTIVATED:
        raise deny("download_image", "The requested image has been deactivated. Image data "
                                     "download is forbidden.")
    if not ctx.can_write:
        raise deny("download_image")


def check_members_readable(ctx: RequestContext, image: m.Image) -> None:
    if image.visibility != "shared":
        raise Forbidden("Only shared images have members.")
    check_read(ctx, "get_members")


def check_member_modify(ctx: RequestContext, image: m.Image, member_id: str) -> None:
    """Only the project an image is shared with answers the share (or admin)."""
    if image.visibility != "shared":
        raise Forbidden("Only shared images have members.")
    if ctx.is_admin:
        return
    if owns(ctx, image) and ctx.project_id != member_id:
        raise deny("modify_member", "You are not permitted to modify 'status' on this image "
                                    "member.")
    if ctx.project_id != member_id or not ctx.can_write:
        raise deny("modify_member")


def check_member_manage(ctx: RequestContext, image: m.Image, rule: str) -> None:
    """Adding and removing members: the owner (a member of it) or admin."""
    if image.visibility != "shared":
        raise Forbidden("Only shared images have members.")
    if ctx.is_admin:
        return
    if not owns(ctx, image):
        raise deny(rule, "You are not permitted to create image members for the image."
                   if rule == "add_member" else "You cannot delete image member.")
    if not ctx.can_write:
        raise deny(rule)
