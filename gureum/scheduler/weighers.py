"""Weighers: order the hosts that passed the filters, best first."""

from __future__ import annotations

from gureum.scheduler.model import HostState, RequestSpec


def weigh(hosts: list[HostState], r: RequestSpec, strategy: str = "spread"
          ) -> list[HostState]:
    """Spread: most free RAM first. Pack: least free RAM first. Soft group policies first.

    Ties break by host name, so the order is deterministic.
    """
    sign = -1.0 if strategy == "spread" else 1.0

    def key(h: HostState) -> tuple[float, float, str]:
        group = 0.0
        if r.group_policy == "soft-affinity" and r.group_hosts:
            group = 0.0 if h.host in r.group_hosts else 1.0
        elif r.group_policy == "soft-anti-affinity":
            group = 1.0 if h.host in r.group_hosts else 0.0
        return (group, sign * h.free_memory_mb, h.host)

    return sorted(hosts, key=key)
