"""Who may call which compute API: Nova's default policy, as one table.

Each rule has Nova's name (``os_compute_api:servers:create``) and Nova's
default check string, spelled as one of five checks:

* ADMIN: the admin role;
* MANAGER: Nova's PROJECT_MANAGER_OR_ADMIN (manager of the project, or admin);
* MEMBER: PROJECT_MEMBER_OR_ADMIN (member or admin: may change things);
* READER: PROJECT_READER_OR_ADMIN (reader, member or admin: may look);
* ANY: any authenticated caller with a project-scoped token.

Handlers call ``authorize`` with the rule's name before they act; a refusal
is Nova's 403 ``Policy doesn't allow <rule> to be performed.``. Which servers
a caller may see at all is not a policy question here: another project's
server answers 404 (never 403) from the service that looks it up, so a
project cannot learn what another one has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gureum.context import RequestContext
from gureum.errors import Forbidden


@dataclass(frozen=True)
class Check:
    name: str
    allows: Callable[[RequestContext], bool]


ADMIN = Check("admin", lambda ctx: ctx.is_admin)
MANAGER = Check("project manager or admin", lambda ctx: ctx.is_manager)
MEMBER = Check("project member or admin", lambda ctx: ctx.can_write)
READER = Check("project reader or admin", lambda ctx: ctx.can_read)
ANY = Check("any project-scoped caller", lambda ctx: True)

_P = "os_compute_api:"

RULES: dict[str, Check] = {
    # servers
    _P + "servers:index": READER,
    _P + "servers:detail": READER,
    _P + "servers:show": READER,
    _P + "servers:index:get_all_tenants": ADMIN,
    _P + "servers:detail:get_all_tenants": ADMIN,
    _P + "servers:create": MEMBER,
    _P + "servers:create:forced_host": ADMIN,
    "compute:servers:create:requested_destination": ADMIN,
    _P + "servers:update": MEMBER,
    _P + "servers:create:attach_volume": MEMBER,
    # volumes of servers (os-volume_attachments)
    _P + "os-volumes-attachments:index": READER,
    _P + "os-volumes-attachments:show": READER,
    _P + "os-volumes-attachments:create": MEMBER,
    _P + "os-volumes-attachments:update": MEMBER,
    _P + "os-volumes-attachments:swap": ADMIN,
    _P + "os-volumes-attachments:delete": MEMBER,
    _P + "servers:delete": MEMBER,
    _P + "os-deferred-delete:force": MEMBER,
    # server actions
    _P + "servers:start": MEMBER,
    _P + "servers:stop": MEMBER,
    _P + "servers:reboot": MEMBER,
    _P + "servers:rebuild": MEMBER,
    _P + "servers:resize": MEMBER,
    _P + "servers:confirm_resize": MEMBER,
    _P + "servers:revert_resize": MEMBER,
    _P + "servers:create_image": MEMBER,
    _P + "servers:create_image:allow_volume_backed": MEMBER,
    _P + "servers:trigger_crash_dump": MEMBER,
    _P + "os-pause-server:pause": MEMBER,
    _P + "os-pause-server:unpause": MEMBER,
    _P + "os-suspend-server:suspend": MEMBER,
    _P + "os-suspend-server:resume": MEMBER,
    _P + "os-rescue": MEMBER,
    _P + "os-unrescue": MEMBER,
    _P + "os-admin-password": MEMBER,
    _P + "os-lock-server:lock": MEMBER,
    _P + "os-lock-server:unlock": MEMBER,
    _P + "os-lock-server:unlock:unlock_override": ADMIN,
    _P + "os-admin-actions:reset_state": ADMIN,
    _P + "os-console-output": MEMBER,  # the console may hold secrets: not a reader's
    _P + "os-remote-consoles": MEMBER,
    _P + "os-console-auth-tokens": ADMIN,
    _P + "os-create-backup": MEMBER,
    _P + "os-shelve:shelve": MEMBER,
    _P + "os-shelve:shelve_offload": ADMIN,
    _P + "os-shelve:unshelve": MEMBER,
    _P + "os-shelve:unshelve_to_host": ADMIN,
    _P + "os-migrate-server:migrate": MANAGER,
    _P + "os-migrate-server:migrate:host": ADMIN,
    _P + "os-migrate-server:migrate_live": MANAGER,
    _P + "os-migrate-server:migrate_live:host": ADMIN,
    _P + "os-evacuate": ADMIN,
    # a server's sub-resources
    _P + "server-metadata:index": READER,
    _P + "server-metadata:show": READER,
    _P + "server-metadata:create": MEMBER,
    _P + "server-metadata:update": MEMBER,
    _P + "server-metadata:update_all": MEMBER,
    _P + "server-metadata:delete": MEMBER,
    _P + "os-server-tags:index": READER,
    _P + "os-server-tags:show": READER,
    _P + "os-server-tags:update": MEMBER,
    _P + "os-server-tags:update_all": MEMBER,
    _P + "os-server-tags:delete": MEMBER,
    _P + "os-server-tags:delete_all": MEMBER,
    _P + "os-attach-interfaces:list": READER,
    _P + "os-attach-interfaces:show": READER,
    _P + "os-attach-interfaces:create": MEMBER,
    _P + "os-attach-interfaces:delete": MEMBER,
    _P + "os-server-external-events:create": ADMIN,
    _P + "ips:index": READER,
    _P + "ips:show": READER,
    _P + "os-instance-actions:list": READER,
    _P + "os-instance-actions:show": READER,
    # A project manager watches, forces and aborts its servers' live migrations
    # without seeing the hosts; showing one stays the admin's.
    _P + "servers:migrations:index": MANAGER,
    _P + "servers:migrations:index:host": ADMIN,
    _P + "servers:migrations:show": ADMIN,
    _P + "servers:migrations:force_complete": MANAGER,
    _P + "servers:migrations:delete": MANAGER,
    # flavors
    _P + "flavors:index": ANY,
    _P + "flavors:show": ANY,
    _P + "os-flavor-manage:create": ADMIN,
    _P + "os-flavor-manage:update": ADMIN,
    _P + "os-flavor-manage:delete": ADMIN,
    _P + "os-flavor-extra-specs:index": ANY,
    _P + "os-flavor-extra-specs:show": ANY,
    _P + "os-flavor-extra-specs:create": ADMIN,
    _P + "os-flavor-extra-specs:update": ADMIN,
    _P + "os-flavor-extra-specs:delete": ADMIN,
    _P + "os-flavor-access": ADMIN,
    _P + "os-flavor-access:add_tenant_access": ADMIN,
    _P + "os-flavor-access:remove_tenant_access": ADMIN,
    # key pairs belong to users: each user manages its own, admin anyone's (2.10)
    _P + "os-keypairs:index": ANY,
    _P + "os-keypairs:show": ANY,
    _P + "os-keypairs:create": MEMBER,
    _P + "os-keypairs:delete": MEMBER,
    # server groups
    _P + "os-server-groups:index": READER,
    _P + "os-server-groups:index:all_projects": ADMIN,
    _P + "os-server-groups:show": READER,
    _P + "os-server-groups:create": MEMBER,
    _P + "os-server-groups:delete": MEMBER,
    # quotas, limits, usage
    _P + "os-quota-sets:show": READER,
    _P + "os-quota-sets:detail": READER,
    _P + "os-quota-sets:defaults": ANY,
    _P + "os-quota-sets:update": ADMIN,
    _P + "os-quota-sets:delete": ADMIN,
    _P + "limits": ANY,
    _P + "limits:other_project": ADMIN,
    _P + "os-simple-tenant-usage:list": ADMIN,
    _P + "os-simple-tenant-usage:show": READER,
    # the operator's resources
    _P + "os-services:list": ADMIN,
    _P + "os-services:update": ADMIN,
    _P + "os-services:delete": ADMIN,
    _P + "os-hypervisors:list": ADMIN,
    _P + "os-hypervisors:list-detail": ADMIN,
    _P + "os-hypervisors:statistics": ADMIN,
    _P + "os-hypervisors:show": ADMIN,
    _P + "os-hypervisors:uptime": ADMIN,
    _P + "os-hypervisors:search": ADMIN,
    _P + "os-hypervisors:servers": ADMIN,
    # gureum's own: draining and restoring a compute host (compute/host_operations.py)
    "gureum:host-operations:list": ADMIN,
    "gureum:host-operations:show": ADMIN,
    "gureum:host-operations:create": ADMIN,
    "gureum:host-operations:update": ADMIN,
    _P + "os-availability-zone:list": ANY,
    _P + "os-availability-zone:detail": ADMIN,
    _P + "os-aggregates:index": ADMIN,
    _P + "os-aggregates:create": ADMIN,
    _P + "os-aggregates:show": ADMIN,
    _P + "os-aggregates:update": ADMIN,
    _P + "os-aggregates:delete": ADMIN,
    _P + "os-aggregates:add_host": ADMIN,
    _P + "os-aggregates:remove_host": ADMIN,
    _P + "os-aggregates:set_metadata": ADMIN,
    _P + "os-aggregates:action": ADMIN,  # a body that names no known action
    "compute:aggregates:images": ADMIN,
    # A project manager lists its own project's migrations (naming it in project_id),
    # without the hosts.
    _P + "os-migrations:index": MANAGER,
    _P + "os-migrations:index:all_projects": ADMIN,
    _P + "os-migrations:index:host": ADMIN,
    _P + "extensions": ANY,
    # security groups (a proxy to the networking service's)
    _P + "os-security-groups:add": MEMBER,
    _P + "os-security-groups:remove": MEMBER,
    _P + "os-security-groups:list": READER,
    _P + "os-security-groups:get": READER,
    _P + "os-security-groups:show": READER,
    _P + "os-security-groups:create": MEMBER,
    _P + "os-security-groups:update": MEMBER,
    _P + "os-security-groups:delete": MEMBER,
    _P + "os-security-groups:rule:create": MEMBER,
    _P + "os-security-groups:rule:delete": MEMBER,
}


def deny(rule: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow {rule} to be performed.")


def scoped(ctx: RequestContext | None) -> RequestContext:
    """Every compute call needs a project-scoped token (Nova's APIs are per project)."""
    if ctx is None:
        raise deny("os_compute_api")
    if not ctx.project_id:
        raise Forbidden("A project-scoped token is required for the compute API.")
    return ctx


def allowed(ctx: RequestContext, rule: str, project_id: str | None = None,
            user_id: str | None = None) -> bool:
    """Whether the rule allows ctx. With a target project_id (user_id), it must also be
    ctx's own project (user), or ctx an admin: Nova's ``project_id:%(project_id)s``
    (``user_id:%(user_id)s`` for key pairs)."""
    if not RULES[rule].allows(ctx):
        return False
    if ctx.is_admin:
        return True
    return (project_id is None or project_id == ctx.project_id) and \
        (user_id is None or user_id == ctx.user_id)


def authorize(ctx: RequestContext, rule: str, project_id: str | None = None,
              user_id: str | None = None) -> RequestContext:
    """ctx if the rule allows it (see ``allowed``); Nova's 403 otherwise."""
    if not allowed(ctx, rule, project_id, user_id):
        raise deny(rule)
    return ctx
