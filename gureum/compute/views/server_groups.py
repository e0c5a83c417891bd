"""os-server-groups wire shape: policies (list) before 2.64, policy + rules after."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.models import ServerGroup


def server_group(req: Request, group: ServerGroup, members: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": group.id, "name": group.name}
    if at_least(req, "2.64"):
        out["policy"] = group.policy
        out["rules"] = dict(group.rules or {})
    else:
        out["policies"] = [group.policy] if group.policy else []
        out["metadata"] = {}
    out["members"] = members
    if at_least(req, "2.13"):
        out["project_id"] = group.project_id
        out["user_id"] = group.user_id
    return out
