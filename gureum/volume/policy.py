"""Who may see and change which Block Storage resources (Cinder's default policy).

* admin may do everything, in every project (``all_tenants`` listings too);
* a member acts on its own project's volumes, snapshots and transfers; a reader
  only reads;
* another project's volume or snapshot is 404, never 403, so a project cannot
  learn what another one has;
* volume types, QoS specs, quotas of others, services, pools and status resets
  are admin's; a private volume type is visible to the projects given access.
"""

from __future__ import annotations

from gureum.context import RequestContext
from gureum.volume import errors as e


def reader(ctx: RequestContext | None, rule: str) -> RequestContext:
    if ctx is None or not ctx.can_read:
        raise e.policy(rule)
    return ctx


def writer(ctx: RequestContext | None, rule: str) -> RequestContext:
    if ctx is None or not ctx.can_write:
        raise e.policy(rule)
    return ctx


def admin(ctx: RequestContext | None, rule: str) -> RequestContext:
    if ctx is None or not ctx.is_admin:
        raise e.policy(rule)
    return ctx


def owns(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == project_id)


def project_of(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise e.bad_request("A project-scoped token is required.")
    return ctx.project_id
