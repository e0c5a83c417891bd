"""Volume types: the default one, lookups by id or name, and who may use a private one."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.volume import errors as e
from gureum.volume import models as m

# Cinder creates __DEFAULT__ in a migration; gureum creates it when first needed,
# always with this id, so two processes racing to make it make the same row.
DEFAULT_TYPE_ID = "a4c5d1e6-3f2b-4c1a-9e0d-5f6775726575"


def default_type(s: Session) -> m.VolumeType:
    row = s.get(m.VolumeType, DEFAULT_TYPE_ID)
    if row is None:
        row = s.scalar(select(m.VolumeType).where(m.VolumeType.name == m.DEFAULT_TYPE_NAME))
    if row is not None:
        return row
    row = m.VolumeType(id=DEFAULT_TYPE_ID, name=m.DEFAULT_TYPE_NAME,
                       description="Default Volume Type", is_public=True, extra_specs={})
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        found = s.get(m.VolumeType, DEFAULT_TYPE_ID)
        assert found is not None
        return found
    return row


def default_for(s: Session, project_id: str) -> m.VolumeType:
    """The project's default type (3.62), else __DEFAULT__."""
    row = s.get(m.DefaultType, project_id)
    if row is not None:
        t = s.get(m.VolumeType, row.volume_type_id)
        if t is not None:
            return t
    return default_type(s)


def can_use(s: Session, ctx: RequestContext, t: m.VolumeType) -> bool:
    if t.is_public or ctx.is_admin:
        return True
    return s.scalar(select(m.VolumeTypeProject.id).where(
        m.VolumeTypeProject.volume_type_id == t.id,
        m.VolumeTypeProject.project_id == (ctx.project_id or ""))) is not None


def visible_clause(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    granted = select(m.VolumeTypeProject.volume_type_id).where(
        m.VolumeTypeProject.project_id == (ctx.project_id or ""))
    return or_(m.VolumeType.is_public.is_(True), m.VolumeType.id.in_(granted))


def find(s: Session, ctx: RequestContext, ref: str, field: str = "volume_type"
         ) -> m.VolumeType:
    """A type by id or name that ctx may use; 404 (Cinder's VolumeTypeNotFound) otherwise."""
    default_type(s)
    row = s.get(m.VolumeType, ref) or s.scalar(
        select(m.VolumeType).where(m.VolumeType.name == ref))
    if row is None or not can_use(s, ctx, row):
        raise e.not_found("volume_type", ref)
    return row
