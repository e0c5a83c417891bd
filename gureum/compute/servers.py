"""Creating, renaming and deleting servers: the rules, the rows and the hand-over.

Creating checks every reference the request names and the quotas before any
row is written, and answers what a client can get wrong with Nova's status and
wording (400 for a bad reference, 403 for a quota or a forbidden option, 409
for a conflict); then it writes the instance rows in BUILD and an outbox row
that asks the conductor to build them once the caller's transaction commits
(gureum/outbox.py). Deleting moves the server to the delete task (a
compare-and-swap, as any action) and hands the rest to the conductor the same
way. The caller owns the session and has checked the policy rule.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.compute import instances, states, volumes
from gureum.compute.models import (
    ComputeNode,
    ComputeService,
    Flavor,
    FlavorAccess,
    Instance,
    KeyPair,
    ServerGroup,
)
from gureum.compute.quotas import check_metadata_items
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.db.locks import lock_project_quotas
from gureum.errors import Forbidden, InvalidInput, NotFound, QuotaExceeded
from gureum.scheduler.select import COMPUTE_BINARY


@dataclass
class CreateRequest:
    name: str
    flavor_ref: str
    image_ref: str = ""
    networks: list[dict[str, Any]] | str | None = None
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    min_count: int = 1
    max_count: int = 1
    security_groups: list[str] = field(default_factory=lambda: ["default"])
    block_device_mapping: list[dict[str, Any]] = field(default_factory=list)
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    hostname: str | None = None
    tags: list[str] = field(default_factory=list)
    config_drive: bool = False
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    host: str | None = None  # 2.74
    hypervisor_hostname: str | None = None  # 2.74
    admin_pass: str | None = None


def find_flavor(s: Session, ctx: RequestContext, flavor_ref: str) -> Flavor:
    flavor_id = flavor_ref.rstrip("/").rsplit("/", 1)[-1]
    flavor = s.get(Flavor, flavor_id)
    if (flavor is not None and not flavor.is_public and not ctx.is_admin and ctx.project_id
            and s.get(FlavorAccess, (flavor.id, ctx.project_id)) is None):
        flavor = None
    if flavor is None or flavor.disabled:
        raise InvalidInput(f"Flavor {flavor_ref} could not be found.", field="flavorRef")
    return flavor


def find_image(s: Session, ctx: RequestContext, image_ref: str) -> Any:
    from gureum.image.service import get_visible

    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    try:
        image = get_visible(s, ctx, image_id)
    except NotFound:
        raise InvalidInput(f"Image {image_ref} could not be found.",
                           field="imageRef") from None
    if image.status != "active":
        raise InvalidInput(f"Image {image_id} is not active.", field="imageRef")
    return image


def image_properties(image: Any) -> dict[str, str]:
    return {p.name: p.value for p in getattr(image, "properties", [])}


def flavor_snapshot(f: Flavor) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
            "ephemeral": f.ephemeral, "swap": f.swap, "rxtx_factor": f.rxtx_factor,
            "is_public": f.is_public, "extra_specs": dict(f.extra_specs or {}),
            "description": f.description}


def parse_availability_zone(s: Session, ctx: RequestContext, text: str | None,
                            settings: Settings) -> tuple[str | None, str | None, str | None]:
    """"az", "az:host", "az:host:node", ":host" → (az, host, node); host parts are admin-only."""
    if not text:
        return None, None, None
    az, _, rest = text.partition(":")
    host, _, node = rest.partition(":")
    if (host or node) and not ctx.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host to "
                        "be performed.")
    if az and az not in known_zones(s, settings):
        raise InvalidInput("The requested availability zone is not available",
                           field="availability_zone")
    if host and s.scalar(select(ComputeService.id).where(
            ComputeService.host == host, ComputeService.binary == COMPUTE_BINARY)) is None:
        raise InvalidInput(f"Compute host {host} could not be found.",
                           field="availability_zone")
    return az or None, host or None, node or None


def known_zones(s: Session, settings: Settings) -> set[str]:
    from gureum.compute.models import Aggregate

    zones = {settings.compute.default_availability_zone}
    for md in s.scalars(select(Aggregate.metadata_)):
        if (md or {}).get("availability_zone"):
            zones.add(md["availability_zone"])
    return zones


def check_quota(s: Session, project_id: str, settings: Settings, count: int,
                flavor: Flavor) -> None:
    from gureum.compute.quotas import limits_for

    limits = limits_for(s, project_id, settings)
    if all(limits.get(r, -1) < 0 for r in ("instances", "cores", "ram")):
        return  # unlimited: nothing to count
    lock_project_quotas(s, project_id)  # held until commit: concurrent boots queue here
    used_instances, used_cores, used_ram = s.execute(
        select(func.count(Instance.id),
               func.coalesce(func.sum(Instance.flavor["vcpus"].as_integer()), 0),
               func.coalesce(func.sum(Instance.flavor["ram"].as_integer()), 0))
        .where(Instance.project_id == project_id, Instance.deleted.is_(False))).one()
    wanted = {"instances": (count, used_instances), "cores": (count * flavor.vcpus, used_cores),
              "ram": (count * flavor.ram, used_ram)}
    for resource, (requested, used) in wanted.items():
        limit = limits.get(resource, -1)
        if limit >= 0 and used + requested > limit:
            raise QuotaExceeded(f"Quota exceeded for {resource}: Requested {requested}, but "
                                f"already used {used} of {limit} {resource}",
                                resource=resource)


_HOSTNAME_BAD = re.compile(r"[^a-z0-9-]+")


def sanitize_hostname(name: str, default: str) -> str:
    """Nova's hostname from a display name: lower case, [a-z0-9-], at most 63 chars."""
    host = _HOSTNAME_BAD.sub("-", name.lower()).strip("-.")[:63].strip("-")
    return host or default


def decode_user_data(data: str | None) -> str | None:
    if data is None:
        return None
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("User data needs to be valid base 64.", field="user_data") from None
    if len(data) > 65535:
        raise InvalidInput("User data too large. User data must be no larger than 65535 "
                           "bytes once base64 encoded.", field="user_data")
    return data


def create(s: Session, ctx: RequestContext, req: CreateRequest, settings: Settings,
           request_id: str) -> list[Instance]:
    """Validate every reference, write the instance rows (BUILD / scheduling) and hand
    them to the conductor."""
    assert ctx.project_id is not None
    flavor = find_flavor(s, ctx, req.flavor_ref)
    props: dict[str, str] = {}
    image = None
    image_ref = req.image_ref or next(
        (str(b.get("uuid") or "") for b in req.block_device_mapping
         if b.get("source_type") == "image" and b.get("destination_type", "local") == "local"
         and str(b.get("boot_index")) == "0"), "")
    if image_ref:
        image = find_image(s, ctx, image_ref)
        props = image_properties(image)
        if image.min_ram and flavor.ram < image.min_ram:
            raise InvalidInput("Flavor's memory is too small for requested image.",
                               field="flavorRef")
        if image.min_disk and flavor.disk and flavor.disk < image.min_disk:
            raise InvalidInput("Flavor's disk is too small for requested image.",
                               field="flavorRef")
    bdms = list(req.block_device_mapping)
    if image is not None and "block_device_mapping" in props:
        # A snapshot of a server booted from a volume (Nova's): its properties map the
        # volumes to make from volume snapshots; the server boots from them, not from
        # the image (which has no data).
        bdms = volumes.image_block_devices(props, bdms)
        props = {k: v for k, v in props.items() if k not in volumes.IMAGE_BDM_PROPERTIES}
        if any(str(b.get("boot_index")) == "0" for b in bdms):
            image = None
    from_volume = volumes.check_boot_request(bdms, req.image_ref if image else "",
                                             req.max_count)
    if image is None and not from_volume:
        raise InvalidInput("Missing imageRef attribute", field="imageRef")
    key_data = None
    if req.key_name:
        kp = s.scalar(select(KeyPair).where(KeyPair.user_id == ctx.user_id,
                                            KeyPair.name == req.key_name))
        if kp is None:
            raise InvalidInput("Invalid key_name provided.", field="key_name")
        key_data = kp.public_key
    check_metadata_items(s, ctx.project_id, settings, len(req.metadata))
    az, force_host, force_node = parse_availability_zone(s, ctx, req.availability_zone,
                                                         settings)
    requested: dict[str, str] = {}
    if req.host or req.hypervisor_hostname:
        if not ctx.is_admin:
            raise Forbidden("Policy doesn't allow compute:servers:create:requested_destination"
                            " to be performed.")
        if req.host and s.scalar(select(ComputeService.id).where(
                ComputeService.host == req.host,
                ComputeService.binary == COMPUTE_BINARY)) is None:
            raise InvalidInput(f"Compute host {req.host} could not be found.", field="host")
        if req.hypervisor_hostname and s.scalar(select(ComputeNode.id).where(
                ComputeNode.hypervisor_hostname == req.hypervisor_hostname)) is None:
            raise InvalidInput(f"Compute host {req.hypervisor_hostname} could not be found.",
                               field="hypervisor_hostname")
        requested = {k: v for k, v in (("host", req.host),
                                       ("node", req.hypervisor_hostname)) if v}
    group_id = None
    hints = dict(req.scheduler_hints)
    if hints.get("group"):
        group_id = str(hints["group"])
        group = s.get(ServerGroup, group_id)
        if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
            raise InvalidInput(f"Invalid server group {group_id}.", field="group")
        lock_project_quotas(s, group.project_id)
        members = s.scalar(select(func.count(Instance.id)).where(
            Instance.server_group_id == group_id, Instance.deleted.is_(False))) or 0
        limit = settings.quota.server_group_members
        if limit >= 0 and members + req.max_count > limit:
            raise QuotaExceeded("Quota exceeded, too many servers in group")
    validate_networks(s, ctx, req.networks, req.max_count)
    validate_security_groups(s, ctx, list(req.security_groups))
    user_data = decode_user_data(req.user_data)
    count = req.max_count
    try:
        check_quota(s, ctx.project_id, settings, count, flavor)
    except QuotaExceeded:
        if req.min_count == req.max_count:
            raise
        count = req.min_count
        check_quota(s, ctx.project_id, settings, count, flavor)
    reservation = "r-" + secrets.token_hex(4)
    snapshot = flavor_snapshot(flavor)
    sysmeta: dict[str, Any] = {"image_properties": props}
    if force_host:
        sysmeta["forced_destination"] = {"host": force_host, "node": force_node}
    if requested:
        sysmeta["requested_destination"] = requested
    if image is not None:
        sysmeta["image_name"] = image.name
        sysmeta["image_disk_format"] = image.disk_format
    made = []
    for index in range(count):
        name = req.name if count == 1 else f"{req.name}-{index + 1}"
        seq = instances.next_seq(s)
        inst = Instance(
            seq=seq, name=name, description=req.description,
            hostname=(req.hostname if req.hostname and count == 1 else
                      sanitize_hostname(name, f"server-{seq}")),
            project_id=ctx.project_id, user_id=ctx.user_id, reservation_id=reservation,
            launch_index=index, image_ref=image.id if image is not None else "",
            flavor=snapshot, flavor_id=flavor.id, vm_state=states.BUILDING,
            task_state=states.SCHEDULING, power_state=states.NOSTATE, requested_az=az,
            availability_zone=az, key_name=req.key_name, key_data=key_data,
            user_data=user_data, config_drive=req.config_drive,
            metadata_=dict(req.metadata), system_metadata=sysmeta, tags=list(req.tags),
            access_ip_v4=req.access_ip_v4, access_ip_v6=req.access_ip_v6,
            security_groups=list(req.security_groups),
            # None (before 2.37, no networks given): the one usable network, or none.
            requested_networks=req.networks,
            block_device_mapping=[], scheduler_hints=hints, server_group_id=group_id)
        s.add(inst)
        s.flush()
        volumes.plan_boot(s, ctx, inst, bdms)
        instances.start_action(s, inst.id, "create", request_id, ctx.user_id, ctx.project_id)
        made.append(inst)
    outbox.add(s, "build_instances", {"instance_ids": [i.id for i in made],
                                      "request_id": request_id})
    return made


def update(s: Session, ctx: RequestContext, server_id: str, values: dict[str, Any]
           ) -> Instance:
    """Change a server's name, description, access addresses or hostname."""
    inst = instances.visible(s, ctx, server_id)
    instances.check_not_locked(ctx, inst)
    if values:
        instances.update(s, inst.id, values)
        s.refresh(inst)
    return inst


def delete(s: Session, ctx: RequestContext, server_id: str, action: str = "delete") -> None:
    """Start deleting a server (action "delete" or "forceDelete"); the conductor
    destroys the guest and releases what it holds. Deleting a server that is being
    deleted already is a no-op."""
    inst = instances.visible(s, ctx, server_id)
    instances.check_not_locked(ctx, inst)
    if inst.task_state == states.DELETING:
        return
    instances.start_task(s, inst, action)
    instances.start_action(s, inst.id, "delete", ctx.request_id, ctx.user_id, ctx.project_id)
    outbox.add(s, "delete_instance", {"instance_id": inst.id, "request_id": ctx.request_id})


def validate_networks(s: Session, ctx: RequestContext, networks: Any, count: int) -> None:
    from gureum.network import service as netsvc

    assert ctx.project_id is not None
    netsvc.validate_requested_networks(s, ctx.project_id, ctx.is_admin, networks, count)


def validate_security_groups(s: Session, ctx: RequestContext, names: list[str]) -> None:
    from gureum.network import secgroups

    assert ctx.project_id is not None
    secgroups.check_for_server(s, ctx.project_id, names)
