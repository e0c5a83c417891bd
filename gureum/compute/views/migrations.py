"""Migration wire shapes.

os-migrations: 2.23 adds migration_type and links, 2.59 uuid, 2.80 the owner.
A server's live migrations (/servers/{id}/migrations, 2.22+): their progress,
2.59 uuid, 2.80 the owner. The hosts are shown to admins only: to a project
manager the host fields are there with null values, as in Nova.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.migrations import LIVE_IN_PROGRESS
from gureum.compute.models import Migration
from gureum.compute.views.common import isotime, links, usg_time


def flavor_number(flavor_id: str | None) -> int | None:
    """Nova shows its internal integer flavor ids here; gureum's numeric flavor ids fit."""
    if flavor_id and flavor_id.isdigit() and int(flavor_id) < 2**31:
        return int(flavor_id)
    return None


HOST_FIELDS = ("source_compute", "source_node", "dest_compute", "dest_node", "dest_host")


def _hosts(m: Migration, shown: bool) -> dict[str, Any]:
    """Where the move runs, or (``shown`` false: the caller may not know the hosts,
    Nova's ``…:index:host`` rule) the same keys with null values, as Nova answers."""
    return {name: getattr(m, name) if shown else None for name in HOST_FIELDS}


def migration(req: Request, m: Migration, hosts: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id, "instance_uuid": m.instance_id, "status": m.status, **_hosts(m, hosts),
        "old_instance_type_id": flavor_number(m.old_flavor_id),
        "new_instance_type_id": flavor_number(m.new_flavor_id),
        "created_at": usg_time(m.created_at), "updated_at": usg_time(m.updated_at),
    }
    if at_least(req, "2.23"):
        out["migration_type"] = m.migration_type
        if m.migration_type == "live-migration" and m.status in LIVE_IN_PROGRESS:
            out["links"] = links(req, f"servers/{m.instance_id}/migrations", str(m.id))
    if at_least(req, "2.59"):
        out["uuid"] = m.uuid
    if at_least(req, "2.80"):
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out


def server_migration(req: Request, m: Migration, hosts: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "created_at": isotime(m.created_at), **_hosts(m, hosts),
        "disk_processed_bytes": m.disk_processed_bytes,
        "disk_remaining_bytes": m.disk_remaining_bytes,
        "disk_total_bytes": m.disk_total_bytes, "id": m.id,
        "memory_processed_bytes": m.memory_processed_bytes,
        "memory_remaining_bytes": m.memory_remaining_bytes,
        "memory_total_bytes": m.memory_total_bytes, "server_uuid": m.instance_id,
        "status": m.status, "updated_at": isotime(m.updated_at),
    }
    if at_least(req, "2.59"):
        out["uuid"] = m.uuid
    if at_least(req, "2.80"):
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out
