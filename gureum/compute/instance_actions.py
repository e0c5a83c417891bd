"""What was done to a server (os-instance-actions), read back for its owner.

The records are written by compute/instances.py as the actions start and their
events run. Reading them back: from 2.21 the actions of a deleted server stay
readable; from 2.58 the list pages (the marker is a request id: the newest
action of that request on the server) and filters on the action's updated_at.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum import paging
from gureum.compute import instances
from gureum.compute.listing import page
from gureum.compute.models import Instance, InstanceAction, InstanceActionEvent
from gureum.context import RequestContext
from gureum.errors import NotFound
from gureum.paging import SortKey

_NEWEST_FIRST = [SortKey(InstanceAction.start_time, ascending=False),
                 SortKey(InstanceAction.id, ascending=False)]


def server(s: Session, ctx: RequestContext, server_id: str, deleted_too: bool) -> Instance:
    return instances.visible(s, ctx, server_id, include_deleted=deleted_too)


def list_actions(s: Session, inst: Instance) -> list[InstanceAction]:
    """Every action on the server, newest first (before 2.58: no paging)."""
    stmt = select(InstanceAction).where(InstanceAction.instance_id == inst.id)
    return list(s.scalars(stmt.order_by(*paging.order_by(_NEWEST_FIRST))))


def page_actions(s: Session, inst: Instance, since: dt.datetime | None,
                 before: dt.datetime | None, limit: int | None,
                 marker: str | None) -> list[InstanceAction]:
    """A page of the server's actions, newest first, after the marker's request id."""
    stmt = select(InstanceAction).where(InstanceAction.instance_id == inst.id)
    if since is not None:
        stmt = stmt.where(InstanceAction.updated_at >= since)
    if before is not None:
        stmt = stmt.where(InstanceAction.updated_at <= before)
    found = s.scalar(select(InstanceAction.id).where(
        InstanceAction.instance_id == inst.id, InstanceAction.request_id == marker)
        .order_by(InstanceAction.id.desc()).limit(1)) if marker else None
    return page(s, stmt, _NEWEST_FIRST, limit, marker, InstanceAction.id == found)


def find(s: Session, inst: Instance, request_id: str) -> InstanceAction:
    found = instances.find_action(s, inst.id, request_id)
    if found is None:
        raise NotFound(f"Action {request_id} not found")
    return found


def events(s: Session, action: InstanceAction) -> list[InstanceActionEvent]:
    return list(s.scalars(select(InstanceActionEvent).where(
        InstanceActionEvent.action_id == action.id).order_by(
        InstanceActionEvent.start_time.desc(), InstanceActionEvent.id.desc())))
