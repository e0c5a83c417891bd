"""What the conductor and the workflows both need to know about a guest.

The VM definition (``guest_spec``, always rebuilt from the database: S9), how
long a clean shutdown may take (S1), and the instance's ports. Kept apart from
the conductor and the workflows so neither imports the other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.compute import instances, volumes
from gureum.compute.models import Instance
from gureum.config import Settings
from gureum.network import secgroups
from gureum.network import service as netsvc
from gureum.virt.driver import GuestSpec


def shutdown_timeout(inst: Instance, settings: Settings) -> float:
    """S1: image property os_shutdown_timeout overrides the setting."""
    props = (inst.system_metadata or {}).get("image_properties", {})
    value = props.get("os_shutdown_timeout")
    try:
        return float(value) if value is not None else settings.compute.shutdown_timeout
    except ValueError:
        return settings.compute.shutdown_timeout


def guest_spec(inst: Instance, network_info: list[dict[str, Any]] | None = None,
               block_devices: list[dict[str, Any]] | None = None) -> GuestSpec:
    """The VM definition, always rebuilt from the database (S9). ``network_info``: the
    ports as another host's bindings show them (a live migration's destination);
    ``block_devices``: the volumes as another host connects them
    (``volumes.block_devices_for``)."""
    flavor = inst.flavor or {}
    sysmeta = inst.system_metadata or {}
    return GuestSpec(
        id=inst.id, name=instances.instance_name(inst.seq), vcpus=int(flavor.get("vcpus", 1)),
        memory_mb=int(flavor.get("ram", 64)), root_gb=int(flavor.get("disk", 0)),
        ephemeral_gb=int(flavor.get("ephemeral", 0)), swap_mb=int(flavor.get("swap", 0)),
        image_id=inst.image_ref, image_properties=dict(sysmeta.get("image_properties", {})),
        hostname=inst.hostname, user_data=inst.user_data, key_data=inst.key_data,
        metadata=dict(inst.metadata_ or {}),
        network_info=list(inst.network_info or [] if network_info is None else network_info),
        block_devices=list(inst.block_device_mapping or [] if block_devices is None
                           else block_devices), config_drive=inst.config_drive,
    )


# -- networking ---------------------------------------------------------------------

def allocate_network(s: Session, inst: Instance) -> list[dict[str, Any]]:
    """Ports for the instance (the same ones again when a build is retried)."""
    info = list(netsvc.allocate_for_instance(
        s, instance_id=inst.id, project_id=inst.project_id,
        requests=inst.requested_networks, host=inst.host,
        availability_zone=inst.availability_zone,
        security_groups=list(inst.security_groups or [])))
    sync_security_groups(s, inst)
    return info


def sync_security_groups(s: Session, inst: Instance) -> None:
    """The server's ``security_groups`` (names) are its ports' groups, as Nova shows
    them; a server without ports keeps the ones it asked for."""
    names = [g.name for g in secgroups.instance_groups(s, inst.id)]
    if names and names != list(inst.security_groups or []):
        inst.security_groups = names


def bind_network(s: Session, instance_id: str, host: str) -> None:
    """Bind the ports to ``host`` (computed for it, S5) and keep the instance's
    network_info in step: the next GuestSpec plugs what the new host's binding says.
    Its volumes follow too (S12): connection info for ``host``, attachments naming it."""
    netsvc.bind_ports(s, instance_id, host)
    _refresh_network_info(s, instance_id)
    volumes.follow(s, instance_id, host)


def prepare_network(s: Session, instance_id: str, host: str) -> list[dict[str, Any]]:
    """A live migration's destination: INACTIVE bindings on ``host`` (S5); returns the
    network_info the destination plugs from. The instance's own network_info (its
    active bindings, on the source) is unchanged."""
    return netsvc.prepare_bindings(s, instance_id, host)


def activate_network(s: Session, instance_id: str, host: str) -> None:
    """The cut-over: ``host``'s bindings become active, the source's go; the volumes'
    attachments name ``host`` now (S12)."""
    netsvc.activate_bindings(s, instance_id, host)
    _refresh_network_info(s, instance_id)
    volumes.follow(s, instance_id, host)


def discard_network(s: Session, instance_id: str, host: str) -> None:
    """A rolled-back live migration: the INACTIVE bindings on ``host`` go."""
    netsvc.discard_bindings(s, instance_id, host)


def unbind_network(s: Session, instance_id: str) -> None:
    netsvc.unbind_ports(s, instance_id)
    _refresh_network_info(s, instance_id)


def _refresh_network_info(s: Session, instance_id: str) -> None:
    """network_info is a cache of the ports (Nova's info cache), not instance state:
    set on the loaded row, so a caller's unflushed changes to it are kept."""
    inst = s.get(Instance, instance_id)
    if inst is None or not inst.network_info:
        return  # no ports allocated yet: the build writes them
    info = netsvc.network_info_for_instance(s, instance_id)
    if info != inst.network_info:
        inst.network_info = info


def refresh_network_info(s: Session, instance_id: str) -> None:
    """After a NIC was attached or detached: the instance's network_info as its ports
    are now (even when it had none before)."""
    inst = s.get(Instance, instance_id)
    if inst is not None:
        info = netsvc.network_info_for_instance(s, instance_id)
        if info != inst.network_info:
            inst.network_info = info


def deallocate_network(s: Session, instance_id: str) -> None:
    netsvc.deallocate_for_instance(s, instance_id)
