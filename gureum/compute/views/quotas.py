"""os-quota-sets and /limits wire shapes, with the resources each microversion drops."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request

# Nova's QUOTAS.resources, in its order.
ORDER = ("instances", "cores", "ram", "floating_ips", "fixed_ips", "metadata_items",
         "injected_files", "injected_file_content_bytes", "injected_file_path_bytes",
         "security_groups", "security_group_rules", "key_pairs", "server_groups",
         "server_group_members")
DROPPED_236 = ("fixed_ips", "floating_ips", "security_group_rules", "security_groups")
DROPPED_257 = (*DROPPED_236, "injected_files", "injected_file_content_bytes",
               "injected_file_path_bytes")


def shown(req: Request) -> tuple[str, ...]:
    """The quota resources this request's microversion shows (and accepts)."""
    dropped = DROPPED_257 if at_least(req, "2.57") else \
        DROPPED_236 if at_least(req, "2.36") else ()
    return tuple(r for r in ORDER if r not in dropped)


def quota_set(req: Request, project_id: str | None, limits: dict[str, int],
              used: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": project_id} if project_id else {}
    for name in shown(req):
        if used is None:
            out[name] = limits.get(name, -1)
        else:
            out[name] = {"limit": limits.get(name, -1), "in_use": used.get(name, 0),
                         "reserved": 0}
    return {"quota_set": out}


_ABSOLUTE = {"ram": ("maxTotalRAMSize",), "instances": ("maxTotalInstances",),
             "cores": ("maxTotalCores",), "key_pairs": ("maxTotalKeypairs",),
             "floating_ips": ("maxTotalFloatingIps",),
             "metadata_items": ("maxServerMeta", "maxImageMeta"),
             "injected_files": ("maxPersonality",),
             "injected_file_content_bytes": ("maxPersonalitySize",),
             "security_groups": ("maxSecurityGroups",),
             "security_group_rules": ("maxSecurityGroupRules",),
             "server_groups": ("maxServerGroups",),
             "server_group_members": ("maxServerGroupMembers",)}
_USED = {"totalRAMUsed": "ram", "totalCoresUsed": "cores", "totalInstancesUsed": "instances",
         "totalFloatingIpsUsed": "floating_ips", "totalSecurityGroupsUsed": "security_groups",
         "totalServerGroupsUsed": "server_groups"}
_LIMITS_DROPPED_236 = ("floating_ips", "security_groups", "security_group_rules")
_LIMITS_DROPPED_257 = (*_LIMITS_DROPPED_236, "injected_files", "injected_file_content_bytes")


def limits(req: Request, hard: dict[str, int], used: dict[str, int]) -> dict[str, Any]:
    dropped = _LIMITS_DROPPED_257 if at_least(req, "2.57") else \
        _LIMITS_DROPPED_236 if at_least(req, "2.36") else ()
    absolute: dict[str, int] = {}
    for resource, names in _ABSOLUTE.items():
        if resource in dropped:
            continue
        for name in names:
            if name == "maxImageMeta" and at_least(req, "2.39"):
                continue
            absolute[name] = hard.get(resource, -1)
    for name, resource in _USED.items():
        if resource not in dropped:
            absolute[name] = used.get(resource, 0)
    return {"limits": {"rate": [], "absolute": absolute}}
