"""os-simple-tenant-usage wire shapes: per-server usage and per-project totals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gureum.compute.models import Instance
from gureum.compute.views.common import usg_time


def hours_in(inst: Instance, start: dt.datetime, stop: dt.datetime) -> float:
    """Hours the server existed within [start, stop] (Nova's _hours_for)."""
    launched, terminated = inst.launched_at, inst.terminated_at
    if launched is None or (terminated is not None and terminated < start) or launched > stop:
        return 0.0
    end = min(stop, terminated) if terminated is not None else stop
    return max(0.0, (end - max(launched, start)).total_seconds() / 3600.0)


def server_usage(inst: Instance, start: dt.datetime, stop: dt.datetime, now: dt.datetime
                 ) -> dict[str, Any]:
    flavor = inst.flavor or {}
    ended = inst.terminated_at
    state = "terminated" if ended is not None else inst.vm_state
    uptime = 0
    if inst.launched_at is not None:
        uptime = int(((ended or now) - inst.launched_at).total_seconds())
    return {"instance_id": inst.id, "name": inst.name, "tenant_id": inst.project_id,
            "hours": hours_in(inst, start, stop), "flavor": flavor.get("name", ""),
            "memory_mb": int(flavor.get("ram", 0)),
            "local_gb": int(flavor.get("disk", 0)) + int(flavor.get("ephemeral", 0)),
            "vcpus": int(flavor.get("vcpus", 0)), "started_at": usg_time(inst.launched_at),
            "ended_at": usg_time(ended), "state": state, "uptime": uptime}


def tenant_usages(instances: list[Instance], start: dt.datetime, stop: dt.datetime,
                  now: dt.datetime, detailed: bool) -> tuple[list[dict[str, Any]],
                                                             list[dict[str, Any]]]:
    """(one summary per project in first-seen order, every server usage)."""
    summaries: dict[str, dict[str, Any]] = {}
    servers = []
    for inst in instances:
        info = server_usage(inst, start, stop, now)
        servers.append(info)
        summary = summaries.get(inst.project_id)
        if summary is None:
            summary = {"tenant_id": inst.project_id, "total_local_gb_usage": 0.0,
                       "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0,
                       "total_hours": 0.0, "start": usg_time(start), "stop": usg_time(stop)}
            if detailed:
                summary["server_usages"] = []
            summaries[inst.project_id] = summary
        hours = info["hours"]
        summary["total_local_gb_usage"] += info["local_gb"] * hours
        summary["total_vcpus_usage"] += info["vcpus"] * hours
        summary["total_memory_mb_usage"] += info["memory_mb"] * hours
        summary["total_hours"] += hours
        if detailed:
            summary["server_usages"].append(info)
    return list(summaries.values()), servers
