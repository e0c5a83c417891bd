"""Networks: create, update, delete; their segment and their MTU.

A project's network gets the tenant network type (VXLAN) and the next free
VNI; an admin may ask for a provider segment (flat, vlan, vxlan, geneve, gre,
local). The MTU follows from the type on the underlay (S7), computed as
Neutron's ML2 type drivers do: an overlay gets the smaller of ``physnet_mtu``
and ``path_mtu`` less the outer IPv4 header (20) and its own header (VXLAN 30,
GRE 22, GENEVE ``geneve_max_header_size``, 30 by default), so on 1500: VXLAN
1450, GRE 1458, GENEVE 1450; VLAN, flat and local get ``physnet_mtu`` itself.
An admin may set a smaller ``mtu``; a bigger one than the type allows is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.config import NetworkSettings
from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import models as m
from gureum.network import policy, rbac, resources, views

TENANT_NETWORK_TYPE = "vxlan"
IPV6_MIN_MTU = 1280  # RFC 8200
IPV4_HEADER = 20
# The tunnel's own header, outer Ethernet included (neutron-lib's *_ENCAP_OVERHEAD).
TUNNEL_HEADER = {"vxlan": 30, "gre": 22}
SEGMENT_RANGE = {"vxlan": (1, 16777215), "geneve": (1, 16777215), "gre": (1, 16777215),
                 "vlan": (1, 4094)}


@dataclass(frozen=True)
class Underlay:
    """What a network's MTU is computed from: the ``[network]`` settings."""

    physnet_mtu: int = 1500
    path_mtu: int = 0
    geneve_max_header_size: int = 30

    @classmethod
    def of(cls, settings: NetworkSettings) -> Underlay:
        return cls(settings.physnet_mtu, settings.path_mtu, settings.geneve_max_header_size)


def max_mtu(network_type: str, physnet_mtu: int = 1500, underlay: Underlay | None = None
            ) -> int:
    """The largest MTU a network of this type can have on the underlay."""
    u = underlay or Underlay(physnet_mtu=physnet_mtu)
    if network_type not in ("vxlan", "gre", "geneve"):
        return u.physnet_mtu
    path = min(x for x in (u.physnet_mtu, u.path_mtu) if x > 0)
    header = u.geneve_max_header_size if network_type == "geneve" \
        else TUNNEL_HEADER[network_type]
    return path - IPV4_HEADER - header


def _free_segment(s: Session, network_type: str, physical_network: str) -> int:
    low, high = SEGMENT_RANGE[network_type]
    used = set(s.scalars(select(m.Network.segmentation_id).where(
        m.Network.network_type == network_type,
        m.Network.physical_network == physical_network)))
    for candidate in range(low, high + 1):
        if candidate not in used:
            return candidate
    raise e.conflict("NoNetworkAvailable", "Unable to create the network. No tenant network "
                     "is available for allocation.")


def _segment(s: Session, body: dict[str, Any], current: m.Network | None = None
             ) -> tuple[str, str, int | None]:
    """(network_type, physical_network, segmentation_id), validated; ids allocated."""
    network_type = body.get("provider:network_type") or (
        current.network_type if current else TENANT_NETWORK_TYPE)
    physnet = body.get("provider:physical_network") or ""
    seg = body.get("provider:segmentation_id")
    seg = int(seg) if seg is not None else None
    if network_type in ("vxlan", "geneve", "gre", "local") and physnet:
        raise e.invalid_input(f"provider:physical_network specified for {network_type} "
                              "network", "provider:physical_network")
    if network_type in ("vlan", "flat") and not physnet:
        raise e.invalid_input(f"provider:physical_network required for {network_type} "
                              "provider network", "provider:physical_network")
    if network_type in ("flat", "local"):
        if seg is not None:
            raise e.invalid_input(f"provider:segmentation_id specified for {network_type} "
                                  "network", "provider:segmentation_id")
        if network_type == "flat" and s.scalar(select(m.Network.id).where(
                m.Network.network_type == "flat", m.Network.physical_network == physnet,
                m.Network.id != (current.id if current else ""))):
            raise e.conflict("FlatNetworkInUse", "Unable to create the flat network. "
                             f"Physical network {physnet} is in use.")
        return network_type, physnet, None
    low, high = SEGMENT_RANGE[network_type]
    if seg is None:
        return network_type, physnet, _free_segment(s, network_type, physnet)
    if not low <= seg <= high:
        raise e.invalid_input(f"{seg} is not a valid segmentation id for {network_type}: "
                              f"the range is {low} to {high}", "provider:segmentation_id")
    taken = s.scalar(select(m.Network.id).where(
        m.Network.network_type == network_type, m.Network.physical_network == physnet,
        m.Network.segmentation_id == seg))
    if taken and (current is None or taken != current.id):
        if network_type == "vlan":
            raise e.conflict("VlanIdInUse", f"Unable to create the network. The VLAN {seg} "
                             f"on physical network {physnet} is in use.")
        raise e.conflict("TunnelIdInUse", f"Unable to create the network. The tunnel ID "
                         f"{seg} is in use.")
    return network_type, physnet, seg


def _check_mtu(mtu: int, network_type: str, underlay: Underlay) -> int:
    limit = max_mtu(network_type, underlay=underlay)
    if int(mtu) > limit:
        raise e.invalid_input(f"Requested MTU is too big, maximum is {limit}", "mtu")
    return int(mtu)


def _check_refs(s: Session, body: dict[str, Any]) -> None:
    if body.get("qos_policy_id"):
        raise e.not_found("qos_policy", body["qos_policy_id"])
    for zone in body.get("availability_zone_hints") or []:
        if zone != views.AVAILABILITY_ZONE:
            raise e.typed_not_found("AvailabilityZoneNotFound",
                                    f"AvailabilityZone {zone} could not be found.")


def _check_default(s: Session, net: m.Network) -> None:
    if not net.is_default:
        return
    if not net.external:
        raise e.invalid_input("is_default can only be set on an external network",
                              "is_default")
    other = s.scalar(select(m.Network.id).where(m.Network.is_default.is_(True),
                                                m.Network.id != net.id))
    if other:
        raise e.conflict("DefaultExternalNetworkExists", f"Unable to set network {net.id} "
                         f"as default external network. Network {other} is the default "
                         "external network.")


def create_network(s: Session, ctx: RequestContext, body: dict[str, Any],
                   underlay: Underlay | None = None) -> m.Network:
    underlay = underlay or Underlay()
    policy.writer(ctx, "create_network")
    policy.check_admin_attrs(ctx, body, policy.NETWORK_ADMIN_ATTRS, "create_network")
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "network")
    _check_refs(s, body)
    network_type, physnet, seg = _segment(s, body)
    mtu = _check_mtu(body["mtu"], network_type, underlay) if body.get("mtu") is not None \
        else max_mtu(network_type, underlay=underlay)
    net = m.Network(
        project_id=project_id, name=body.get("name") or "",
        description=body.get("description") or "",
        admin_state_up=body.get("admin_state_up", True), shared=body.get("shared", False),
        external=body.get("router:external", False), is_default=body.get("is_default", False),
        mtu=mtu, network_type=network_type, physical_network=physnet, segmentation_id=seg,
        port_security_enabled=body.get("port_security_enabled", True),
        availability_zone_hints=list(body.get("availability_zone_hints") or []),
        dns_domain=body.get("dns_domain") or "")
    _check_default(s, net)
    try:
        with s.begin_nested():
            s.add(net)
            s.flush()
    except IntegrityError:
        # Another request took the same segment between our check and our insert.
        raise e.conflict("TunnelIdInUse" if network_type != "vlan" else "VlanIdInUse",
                         "Unable to create the network: its segment was just taken by "
                         "another network; try again.") from None
    _wildcards(s, net)
    if body.get("tags"):
        resources.set_tags(s, net, body["tags"])
    return net


def _wildcards(s: Session, net: m.Network) -> None:
    """``shared`` and ``router:external`` as the ``*`` RBAC policies they stand for."""
    rbac.set_wildcard(s, net, rbac.SHARED, net.shared)
    if net.external:
        rbac.set_wildcard(s, net, rbac.EXTERNAL, True)
    else:
        for entry in [r for r in net.rbac_entries if r.action == rbac.EXTERNAL]:
            net.rbac_entries.remove(entry)
    s.flush()


def update_network(s: Session, ctx: RequestContext, network_id: str, body: dict[str, Any],
                   underlay: Underlay | None = None) -> m.Network:
    underlay = underlay or Underlay()
    net = resources.get_network(s, ctx, network_id)
    policy.writer(ctx, "update_network")
    policy.check_owner(ctx, net.project_id, "update_network")
    policy.check_admin_attrs(ctx, body, policy.NETWORK_ADMIN_ATTRS, "update_network")
    _check_refs(s, body)
    if body.get("shared") is False and net.shared and \
            rbac.stranded(s, net, rbac.SHARED, None, removing_target=rbac.WILDCARD):
        raise e.conflict("InvalidSharedSetting", "Unable to reconfigure sharing settings for "
                         f"network {net.id}. Multiple projects are using it.")
    if any(k.startswith("provider:") for k in body):
        if s.scalar(select(m.Port.id).where(m.Port.network_id == net.id).limit(1)):
            raise e.invalid_input("The provider attributes of a network with ports cannot "
                                  "be changed")
        merged = {"provider:network_type": net.network_type,
                  "provider:physical_network": net.physical_network or None,
                  "provider:segmentation_id": net.segmentation_id
                  if "provider:network_type" not in body else None, **body}
        net.network_type, net.physical_network, net.segmentation_id = _segment(s, merged, net)
        net.mtu = min(net.mtu, max_mtu(net.network_type, underlay=underlay))
    if body.get("mtu") is not None:
        net.mtu = _check_mtu(body["mtu"], net.network_type, underlay)
        if net.mtu < IPV6_MIN_MTU and any(sn.ip_version == 6 for sn in net.subnets):
            raise e.invalid_input(f"The network has IPv6 subnets, which need an MTU of at "
                                  f"least {IPV6_MIN_MTU}", "mtu")
    for key, attr in (("name", "name"), ("description", "description"),
                      ("admin_state_up", "admin_state_up"), ("shared", "shared"),
                      ("router:external", "external"), ("is_default", "is_default"),
                      ("port_security_enabled", "port_security_enabled"),
                      ("dns_domain", "dns_domain")):
        if key in body:
            setattr(net, attr, body[key] if body[key] is not None else "")
    _check_default(s, net)
    if "shared" in body or "router:external" in body:
        _wildcards(s, net)
    resources.touch(net)
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:
        raise e.conflict("TunnelIdInUse", "The segment was just taken by another network; "
                         "try again.") from None
    return net


def delete_network(s: Session, ctx: RequestContext, network_id: str) -> None:
    net = resources.get_network(s, ctx, network_id)
    policy.writer(ctx, "delete_network")
    policy.check_owner(ctx, net.project_id, "delete_network")
    ports = list(s.scalars(select(m.Port).where(m.Port.network_id == net.id)))
    if any(p.device_owner != "network:dhcp" for p in ports):
        raise e.network_in_use(net.id)
    for p in ports:  # DHCP ports go with their network
        resources.drop_tags(s, p.id)
        s.delete(p)
    s.flush()
    for sn in list(net.subnets):
        resources.drop_tags(s, sn.id)
        s.delete(sn)
    resources.drop_tags(s, net.id)
    s.delete(net)
    s.flush()
