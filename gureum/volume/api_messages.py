"""User messages (3.3+): why a volume or snapshot went to an error state.

Cinder keeps messages in their own table; gureum keeps the last error on the
resource itself (the volume manager writes it with the error status) and shows
each as one message whose id is derived from the resource's. Deleting the
message clears the error text, not the error status.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, empty, json_response
from gureum.errors import NotAcceptable, NotFound
from gureum.volume import models as m
from gureum.volume import policy, views
from gureum.volume.api import route

_NS = uuid.UUID("0f4e3c1a-6775-7265-756d-6d6573736167")


def _need(req: Request) -> None:
    if not at_least(req, "3.3"):
        raise NotAcceptable("Version 3.3 or later is required for messages.")


def _rows(req: Request, s: Session) -> list[tuple[str, Any]]:
    ctx = policy.reader(req.context, "message:get_all")
    rows: list[tuple[str, Any]] = []
    for kind, model in (("VOLUME", m.Volume), ("SNAPSHOT", m.Snapshot)):
        stmt = select(model).where(model.error.is_not(None))
        if not ctx.is_admin:
            stmt = stmt.where(model.project_id == (ctx.project_id or ""))
        rows += [(kind, r) for r in s.scalars(stmt)]
    return rows


def _view(kind: str, row: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid5(_NS, row.id)), "event_id": f"{kind}_ERROR",
            "user_message": f"{kind.lower()} error: {row.error}", "message_level": "ERROR",
            "resource_type": kind, "resource_uuid": row.id, "request_id": None,
            "created_at": views.iso(row.updated_at or row.created_at),
            "guaranteed_until": None, "links": []}


@route("GET", "/messages")
def list_messages(req: Request, s: Session) -> Response:
    _need(req)
    return json_response({"messages": [_view(k, r) for k, r in _rows(req, s)]})


def _find(req: Request, s: Session) -> tuple[str, Any]:
    wanted = req.path_params["message_id"]
    for kind, row in _rows(req, s):
        if str(uuid.uuid5(_NS, row.id)) == wanted:
            return kind, row
    raise NotFound(f"Message {wanted} could not be found.")


@route("GET", "/messages/{message_id}")
def show_message(req: Request, s: Session) -> Response:
    _need(req)
    return json_response({"message": _view(*_find(req, s))})


@route("DELETE", "/messages/{message_id}")
def delete_message(req: Request, s: Session) -> Response:
    _need(req)
    policy.writer(req.context, "message:delete")
    _, row = _find(req, s)
    row.error = None
    return empty(204)
