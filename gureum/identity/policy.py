"""Who may call which identity API (Keystone's default policies).

Admin may do everything. System readers read everything; a reader of a
domain-scoped token reads its domain's projects. Everyone else reads and
manages only themselves: their own user, password, projects, application
credentials and tokens, and the project their token is scoped to.
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


def system_reader(ctx: RequestContext | None) -> bool:
    """Keystone's ``role:reader and system_scope:all`` (or any admin)."""
    return ctx is not None and (ctx.is_admin or ctx.is_system_reader)


def list_projects(ctx: RequestContext | None) -> str | None:
    """``identity:list_projects``: admin or system reader (every project), or a reader
    of a domain-scoped token (that domain's projects: the id returned). Project
    members list theirs with /v3/auth/projects or /v3/users/{id}/projects."""
    if system_reader(ctx):
        return None
    if ctx is not None and ctx.domain_id and ctx.can_read:
        return ctx.domain_id
    raise deny("identity:list_projects")


def get_project(ctx: RequestContext | None, project_id: str, domain_id: str,
                rule: str = "identity:get_project") -> RequestContext:
    """Admin, system reader, a reader of the project's domain, or a token scoped to it."""
    if ctx is not None and (system_reader(ctx) or ctx.project_id == project_id or
                            (ctx.domain_id == domain_id and ctx.can_read)):
        return ctx
    raise deny(rule)


def admin_or_domain_manager(ctx: RequestContext | None, domain_id: str | None, rule: str
                            ) -> RequestContext:
    """Keystone's ADMIN_OR_DOMAIN_MANAGER: an admin, or the manager role on a token
    scoped to the domain the project is (or will be) in."""
    if ctx is not None and (ctx.is_admin or (
            domain_id is not None and ctx.domain_id == domain_id and ctx.is_manager)):
        return ctx
    raise deny(rule)
