"""/v2.1/servers/{id}/migrations: in-progress live migrations (2.22 to 2.80)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.agent.messages import AbortMigration, ForceCompleteMigration
from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute.api.common import call_agent, ctx_of, instance_for, require_admin
from gureum.compute.models import Migration
from gureum.compute.views.common import isotime
from gureum.errors import Conflict, InvalidInput, NotFound

router = Router()

IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


def view(req: Request, m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {
        "created_at": isotime(m.created_at), "dest_compute": m.dest_compute,
        "dest_host": m.dest_host, "dest_node": m.dest_node,
        "disk_processed_bytes": m.disk_processed_bytes,
        "disk_remaining_bytes": m.disk_remaining_bytes,
        "disk_total_bytes": m.disk_total_bytes, "id": m.id,
        "memory_processed_bytes": m.memory_processed_bytes,
        "memory_remaining_bytes": m.memory_remaining_bytes,
        "memory_total_bytes": m.memory_total_bytes, "server_uuid": m.instance_id,
        "source_compute": m.source_compute, "source_node": m.source_node,
        "status": m.status, "updated_at": isotime(m.updated_at),
    }
    if at_least(req, "2.59"):
        out["uuid"] = m.uuid
    if at_least(req, "2.80"):
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out


def _guard(req: Request, since: str) -> None:
    if not at_least(req, since):
        raise NotFound("The resource could not be found.")
    require_admin(ctx_of(req), "os_compute_api:servers:migrations")


def _live(s: Session, req: Request) -> Migration:
    ctx = ctx_of(req)
    inst = instance_for(s, ctx, req.path_params["server_id"])
    try:
        mig_id = int(req.path_params["migration_id"])
    except ValueError:
        raise NotFound(f"Migration {req.path_params['migration_id']} could not be "
                       "found.") from None
    mig = s.get(Migration, mig_id)
    if mig is None or mig.instance_id != inst.id:
        raise NotFound(f"Migration {mig_id} could not be found.")
    if mig.migration_type != "live-migration" or mig.status not in IN_PROGRESS:
        raise NotFound(f"Migration {mig_id} for instance {inst.id} is not in progress.")
    return mig


@router.get("/v2.1/servers/{server_id}/migrations", tx=True)
def list_migrations(req: Request, s: Session) -> Response:
    _guard(req, "2.23")
    inst = instance_for(s, ctx_of(req), req.path_params["server_id"])
    rows = s.scalars(select(Migration).where(
        Migration.instance_id == inst.id, Migration.migration_type == "live-migration",
        Migration.status.in_(IN_PROGRESS)).order_by(Migration.id))
    return json_response({"migrations": [view(req, m) for m in rows]})


@router.get("/v2.1/servers/{server_id}/migrations/{migration_id}", tx=True)
def show_migration(req: Request, s: Session) -> Response:
    _guard(req, "2.23")
    return json_response({"migration": view(req, _live(s, req))})


_force = {"type": "object", "required": ["force_complete"], "additionalProperties": False,
          "properties": {"force_complete": {"type": "null"}}}


@router.post("/v2.1/servers/{server_id}/migrations/{migration_id}/action")
def force_complete(req: Request) -> Response:
    _guard(req, "2.22")
    validate(_force, req.json())
    with req.app_state.db.session(write=False) as s:
        mig = _live(s, req)
        if mig.status != "running" or not mig.source_compute:
            raise Conflict(f"Migration {mig.id} state of instance {mig.instance_id} is "
                           f"{mig.status}. Cannot force_complete_migration while the "
                           "migration is in this state.")
        host, guest = mig.source_compute, mig.instance_id
    call_agent(req, host, ForceCompleteMigration(guest))
    return empty(202)


@router.delete("/v2.1/servers/{server_id}/migrations/{migration_id}")
def abort(req: Request) -> Response:
    _guard(req, "2.24")
    with req.app_state.db.session() as s:
        mig = _live(s, req)
        if mig.status not in ("queued", "preparing", "running") and not at_least(req,
                                                                                 "2.65"):
            raise InvalidInput(f"Migration {mig.id} state of instance {mig.instance_id} is "
                               f"{mig.status}. Cannot abort live migration while the "
                               "migration is in this state.")
        mig.state = {**(mig.state or {}), "abort_requested": True}
        host, guest = mig.source_compute, mig.instance_id
    if host:
        call_agent(req, host, AbortMigration(guest))
    return empty(202)
