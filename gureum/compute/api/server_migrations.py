"""/v2.1/servers/{id}/migrations: a server's live migration in progress (2.22 to 2.80).

Nova's defaults: a project manager lists, forces and aborts its servers' live
migrations and sees no hosts in the list; showing one is the admin's.

Forcing it to complete (2.22) and aborting it (2.24) are answered by the source
host's agent: the handler checks the request in a short transaction and asks
the agent after it (gureum/api/transaction.py), so no transaction waits on an
agent.
"""

from __future__ import annotations

from gureum.agent.messages import AbortMigration, ForceCompleteMigration
from gureum.api.microversion import at_least
from gureum.api.transaction import AfterTransaction
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import migrations, policy
from gureum.compute.api.common import call_agent, ctx_of
from gureum.compute.views import migrations as views
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import NotFound

router = Router()
_RULE = "os_compute_api:servers:migrations:"


def _guard(req: Request, since: str, rule: str) -> RequestContext:
    if not at_least(req, since):
        raise NotFound("The resource could not be found.")
    return policy.authorize(ctx_of(req), _RULE + rule)


def _ids(req: Request) -> tuple[str, str]:
    return req.path_params["server_id"], req.path_params["migration_id"]


@router.get("/v2.1/servers/{server_id}/migrations", tx=True)
def list_migrations(req: Request, s: Session) -> Response:
    ctx = _guard(req, "2.23", "index")
    rows = migrations.live_in_progress(s, ctx, req.path_params["server_id"])
    hosts = policy.allowed(ctx, _RULE + "index:host")
    return json_response({"migrations": [views.server_migration(req, m, hosts)
                                         for m in rows]})


@router.get("/v2.1/servers/{server_id}/migrations/{migration_id}", tx=True)
def show_migration(req: Request, s: Session) -> Response:
    ctx = _guard(req, "2.23", "show")
    mig = migrations.live_migration(s, ctx, *_ids(req))
    return json_response({"migration": views.server_migration(req, mig)})


_force = {"type": "object", "required": ["force_complete"], "additionalProperties": False,
          "properties": {"force_complete": {"type": "null"}}}


@router.post("/v2.1/servers/{server_id}/migrations/{migration_id}/action", tx="read")
def force_complete(req: Request, s: Session) -> AfterTransaction:
    ctx = _guard(req, "2.22", "force_complete")
    validate(_force, req.json())
    host, guest = migrations.force_complete_target(s, ctx, *_ids(req))

    def ask_agent() -> Response:
        call_agent(req, host, ForceCompleteMigration(guest))
        return empty(202)

    return AfterTransaction(ask_agent)


@router.delete("/v2.1/servers/{server_id}/migrations/{migration_id}", tx=True)
def abort(req: Request, s: Session) -> AfterTransaction:
    ctx = _guard(req, "2.24", "delete")
    host, guest = migrations.request_abort(s, ctx, *_ids(req),
                                           after_copy=at_least(req, "2.65"))

    def tell_agent() -> Response:
        if host:
            call_agent(req, host, AbortMigration(guest))
        return empty(202)

    return AfterTransaction(tell_agent)
