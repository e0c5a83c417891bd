"""The scheduler's view of hosts and requests: plain, immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HostState:
    host: str
    node: str
    node_id: int
    enabled: bool
    up: bool
    availability_zone: str
    aggregates: tuple[str, ...] = ()
    aggregate_metadata: dict[str, str] = field(default_factory=dict)
    hypervisor_type: str = "fake"
    vcpus_total: float = 0.0  # after allocation ratio and reservation
    memory_mb_total: float = 0.0
    disk_gb_total: float = 0.0
    vcpus_used: int = 0
    memory_mb_used: int = 0
    disk_gb_used: int = 0

    @property
    def free_vcpus(self) -> float:
        return self.vcpus_total - self.vcpus_used

    @property
    def free_memory_mb(self) -> float:
        return self.memory_mb_total - self.memory_mb_used

    @property
    def free_disk_gb(self) -> float:
        return self.disk_gb_total - self.disk_gb_used


@dataclass(frozen=True)
class RequestSpec:
    instance_id: str
    project_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    availability_zone: str | None = None
    # Admin's "az:host[:node]" or 2.74's requested host/node: only these pass.
    force_host: str | None = None
    force_node: str | None = None
    requested_host: str | None = None
    requested_node: str | None = None
    image_properties: dict[str, Any] = field(default_factory=dict)
    group_policy: str | None = None  # affinity | anti-affinity | soft-affinity | soft-anti-affinity
    group_hosts: frozenset[str] = frozenset()  # hosts where the group's members run
    group_max_server_per_host: int = 1
    same_host: frozenset[str] = frozenset()  # hosts of the instances named by the hint
    different_host: frozenset[str] = frozenset()
    ignore_hosts: frozenset[str] = frozenset()  # already tried (retries) or the source
    extra_specs: dict[str, str] = field(default_factory=dict)
