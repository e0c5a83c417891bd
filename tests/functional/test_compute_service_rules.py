"""Compute's rules, called as services with a session, without HTTP (issue 7: layers).

The rules that used to live in the handlers (fencing before evacuation, an empty
host before its service is deleted, forcing a host up) are compute services now,
so they can be checked directly. Every test works in a transaction that is rolled
back, so the running cloud never sees its rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute import moves, services
from gureum.compute.models import (
    Aggregate,
    AggregateHost,
    ComputeNode,
    ComputeService,
    Migration,
)
from gureum.config import Settings
from gureum.errors import Conflict, InvalidInput
from tests.harness import InProcessCloud


class _Undo(Exception):
    pass


@pytest.fixture
def s(cloud: InProcessCloud) -> Iterator[Session]:
    """A write transaction that is always rolled back."""
    assert cloud.cloud is not None
    with pytest.raises(_Undo), cloud.cloud.db.session() as session:
        yield session
        raise _Undo


@pytest.fixture
def settings(cloud: InProcessCloud) -> Settings:
    assert cloud.cloud is not None
    return cloud.cloud.settings


def _ghost(s: Session, host: str) -> ComputeService:
    """A compute host that stopped reporting long ago, with its node."""
    svc = ComputeService(host=host, binary="gureum-compute",
                         last_seen_up=dt.datetime(2020, 1, 1))
    s.add(svc)
    s.add(ComputeNode(host=host, hypervisor_hostname=host))
    s.flush()
    return svc


def test_evacuation_needs_the_source_fenced(s: Session, settings: Settings) -> None:
    with pytest.raises(Conflict, match="Compute service of c01 is still in use"):
        moves.check_fenced(s, "c01", settings)
    c01 = services.by_host(s, "c01", "nova-compute")
    services.set_forced_down(s, c01, True)
    moves.check_fenced(s, "c01", settings)  # fenced by the operator
    _ghost(s, "gone")
    moves.check_fenced(s, "gone", settings)  # fenced by its silence


def test_a_host_with_a_move_in_progress_keeps_its_service(s: Session) -> None:
    svc = _ghost(s, "busy")
    s.add(Migration(instance_id=str(uuid.uuid4()), migration_type="resize",
                    status="finished", source_compute="c01", dest_compute="busy"))
    s.flush()
    with pytest.raises(Conflict, match="in-progress migrations"):
        services.delete(s, svc)


def test_an_empty_host_leaves_with_its_node_and_aggregates(s: Session) -> None:
    svc = _ghost(s, "empty")
    agg = Aggregate(name=f"agg-{uuid.uuid4()}")
    s.add(agg)
    s.flush()
    s.add(AggregateHost(aggregate_id=agg.id, host="empty"))
    s.add(Migration(instance_id=str(uuid.uuid4()), migration_type="resize",
                    status="confirmed", source_compute="empty", dest_compute="c01"))
    services.delete(s, svc)  # a finished move does not hold the host
    s.flush()
    assert s.scalar(select(ComputeService).where(ComputeService.host == "empty")) is None
    assert s.scalar(select(ComputeNode).where(ComputeNode.host == "empty")) is None
    assert s.scalar(select(AggregateHost).where(AggregateHost.host == "empty")) is None


def test_a_host_is_not_forced_up_while_its_evacuations_wait(s: Session) -> None:
    svc = _ghost(s, "dead")
    services.set_forced_down(s, svc, True)
    s.add(Migration(instance_id=str(uuid.uuid4()), migration_type="evacuation",
                    status="done", source_compute="dead", dest_compute="c01"))
    s.flush()
    with pytest.raises(InvalidInput, match="`done` evacuation migration records"):
        services.set_forced_down(s, svc, False)
    assert svc.forced_down


def test_the_rolled_back_transactions_left_nothing(cloud: InProcessCloud) -> None:
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        hosts = set(s.scalars(select(ComputeService.host)))
        assert hosts.isdisjoint({"gone", "busy", "empty", "dead"})
        c01 = services.by_host(s, "c01", "nova-compute")
        assert not c01.forced_down
