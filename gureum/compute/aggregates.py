"""Host aggregates and the availability zones they define, with Nova's rules.

A host is in at most one availability zone: adding it to an aggregate whose
zone differs from the zone another of its aggregates gives it is refused, and
so is any change that would move instances that already run on a host to
another zone (instances keep the zone they were booted in). The caller owns
the session.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.compute import zones
from gureum.compute.models import Aggregate, AggregateHost, Instance
from gureum.db import utcnow
from gureum.errors import Conflict, GureumError, InvalidInput, NotFound

ADD, REMOVE, UPDATE, UPDATE_META = "add", "remove", "update", "update_meta"
_PREFIX = {ADD: "Cannot add host to aggregate {id}", REMOVE: "Cannot remove host from "
           "aggregate {id}", UPDATE: "Cannot update aggregate {id}",
           UPDATE_META: "Cannot update metadata of aggregate {id}"}


class InvalidAggregateAction(InvalidInput):
    """Nova's InvalidAggregateAction*: 400, or 409 where the route says so."""

    def __init__(self, action: str, aggregate_id: int, reason: str) -> None:
        super().__init__(f"{_PREFIX[action].format(id=aggregate_id)}. Reason: {reason}.")


def as_conflict(err: GureumError) -> Conflict:
    return Conflict(err.message)


def get(s: Session, aggregate_id: int) -> Aggregate:
    agg = s.get(Aggregate, aggregate_id)
    if agg is None:
        raise NotFound(f"Aggregate {aggregate_id} could not be found.")
    return agg


def list_all(s: Session) -> list[Aggregate]:
    return list(s.scalars(select(Aggregate).order_by(Aggregate.id)))


def hosts_of(s: Session, aggregate_id: int) -> list[str]:
    return list(s.scalars(select(AggregateHost.host).where(
        AggregateHost.aggregate_id == aggregate_id).order_by(AggregateHost.host)))


def _instances_on(s: Session, hosts: list[str]) -> int:
    if not hosts:
        return 0
    return s.scalar(select(func.count(Instance.id)).where(
        Instance.host.in_(hosts), Instance.deleted.is_(False))) or 0


def _zones_of_host(s: Session, host: str, except_id: int | None = None) -> set[str]:
    found = set()
    for agg in s.scalars(select(Aggregate).join(
            AggregateHost, AggregateHost.aggregate_id == Aggregate.id).where(
            AggregateHost.host == host)):
        zone = zones.aggregate_zone(agg)
        if zone and agg.id != except_id:
            found.add(zone)
    return found


def check_zone_change(s: Session, agg: Aggregate, metadata: dict[str, str | None],
                      action: str, hosts: list[str] | None = None,
                      check_instances: bool = False) -> None:
    """Nova's is_safe_to_update_az: refuse empty zones, two zones per host, moving guests."""
    if "availability_zone" not in metadata:
        return
    new_zone = metadata["availability_zone"]
    if not new_zone:
        raise InvalidAggregateAction(action, agg.id, f"Aggregate {agg.name} does not support "
                                     "empty named availability zone")
    targets = hosts if hosts is not None else hosts_of(s, agg.id)
    conflicting = sorted({z for h in targets for z in _zones_of_host(s, h, agg.id)
                          if z != new_zone})
    if conflicting:
        raise InvalidAggregateAction(action, agg.id, "One or more hosts already in "
                                     f"availability zone(s) {conflicting}")
    if check_instances and zones.aggregate_zone(agg) != new_zone and \
            _instances_on(s, targets):
        raise InvalidAggregateAction(action, agg.id,
                                     "One or more hosts contain instances in this zone")


def _check_guests_stay(s: Session, agg: Aggregate, host: str, adding: bool) -> None:
    """Refuse adding/removing a host with guests when that changes the host's zone."""
    count = _instances_on(s, [host])
    zone = zones.aggregate_zone(agg)
    if not count or not zone:
        return
    others = _zones_of_host(s, host, except_id=agg.id)
    other = sorted(others)[0] if others else None
    old, new = (other, zone) if adding else (zone, other)
    if old != new:
        verb = "added to" if adding else "removed from"
        raise InvalidAggregateAction(
            ADD if adding else REMOVE, agg.id,
            f"The host cannot be {verb} the aggregate as the availability zone of the host "
            f"would change from '{old}' to '{new}' but the host already has {count} "
            "instance(s). Changing the AZ of an existing instance is not supported by this "
            "action. Move the instances away from this host then try again. If you need to "
            "move the instances between AZs then you can use shelve_offload and unshelve "
            "to achieve this.")


def _flush_named(s: Session, name: str) -> None:
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(f"Aggregate {name} already exists.") from None


def create(s: Session, name: str, zone: str | None) -> Aggregate:
    if s.scalar(select(Aggregate.id).where(Aggregate.name == name)) is not None:
        raise Conflict(f"Aggregate {name} already exists.")
    agg = Aggregate(name=name, metadata_={"availability_zone": zone} if zone else {})
    s.add(agg)
    _flush_named(s, name)
    return agg


def update(s: Session, agg: Aggregate, name: str | None, values: dict[str, str | None]
           ) -> None:
    if name is not None and name != agg.name:
        if s.scalar(select(Aggregate.id).where(Aggregate.name == name)) is not None:
            raise Conflict(f"Aggregate {name} already exists.")
        agg.name = name
        _flush_named(s, name)
    check_zone_change(s, agg, values, UPDATE, check_instances=True)
    if values:
        set_metadata(s, agg, values, checked=True)
    agg.updated_at = utcnow()


def set_metadata(s: Session, agg: Aggregate, metadata: dict[str, str | None],
                 checked: bool = False) -> None:
    """Merge metadata; a None value removes its key."""
    if not checked:
        check_zone_change(s, agg, metadata, UPDATE_META, check_instances=True)
    merged = dict(agg.metadata_ or {})
    for key, value in metadata.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    agg.metadata_ = merged
    agg.updated_at = utcnow()


def add_host(s: Session, agg: Aggregate, host: str) -> None:
    if zones.compute_service(s, host) is None:
        raise NotFound(f"Compute host {host} could not be found.")
    if s.get(AggregateHost, (agg.id, host)) is not None:
        raise Conflict(f"Aggregate {agg.id} already has host {host}.")
    try:
        check_zone_change(s, agg, dict(agg.metadata_ or {}), ADD, hosts=[host])
        _check_guests_stay(s, agg, host, adding=True)
    except InvalidAggregateAction as err:
        raise as_conflict(err) from None
    s.add(AggregateHost(aggregate_id=agg.id, host=host))
    agg.updated_at = utcnow()
    s.flush()


def remove_host(s: Session, agg: Aggregate, host: str) -> None:
    row = s.get(AggregateHost, (agg.id, host))
    if row is None or zones.compute_service(s, host) is None:
        raise NotFound(f"Cannot remove host {host} in aggregate {agg.id}")
    try:
        _check_guests_stay(s, agg, host, adding=False)
    except InvalidAggregateAction as err:
        raise as_conflict(err) from None
    s.delete(row)
    agg.updated_at = utcnow()
    s.flush()


def delete(s: Session, agg: Aggregate) -> None:
    if hosts_of(s, agg.id):
        raise InvalidAggregateAction(REMOVE, agg.id, "Host aggregate is not empty")
    s.delete(agg)


def check_images(s: Session, agg: Aggregate, image_ids: list[str]) -> None:
    """2.81 image pre-caching: each image must exist (images are cached on each host at
    first boot anyway, so there is nothing more to do)."""
    from gureum.image.models import Image

    for image_id in image_ids:
        if s.get(Image, image_id) is None:
            raise InvalidInput(f"Image {image_id} could not be found.", field="cache")
