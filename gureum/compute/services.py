"""Compute services (os-services): listing them, taking hosts in and out, deleting them.

The rules an operator runs into: only compute services can be enabled,
disabled or forced down; a host cannot be forced back up while evacuations
from it wait for its restart (they would be lost); and a compute service can
be deleted only when its host is empty, no guest on it and no move from or to
it in progress. Deleting one takes its host out of its aggregates and drops
its compute node. The caller owns the session and has checked the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gureum.compute import zones
from gureum.compute.models import AggregateHost, ComputeNode, ComputeService, Instance, Migration
from gureum.config import Settings
from gureum.errors import Conflict, InvalidInput, NotFound

# Migrations that still hold resources on their hosts (Nova's "in progress").
IN_PROGRESS = ("queued", "pre-migrating", "migrating", "post-migrating", "preparing",
               "running", "finished", "confirming", "reverting", "accepted")


@dataclass(frozen=True)
class Listed:
    """A service as the API shows it: with its availability zone and whether it is up."""

    service: ComputeService
    zone: str
    up: bool


def described(s: Session, services: list[ComputeService], settings: Settings) -> list[Listed]:
    host_zones = zones.host_zones(s)
    return [Listed(svc, zones.zone_of_service(svc, host_zones, settings),
                   zones.is_up(svc, settings)) for svc in services]


def list_services(s: Session, settings: Settings, host: str | None = None,
                  binary: str | None = None) -> list[Listed]:
    """Every service (or those of a host, of a binary: Nova's or gureum's name)."""
    stmt = select(ComputeService).order_by(ComputeService.id)
    if host:
        stmt = stmt.where(ComputeService.host == host)
    if binary:
        stmt = stmt.where(ComputeService.binary == zones.internal_binary(binary))
    return described(s, list(s.scalars(stmt)), settings)


def check_updatable(binary: str, shown: str) -> None:
    """Only compute services are enabled, disabled or forced down (Nova's 400);
    ``binary`` in either spelling, ``shown`` as the message names it."""
    if not zones.is_compute(zones.internal_binary(binary)):
        raise InvalidInput(f"Updating a {shown} service is not supported. Only nova-compute "
                           "services can be updated.", field="binary")


def by_host(s: Session, host: str, binary: str) -> ComputeService:
    svc = s.scalar(select(ComputeService).where(
        ComputeService.host == host, ComputeService.binary == zones.internal_binary(binary)))
    if svc is None:
        raise NotFound(f"Could not find binary {binary} on host {host}.")
    return svc


def by_uuid(s: Session, service_id: str, message: str = "Service {id} could not be found."
            ) -> ComputeService:
    svc = s.scalar(select(ComputeService).where(ComputeService.uuid == service_id))
    if svc is None:
        raise NotFound(message.format(id=service_id))
    return svc


def by_id(s: Session, number: int, shown: str) -> ComputeService:
    svc = s.get(ComputeService, number)
    if svc is None:
        raise NotFound(f"Service {shown} not found.")
    return svc


def set_status(svc: ComputeService, disabled: bool, reason: str | None) -> None:
    svc.disabled, svc.disabled_reason = disabled, reason


def set_forced_down(s: Session, svc: ComputeService, forced: bool) -> None:
    """Force a host's service down (fencing it: its guests may be evacuated) or up.

    Forcing it up while evacuations from it are ``done`` but not yet cleaned up by
    the host's restart would lose them, so that is refused, as with Nova.
    """
    if not forced:
        found = s.scalar(select(Migration.id).where(
            Migration.source_compute == svc.host, Migration.status == "done",
            Migration.migration_type == "evacuation").limit(1))
        if found is not None:
            raise InvalidInput(f"Unable to force up host {svc.host} as `done` evacuation "
                               "migration records remain associated with the host. Ensure "
                               "the compute service has been restarted, allowing these "
                               "records to move to `completed` before retrying this "
                               "request.")
    svc.forced_down = forced


def check_host_is_empty(s: Session, host: str) -> None:
    """No guest on the host and no move from or to it in progress (Nova's 409s)."""
    count = s.scalar(select(func.count(Instance.id)).where(
        Instance.host == host, Instance.deleted.is_(False))) or 0
    if count:
        raise Conflict("Unable to delete compute service that is hosting instances. Migrate "
                       "or delete the instances first.")
    moving = s.scalar(select(func.count(Migration.id)).where(
        or_(Migration.source_compute == host, Migration.dest_compute == host),
        Migration.status.in_(IN_PROGRESS))) or 0
    if moving:
        raise Conflict("Unable to delete compute service that has in-progress migrations. "
                       "Complete the migrations or delete the instances first.")


def delete(s: Session, svc: ComputeService) -> None:
    """Delete a service; a compute service only from an empty host, with its host's
    aggregate memberships and compute node."""
    if zones.is_compute(svc.binary):
        check_host_is_empty(s, svc.host)
        for agg_host in s.scalars(select(AggregateHost).where(AggregateHost.host == svc.host)):
            s.delete(agg_host)
        for node in s.scalars(select(ComputeNode).where(ComputeNode.host == svc.host)):
            s.delete(node)
    s.delete(svc)


def refreshed(s: Session, svc: ComputeService, settings: Settings) -> Listed:
    s.flush()
    return described(s, [svc], settings)[0]
