"""Availability zones and service names, as the compute API shows them.

A host's availability zone is the ``availability_zone`` metadata of an
aggregate it belongs to, else ``[compute] default_availability_zone``; services
that are not compute services (the conductor) live in the "internal" zone, as
Nova's do. gureum's binaries are named ``gureum-*`` inside; the API shows them
with Nova's names so that operators' commands (``openstack compute service set
--disable c01 nova-compute``) work as written, and accepts both spellings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.models import Aggregate, AggregateHost, ComputeService
from gureum.config import Settings
from gureum.scheduler.select import COMPUTE_BINARY, service_is_up

CONDUCTOR_BINARY = "gureum-conductor"
INTERNAL_ZONE = "internal"

# gureum's binary → the name the API shows (Nova's).
_API_NAMES = {COMPUTE_BINARY: "nova-compute", CONDUCTOR_BINARY: "nova-conductor"}
_INTERNAL_NAMES = {api: ours for ours, api in _API_NAMES.items()}


def api_binary(binary: str) -> str:
    """The binary as the API shows it: gureum-compute → nova-compute."""
    return _API_NAMES.get(binary, binary)


def internal_binary(name: str) -> str:
    """The binary a client named, in gureum's spelling (nova-compute → gureum-compute)."""
    return _INTERNAL_NAMES.get(name, name)


def is_compute(binary: str) -> bool:
    return binary == COMPUTE_BINARY


def is_up(svc: ComputeService, settings: Settings) -> bool:
    """Heartbeat seen within service_down_time, and not forced down."""
    return service_is_up(svc, settings.compute.service_down_time)


def aggregate_zone(agg: Aggregate) -> str | None:
    return (agg.metadata_ or {}).get("availability_zone") or None


def host_zones(s: Session) -> dict[str, str]:
    """host → the AZ its aggregates give it (hosts in no AZ aggregate are left out)."""
    out: dict[str, str] = {}
    rows = s.execute(select(AggregateHost.host, Aggregate.metadata_).join(
        Aggregate, Aggregate.id == AggregateHost.aggregate_id).order_by(Aggregate.id))
    for host, md in rows:
        zone = (md or {}).get("availability_zone")
        if zone and host not in out:
            out[host] = zone
    return out


def zone_of_host(host: str, zones: dict[str, str], settings: Settings) -> str:
    return zones.get(host) or settings.compute.default_availability_zone


def zone_of_service(svc: ComputeService, zones: dict[str, str], settings: Settings) -> str:
    if not is_compute(svc.binary):
        return INTERNAL_ZONE
    return zone_of_host(svc.host, zones, settings)


def compute_service(s: Session, host: str) -> ComputeService | None:
    return s.scalar(select(ComputeService).where(ComputeService.host == host,
                                                 ComputeService.binary == COMPUTE_BINARY))


@dataclass(frozen=True)
class ZoneSummary:
    """Every service with its zone; a zone is available while one of its services is
    enabled, and listed as not available when all of them are disabled."""

    services: list[ComputeService]
    zone_of: dict[int, str]  # service id → zone
    available: list[str]
    not_available: list[str]


def summary(s: Session, settings: Settings) -> ZoneSummary:
    zones = host_zones(s)
    services = list(s.scalars(select(ComputeService).order_by(ComputeService.id)))
    zone_of = {svc.id: zone_of_service(svc, zones, settings) for svc in services}
    available = sorted({zone_of[svc.id] for svc in services if not svc.disabled})
    not_available = sorted({zone_of[svc.id] for svc in services if svc.disabled}
                           - set(available))
    return ZoneSummary(services, zone_of, available, not_available)
