"""What several Block Storage handlers share: reading an action request's one
action, the "next" link of a list page, and the admin's status actions
(``os-reset_status``, ``os-force_delete``) on a snapshot or a backup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, empty
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, schemas


def one_action(body: Any) -> tuple[str, Any]:
    """An action request's name and argument: its body is an object with one key."""
    if not isinstance(body, dict) or len(body) != 1:
        raise e.bad_request("Malformed request body: exactly one action is expected.")
    (name, args), = body.items()
    return name, args


def next_links(req: Request, rows: Sequence[Any], limit: str | None
               ) -> list[dict[str, str]]:
    """Cinder's ``<collection>_links``: a "next" link when a limit filled the page."""
    if not limit or not schemas.is_uint(limit) or len(rows) < int(limit) or not rows:
        return []
    query = f"limit={limit}&marker={rows[-1].id}"
    return [{"rel": "next", "href": f"{req.base_url}{req.path}?{query}"}]


def admin_status_action(req: Request, s: Session, kind: str,
                        get: Callable[[Session, RequestContext, str],
                                      m.Snapshot | m.Backup],
                        delete: Callable[..., None], statuses: tuple[str, ...]
                        ) -> Response:
    """``POST /<kind>s/{id}/action`` with ``os-reset_status`` (to one of ``statuses``)
    or ``os-force_delete``, both admin's (``volume_extension:<kind>_admin_actions:…``)."""
    name, args = one_action(req.json())
    ctx = policy.admin(req.context, f"volume_extension:{kind}_admin_actions:{name}")
    row = get(s, ctx, req.path_params[f"{kind}_id"])
    if name == "os-reset_status":
        status = args.get("status") if isinstance(args, dict) else None
        row.status = schemas.one_of(status, "status", statuses)
        row.updated_at = utcnow()
        return empty(202)
    if name == "os-force_delete":
        delete(s, ctx, row.id, force=True)
        return empty(202)
    raise e.bad_request(f"There is no such action: {name}", name)
