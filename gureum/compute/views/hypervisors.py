"""os-hypervisors wire shapes: a compute node with its service, per microversion."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.models import ComputeNode, ComputeService, Instance
from gureum.db import utcnow


@dataclass(frozen=True)
class NodeUsage:
    """What the node's instances add up to, as Nova's resource tracker reports it."""

    running_vms: int = 0
    current_workload: int = 0  # instances with a task in progress


def memory_used(node: ComputeNode) -> int:
    """Nova counts the host's reserved memory as used."""
    return node.memory_mb_used + node.reserved_memory_mb


def disk_used(node: ComputeNode) -> int:
    return node.local_gb_used + node.reserved_disk_gb


def statistics_of(node: ComputeNode, usage: NodeUsage) -> dict[str, int]:
    """The pre-2.88 numbers of one node (also summed by /os-hypervisors/statistics)."""
    free_disk = node.local_gb - disk_used(node)
    return {"vcpus": node.vcpus, "memory_mb": node.memory_mb, "local_gb": node.local_gb,
            "vcpus_used": node.vcpus_used, "memory_mb_used": memory_used(node),
            "local_gb_used": disk_used(node),
            "free_ram_mb": node.memory_mb - memory_used(node), "free_disk_gb": free_disk,
            "current_workload": usage.current_workload, "running_vms": usage.running_vms,
            "disk_available_least": free_disk}


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
