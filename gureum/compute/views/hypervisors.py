"""os-hypervisors wire shapes: a compute node with its service, per microversion."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.hypervisors import NodeUsage, statistics_of
from gureum.compute.models import ComputeNode, ComputeService, Instance
from gureum.db import utcnow


def uptime(svc: ComputeService, now: dt.datetime | None = None) -> str:
    """`uptime`'s format, counted from when the host's service first registered.

    gureum does not measure the hosts' load; the load average reads 0.00.
    """
    now = now or utcnow()
    seconds = max(0, int((now - svc.created_at).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    up = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    return (f" {now:%H:%M:%S} up {up}{hours:2d}:{minutes:02d},  0 users,  "
            "load average: 0.00, 0.00, 0.00")


def servers(instances: list[Instance]) -> list[dict[str, str]]:
    return [{"name": i.name, "uuid": i.id} for i in instances]


def hypervisor(req: Request, node: ComputeNode, svc: ComputeService, up: bool, *,
               detail: bool, usage: NodeUsage | None = None,
               instances: list[Instance] | None = None,
               with_servers: bool = False) -> dict[str, Any]:
    uuid_ids = at_least(req, "2.53")
    out: dict[str, Any] = {"id": node.uuid if uuid_ids else node.id,
                           "hypervisor_hostname": node.hypervisor_hostname,
                           "state": "up" if up else "down",
                           "status": "disabled" if svc.disabled else "enabled"}
    if detail:
        out.update({"hypervisor_type": node.hypervisor_type,
                    "hypervisor_version": node.hypervisor_version, "host_ip": node.host_ip,
                    "service": {"id": svc.uuid if uuid_ids else svc.id, "host": node.host,
                                "disabled_reason": svc.disabled_reason}})
        if at_least(req, "2.88"):
            out["uptime"] = uptime(svc)
        else:
            out.update(statistics_of(node, usage or NodeUsage()))
            cpu_info = dict(node.cpu_info or {})
            out["cpu_info"] = cpu_info if at_least(req, "2.28") else json.dumps(cpu_info)
    if instances:
        out["servers"] = servers(instances)
    elif with_servers and at_least(req, "2.75"):
        out["servers"] = []
    return out
