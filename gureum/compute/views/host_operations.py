"""Wire shape of a host operation (gureum's drain and restore of a compute host)."""

from __future__ import annotations

from typing import Any

from gureum.compute.models import HostOperation, HostOperationItem
from gureum.compute.views.common import isotime


def item(i: HostOperationItem) -> dict[str, Any]:
    seconds = None
    if i.started_at is not None and i.finished_at is not None:
        seconds = round((i.finished_at - i.started_at).total_seconds(), 1)
    return {"instance_id": i.instance_id, "name": i.name, "position": i.position,
            "policy": i.policy, "status": i.status, "outcome": i.outcome,
            "source": i.source, "dest": i.dest, "migration_id": i.migration_id,
            "message": i.message or None, "started_at": isotime(i.started_at),
            "finished_at": isotime(i.finished_at), "seconds": seconds}


def operation(op: HostOperation, described: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": op.id, "uuid": op.uuid, "host": op.host, "kind": op.kind,
        "status": op.status, "policy": op.policy, "per_server": dict(op.per_server or {}),
        "target": op.target, "reason": op.reason, "drain_id": op.drain_id,
        "created_at": isotime(op.created_at), "updated_at": isotime(op.updated_at),
        "finished_at": isotime(op.finished_at)}
    if described is not None:
        out["counts"] = described["counts"]
        out["items"] = [item(i) for i in described["items"]]
    return out
