"""Image members: sharing a ``shared`` image with other projects.

The owner adds a project as a member (status ``pending``); the member accepts
or rejects; an accepted share shows up in the member's default image list,
while any membership lets the member see the image by id (as Glance does).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from gureum.image import models as m
from gureum.image import policy, schemas, service
from gureum.validation import validate


def _member_body(body: Any, schema: dict[str, Any], key: str, example: str) -> str:
    if not isinstance(body, dict):
        raise InvalidInput(f"Expected a {key} in the form: {example}")
    validate(schema, body)
    return service.check_stored_text(str(body[key]), key, 255)


def member_not_found(image: m.Image, member_id: str) -> NotFound:
    return NotFound(f"{member_id} not found in the member list of the image {image.id}.",
                    kind="member")


def list_members(s: Session, ctx: RequestContext, image: m.Image) -> list[m.ImageMember]:
    policy.check_members_readable(ctx, image)
    stmt = select(m.ImageMember).where(m.ImageMember.image_id == image.id)
    if not (ctx.is_admin or policy.owns(ctx, image)):
        # A member sees its own membership only.
        stmt = stmt.where(m.ImageMember.member_id == ctx.project_id)
    return list(s.scalars(stmt.order_by(m.ImageMember.created_at, m.ImageMember.member_id)))


def _find(s: Session, image: m.Image, member_id: str) -> m.ImageMember | None:
    try:
        service.check_text(member_id, "member_id", 255)
    except InvalidInput:
        return None  # no member has such an id
    return s.get(m.ImageMember, (image.id, member_id))


def get_member(s: Session, ctx: RequestContext, image: m.Image, member_id: str
               ) -> m.ImageMember:
    if image.visibility != "shared":
        raise NotFound("Only shared images have members.")
    policy.check_read(ctx, "get_member")
    if not (ctx.is_admin or policy.owns(ctx, image) or ctx.project_id == member_id):
        raise member_not_found(image, member_id)
    row = _find(s, image, member_id)
    if row is None:
        raise member_not_found(image, member_id)
    return row


def add_member(s: Session, ctx: RequestContext, image: m.Image, body: Any) -> m.ImageMember:
    policy.check_member_manage(ctx, image, "add_member")
    member_id = _member_body(body, schemas.MEMBER_CREATE, "member", '{"member": "image_id"}')
    if not member_id.strip():
        raise InvalidInput("Member can't be empty", field="member")
    if s.get(m.ImageMember, (image.id, member_id)) is not None:
        raise Conflict(f"Member {member_id} is duplicated for image {image.id}")
    count = s.scalar(select(func.count()).select_from(m.ImageMember)
                     .where(m.ImageMember.image_id == image.id)) or 0
    if count >= service.MAX_MEMBERS:
        raise PayloadTooLarge(f"Image member limit exceeded for image {image.id}: "
                              f"{service.MAX_MEMBERS} allowed.")
    now = utcnow()
    row = m.ImageMember(image_id=image.id, member_id=member_id, status="pending",
                        created_at=now, updated_at=now)
    s.add(row)
    service.flush_or_conflict(s, f"Member {member_id} is duplicated for image {image.id}")
    return row


def update_member(s: Session, ctx: RequestContext, image: m.Image, member_id: str,
                  body: Any) -> m.ImageMember:
    if image.visibility != "shared":
        raise Forbidden("Only shared images have members.")
    status = _member_body(body, schemas.MEMBER_UPDATE, "status", '{"status": "status"}')
    row = get_member(s, ctx, image, member_id)
    policy.check_member_modify(ctx, image, member_id)
    row.status = status
    row.updated_at = utcnow()
    s.flush()
    return row


def delete_member(s: Session, ctx: RequestContext, image: m.Image, member_id: str) -> None:
    policy.check_member_manage(ctx, image, "delete_member")
    row = _find(s, image, member_id)
    if row is None:
        raise member_not_found(image, member_id)
    s.delete(row)
    s.flush()
