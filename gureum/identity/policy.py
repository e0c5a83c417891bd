"""Who may call which identity API: Keystone's default policies (2024.1 and later).

Admin may do everything. System readers (a reader's system-scoped token) read
everything. A token scoped to a domain gives its roles on that domain: a
reader reads the domain's projects, users, groups, grants and role
assignments, and a manager (Keystone's domain manager persona) also creates,
changes and deletes the domain's projects, users and groups, puts the
domain's users into its groups, and grants the roles of
``domain_managed_target_role`` (manager, member, reader: never admin or
service) to the domain's users and groups on the domain and its projects.
Every other caller reads and manages only itself: its own user, password,
projects, groups, application credentials and tokens, and the project its
token is scoped to.

The checks take what the target is (its domain, the role's name) rather than
the rows, so a handler looks the target up first and passes ``None`` for a
target that does not exist: then only an admin passes, and learns that it is
a 404, as with Keystone (whose policy sees an empty target).
"""

from __future__ import annotations

from gureum.context import RequestContext
from gureum.errors import Forbidden

# Keystone's rule ``domain_managed_target_role``: the roles a domain manager may
# grant and revoke. Anything above manager (admin) would let it escalate.
DOMAIN_MANAGED_ROLES = frozenset({"manager", "member", "reader"})


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


def system_reader(ctx: RequestContext | None) -> bool:
    """Keystone's ``role:reader and system_scope:all`` (or any admin)."""
    return ctx is not None and (ctx.is_admin or ctx.is_system_reader)


def admin_or_system_reader(ctx: RequestContext | None, rule: str) -> RequestContext:
    """Keystone's RULE_ADMIN_OR_SYSTEM_READER (implied roles, domain-specific roles)."""
    if ctx is None or not system_reader(ctx):
        raise deny(rule)
    return ctx


def _domain_reader(ctx: RequestContext, domain_id: str | None) -> bool:
    """``role:reader and domain_id:%(target…domain_id)s``: a reader of a token scoped to
    the domain the target is in."""
    return bool(ctx.domain_id) and domain_id == ctx.domain_id and ctx.can_read


def _domain_manager(ctx: RequestContext, domain_id: str | None) -> bool:
    """``role:manager and domain_id:%(target…domain_id)s``."""
    return bool(ctx.domain_id) and domain_id == ctx.domain_id and ctx.is_manager


def listing(ctx: RequestContext | None, rule: str) -> str | None:
    """A list under ADMIN_OR_SYSTEM_READER_OR_DOMAIN_READER (projects, users, groups,
    domains, role assignments): the domain the list is cut to, or None for all.

    A domain-scoped token lists its domain's records only, whoever holds it (Keystone
    filters every list by the token's domain); admins and system readers list all.
    """
    if ctx is not None and ctx.domain_id and ctx.can_read:
        return ctx.domain_id
    if system_reader(ctx):
        return None
    raise deny(rule)


def list_projects(ctx: RequestContext | None) -> str | None:
    """``identity:list_projects``. Project members list theirs with /v3/auth/projects
    or /v3/users/{id}/projects."""
    return listing(ctx, "identity:list_projects")


def read_in_domain(ctx: RequestContext | None, domain_id: str | None, rule: str
                   ) -> RequestContext:
    """Admin, system reader, or a reader of the target's domain (groups, grants)."""
    if ctx is not None and (system_reader(ctx) or _domain_reader(ctx, domain_id)):
        return ctx
    raise deny(rule)


def read_user(ctx: RequestContext | None, user_id: str, domain_id: str | None, rule: str
              ) -> RequestContext:
    """The user itself, or as ``read_in_domain`` for the user's domain (get_user,
    list_user_projects, list_groups_for_user)."""
    if ctx is not None and ctx.user_id == user_id:
        return ctx
    return read_in_domain(ctx, domain_id, rule)


def get_project(ctx: RequestContext | None, project_id: str, domain_id: str,
                rule: str = "identity:get_project") -> RequestContext:
    """Admin, system reader, a reader of the project's domain, or a token scoped to it."""
    if ctx is not None and (system_reader(ctx) or ctx.project_id == project_id or
                            _domain_reader(ctx, domain_id or None)):
        return ctx
    raise deny(rule)


def get_domain(ctx: RequestContext | None, domain_id: str) -> RequestContext:
    """Admin, system reader, or any token scoped to the domain or to one of its projects."""
    if ctx is not None and (system_reader(ctx) or ctx.domain_id == domain_id or
                            ctx.project_domain_id == domain_id):
        return ctx
    raise deny("identity:get_domain")


def admin_or_domain_manager(ctx: RequestContext | None, domain_id: str | None, rule: str
                            ) -> RequestContext:
    """Keystone's ADMIN_OR_DOMAIN_MANAGER: an admin, or the manager role on a token
    scoped to the domain the target is (or will be) in."""
    if ctx is not None and (ctx.is_admin or _domain_manager(ctx, domain_id)):
        return ctx
    raise deny(rule)


def group_membership(ctx: RequestContext | None, group_domain: str | None,
                     user_domain: str | None, rule: str, change: bool) -> RequestContext:
    """Checking (a reader) or changing (a manager) whether a user is in a group: both
    must be in the token's domain."""
    if ctx is not None:
        if ctx.is_admin or (not change and system_reader(ctx)):
            return ctx
        allowed = _domain_manager if change else _domain_reader
        if group_domain == user_domain and allowed(ctx, group_domain):
            return ctx
    raise deny(rule)


def change_grant(ctx: RequestContext | None, rule: str, actor_domain: str | None,
                 target_domain: str | None, role_name: str | None) -> RequestContext:
    """create_grant and revoke_grant: an admin, or a manager of the domain both the
    user (group) and the project (domain) are in, granting a role of
    DOMAIN_MANAGED_ROLES."""
    if ctx is not None and (ctx.is_admin or (
            actor_domain == target_domain and _domain_manager(ctx, target_domain) and
            role_name in DOMAIN_MANAGED_ROLES)):
        return ctx
    raise deny(rule)


def read_grant(ctx: RequestContext | None, rule: str, actor_domain: str | None,
               target_domain: str | None, role_domain: str | None = "") -> RequestContext:
    """check_grant and list_grants: a reader of the domain both actor and target are
    in; a checked role must be global (``""``) or that domain's own."""
    if ctx is not None and (system_reader(ctx) or (
            actor_domain == target_domain and _domain_reader(ctx, target_domain) and
            role_domain in ("", ctx.domain_id))):
        return ctx
    raise deny(rule)


def list_roles(ctx: RequestContext | None, domain_roles: bool) -> RequestContext:
    """Global roles: admin, system reader, or a manager of a domain-scoped token (it
    picks the roles it grants). Domain-specific roles: admin or system reader."""
    if ctx is not None and (system_reader(ctx) or (
            not domain_roles and ctx.domain_id and ctx.is_manager)):
        return ctx
    raise deny("identity:list_domain_roles" if domain_roles else "identity:list_roles")


def get_role(ctx: RequestContext | None, role_name: str, role_domain: str) -> RequestContext:
    """A global role: admin, system reader, or a manager reading a role it may grant.
    A domain-specific role: admin or system reader."""
    if ctx is not None and (system_reader(ctx) or (
            not role_domain and ctx.is_manager and role_name in DOMAIN_MANAGED_ROLES)):
        return ctx
    raise deny("identity:get_domain_role" if role_domain else "identity:get_role")


def reader_or_admin(ctx: RequestContext | None, rule: str) -> RequestContext:
    """Readers of the catalog (regions, services, endpoints): any scoped caller may
    look, only admin may change."""
    if ctx is None or not (ctx.is_admin or ctx.can_read):
        raise deny(rule)
    return ctx
