"""Compute nodes as operators see them (os-hypervisors): with their service and load.

A node shows only while its host has a compute service (deleting the service
hides the node); it is up when the service is; its load is what its
non-deleted instances add up to. Statistics sum the nodes of enabled services
only, as Nova's do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from gureum.compute import zones
from gureum.compute.listing import page
from gureum.compute.models import ComputeNode, ComputeService, Instance
from gureum.config import Settings
from gureum.errors import NotFound
from gureum.paging import SortKey
from gureum.scheduler.select import COMPUTE_BINARY


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


@dataclass(frozen=True)
class Hypervisor:
    node: ComputeNode
    service: ComputeService
    up: bool
    usage: NodeUsage = NodeUsage()
    instances: list[Instance] = field(default_factory=list)


def _services(s: Session) -> dict[str, ComputeService]:
    return {svc.host: svc for svc in s.scalars(
        select(ComputeService).where(ComputeService.binary == COMPUTE_BINARY))}


def _instances(s: Session, hosts: set[str]) -> dict[str, list[Instance]]:
    out: dict[str, list[Instance]] = {}
    if hosts:
        for inst in s.scalars(select(Instance).where(
                Instance.host.in_(hosts), Instance.deleted.is_(False))
                .order_by(Instance.created_at, Instance.seq)):
            out.setdefault(inst.host or "", []).append(inst)
    return out


def _usage(instances: list[Instance]) -> NodeUsage:
    return NodeUsage(running_vms=len(instances),
                     current_workload=sum(1 for i in instances if i.task_state))


def described(s: Session, nodes: list[ComputeNode], settings: Settings) -> list[Hypervisor]:
    """The nodes whose host still has a compute service, with its state and their load."""
    services = _services(s)
    nodes = [n for n in nodes if n.host in services]
    on_host = _instances(s, {n.host for n in nodes})
    return [Hypervisor(n, services[n.host], zones.is_up(services[n.host], settings),
                       _usage(on_host.get(n.host, [])), on_host.get(n.host, []))
            for n in nodes]


def page_nodes(s: Session, limit: int | None, marker: str | None,
               by_uuid: bool) -> list[ComputeNode]:
    """A page of nodes by id; the marker is a node's uuid (2.53+) or its integer id."""
    if not marker:
        where: ColumnElement[bool] = ComputeNode.id.is_(None)  # no marker: not looked up
    elif by_uuid:
        where = ComputeNode.uuid == marker
    else:
        number = _int_id(marker)
        where = ComputeNode.id == number if number is not None else false()
    return page(s, select(ComputeNode), [SortKey(ComputeNode.id)], limit, marker, where,
                not_found="marker [{marker}] not found")


def _int_id(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 <= number < 2**31 else None


def matching(s: Session, pattern: str) -> list[ComputeNode]:
    """Nodes whose hypervisor_hostname contains the pattern (Nova's LIKE %pattern%)."""
    nodes = [n for n in s.scalars(select(ComputeNode).order_by(ComputeNode.id))
             if pattern in n.hypervisor_hostname]
    if not nodes:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return nodes


def get(s: Session, hypervisor_id: str, by_uuid: bool, settings: Settings) -> Hypervisor:
    """One node by uuid (2.53+) or integer id; 404 when it (or its service) is gone."""
    node: ComputeNode | None
    if by_uuid:
        node = s.scalar(select(ComputeNode).where(ComputeNode.uuid == hypervisor_id))
    else:
        number = _int_id(hypervisor_id)
        node = s.get(ComputeNode, number) if number is not None else None
    found = described(s, [node], settings) if node is not None else []
    if not found:
        raise NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    return found[0]


def statistics(s: Session) -> dict[str, int]:
    """The pre-2.88 numbers summed over the nodes of enabled compute services."""
    services = _services(s)
    nodes = [n for n in s.scalars(select(ComputeNode).order_by(ComputeNode.id))
             if n.host in services and not services[n.host].disabled]
    on_host = _instances(s, {n.host for n in nodes})
    totals: Counter[str] = Counter()
    for node in nodes:
        totals.update(statistics_of(node, _usage(on_host.get(node.host, []))))
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
            "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
            "disk_available_least")
    return {"count": len(nodes), **{k: totals.get(k, 0) for k in keys}}
