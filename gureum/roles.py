"""The role checks every API family's policy starts from: may this caller read,
change, or administer (Keystone's reader, member and admin roles), and does it
own a project's resource.

Each family answers a refusal in its own words (Cinder's "Policy doesn't allow
…", Neutron's PolicyNotAuthorized…), so it makes its checks from its own
``deny`` factory: ``reader, writer, admin = role_checks(errors.policy)``.
"""

from __future__ import annotations

from collections.abc import Callable

from gureum.context import RequestContext

Check = Callable[[RequestContext | None, str], RequestContext]


def _check(allowed: Callable[[RequestContext], bool], deny: Callable[[str], Exception]
           ) -> Check:
    def check(ctx: RequestContext | None, rule: str) -> RequestContext:
        if ctx is None or not allowed(ctx):
            raise deny(rule)
        return ctx
    return check


def role_checks(deny: Callable[[str], Exception]) -> tuple[Check, Check, Check]:
    """(reader, writer, admin): each returns the caller's context when it has the
    role (reader, member or admin; member or admin; admin) and raises
    ``deny(rule)`` otherwise, also when there is no caller."""
    return (_check(lambda ctx: ctx.can_read, deny), _check(lambda ctx: ctx.can_write, deny),
            _check(lambda ctx: ctx.is_admin, deny))


def owns(ctx: RequestContext, project_id: str) -> bool:
    """Admin owns everything; anyone else its own project's resources."""
    return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == project_id)
