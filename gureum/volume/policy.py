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
from gureum.roles import owns as owns
from gureum.roles import role_checks
from gureum.volume import errors as e

reader, writer, admin = role_checks(e.policy)


def project_of(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise e.bad_request("A project-scoped token is required.")
    return ctx.project_id
