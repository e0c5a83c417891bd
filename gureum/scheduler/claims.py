"""Claims: take a host's resources in one conditional UPDATE.

``UPDATE compute_nodes SET used = used + x WHERE id = … AND used + x <= capacity``
is atomic on every database, so concurrent boots can never oversubscribe a
node: of two claims racing for the last slot, one changes a row and the other
changes none. Each claim is recorded as an Allocation for its consumer.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gureum.compute.models import Allocation, ComputeNode


def claim(s: Session, node_id: int, consumer_id: str, vcpus: int, memory_mb: int,
          disk_gb: int) -> bool:
    """Take resources on a node for a consumer; False if they are not there (any more)."""
    n = ComputeNode
    result = s.execute(
        update(n).where(
            n.id == node_id,
            n.vcpus_used + vcpus <= n.vcpus * n.cpu_allocation_ratio - n.reserved_vcpus,
            n.memory_mb_used + memory_mb
            <= n.memory_mb * n.ram_allocation_ratio - n.reserved_memory_mb,
            n.local_gb_used + disk_gb
            <= n.local_gb * n.disk_allocation_ratio - n.reserved_disk_gb,
        ).values(vcpus_used=n.vcpus_used + vcpus, memory_mb_used=n.memory_mb_used + memory_mb,
                 local_gb_used=n.local_gb_used + disk_gb)
        .execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    existing = s.get(Allocation, (consumer_id, node_id))
    if existing is not None:
        existing.vcpus += vcpus
        existing.memory_mb += memory_mb
        existing.disk_gb += disk_gb
    else:
        s.add(Allocation(consumer_id=consumer_id, node_id=node_id, vcpus=vcpus,
                         memory_mb=memory_mb, disk_gb=disk_gb))
    s.flush()
    return True


def release(s: Session, consumer_id: str, node_id: int | None = None) -> int:
    """Give back what a consumer holds (on one node, or everywhere); return nodes freed."""
    stmt = select(Allocation).where(Allocation.consumer_id == consumer_id)
    if node_id is not None:
        stmt = stmt.where(Allocation.node_id == node_id)
    freed = 0
    for alloc in s.scalars(stmt).all():
        n = ComputeNode
        s.execute(update(n).where(n.id == alloc.node_id).values(
            vcpus_used=n.vcpus_used - alloc.vcpus,
            memory_mb_used=n.memory_mb_used - alloc.memory_mb,
            local_gb_used=n.local_gb_used - alloc.disk_gb,
        ).execution_options(synchronize_session=False))
        s.delete(alloc)
        freed += 1
    s.flush()
    return freed


def move(s: Session, from_consumer: str, to_consumer: str) -> None:
    """Hand a consumer's allocations to another (e.g. instance → migration record)."""
    for alloc in s.scalars(select(Allocation).where(
            Allocation.consumer_id == from_consumer)).all():
        s.execute(delete(Allocation).where(Allocation.consumer_id == from_consumer,
                                           Allocation.node_id == alloc.node_id))
        s.add(Allocation(consumer_id=to_consumer, node_id=alloc.node_id, vcpus=alloc.vcpus,
                         memory_mb=alloc.memory_mb, disk_gb=alloc.disk_gb))
    s.flush()


def swap(s: Session, one: str, other: str) -> None:
    """Exchange two consumers' allocations (a resize: the instance takes the destination's,
    the migration record the source's). The stand-in consumer id in between is a fresh
    UUID: consumer ids are 36 characters on every database."""
    stand_in = str(uuid.uuid4())
    move(s, one, stand_in)
    move(s, other, one)
    move(s, stand_in, other)


def heal(s: Session, node_id: int) -> None:
    """Recompute a node's usage from its allocations (after a crash or a bug)."""
    allocs = s.scalars(select(Allocation).where(Allocation.node_id == node_id)).all()
    s.execute(update(ComputeNode).where(ComputeNode.id == node_id).values(
        vcpus_used=sum(a.vcpus for a in allocs),
        memory_mb_used=sum(a.memory_mb for a in allocs),
        local_gb_used=sum(a.disk_gb for a in allocs)))
