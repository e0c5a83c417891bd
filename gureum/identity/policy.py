"""Who may call which identity API.

Admin may do everything. Everyone else may read and manage only themselves:
their own user, password, projects, application credentials and tokens.
"""

from __future__ import annotations

from gureum.context import RequestContext
from gureum.errors import Forbidden


def deny(rule: str) -> Forbidden:
    return Forbidden(f"You are not authorized to perform the requested action: {rule}.")


def admin(ctx: RequestContext | None, rule: str) -> RequestContext:
    if ctx is None or not ctx.is_admin:
        raise deny(rule)
    return ctx


def self_or_admin(ctx: RequestContext | None, user_id: str, rule: str) -> RequestContext:
    if ctx is None or not (ctx.is_admin or ctx.user_id == user_id):
        raise deny(rule)
    return ctx


def reader_or_admin(ctx: RequestContext | None, rule: str) -> RequestContext:
    """Readers of the catalog and roles: any scoped caller may look, only admin may change."""
    if ctx is None or not (ctx.is_admin or ctx.can_read):
        raise deny(rule)
    return ctx
