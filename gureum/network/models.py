"""Networking tables: networks, subnets, ports, their IP allocations and bindings.

The shapes follow Neutron's ML2 database where that helps later steps:

* a network carries its one segment (type, physical network, segmentation id)
  on its own row; a multi-segment network would move these to a segments table;
* a port's binding to a host is its own row (``PortBinding``), one ACTIVE per
  port and, during a live migration, an INACTIVE one for the destination — a
  binding is always computed for its host, never copied from an old row (S5);
* an IP allocation is a row unique per (subnet, address), so two racing
  requests for the same address cannot both win;
* tags of every resource live in one table keyed by the resource id.

* an agent (Neutron's ``agents`` table) is what a host reports about how it
  plugs ports; a binding for that host takes its ``vif_type`` and
  ``vif_details`` from it.

* a security group's rules, each project's ``default`` group and which port is
  in which group are Neutron's securitygroups, securitygroupportbindings and
  default_security_group tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gureum.db.base import Base, new_uuid, utcnow

# Port binding states (ml2_port_bindings.status).
BINDING_ACTIVE = "ACTIVE"
BINDING_INACTIVE = "INACTIVE"

# Resource status values Neutron shows.
ACTIVE = "ACTIVE"
DOWN = "DOWN"


class Network(Base):
    __tablename__ = "network_networks"
    __table_args__ = (
        UniqueConstraint("network_type", "physical_network", "segmentation_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    external: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    # The segment: vxlan, geneve, gre, vlan, flat or local. physical_network is ""
    # (not NULL) for overlays so the unique constraint covers them too.
    network_type: Mapped[str] = mapped_column(String(32), default="vxlan")
    physical_network: Mapped[str] = mapped_column(String(64), default="")
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", lazy="selectin",
        order_by="(Subnet.created_at, Subnet.id)")
    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == Network.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")
    rbac_entries: Mapped[list[RBACPolicy]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="RBACPolicy.created_at")


class Subnet(Base):
    __tablename__ = "network_subnets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_networks.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"start": ip, "end": ip}, ...] in address order
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"destination": cidr, "nexthop": ip}, ...]
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    service_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_publish_fixed_ip: Mapped[bool] = mapped_column(Boolean, default=False)
    # The subnet pool its CIDR was taken from (gureum.network.subnetpools), if any.
    subnetpool_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    network: Mapped[Network] = relationship(back_populates="subnets", lazy="joined")
    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == Subnet.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")


class Port(Base):
    __tablename__ = "network_ports"
    __table_args__ = (
        UniqueConstraint("network_id", "mac_address"),
        Index("ix_network_ports_device", "device_id", "device_owner"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_networks.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=DOWN)
    device_id: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"ip_address": ip-or-cidr, "mac_address": mac}, ...]
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")
    # [{"opt_name": name, "opt_value": value, "ip_version": 4|6}, ...] (extra_dhcp_opt);
    # NULL on rows older than the attribute.
    extra_dhcp_opts: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON, nullable=True, default=list)
    # Compute made this port for an instance, so it goes with the instance. A port
    # the user made and handed to a server only gets detached (S11).
    delete_with_instance: Mapped[bool] = mapped_column(Boolean, default=False)
    # The NIC's position in the instance (eth0, eth1, ...), while attached.
    device_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Compute's device role tag of the NIC (Nova's virtual interface tag), while attached.
    device_tag: Mapped[str | None] = mapped_column(String(60), nullable=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    network: Mapped[Network] = relationship(lazy="joined", innerjoin=True)
    fixed_ips: Mapped[list[IPAllocation]] = relationship(
        back_populates="port", lazy="selectin", cascade="all, delete-orphan",
        order_by="IPAllocation.position")
    bindings: Mapped[list[PortBinding]] = relationship(
        back_populates="port", lazy="selectin", cascade="all, delete-orphan")
    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == Port.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")
    security_groups: Mapped[list[SecurityGroup]] = relationship(
        secondary="network_port_security_groups", lazy="selectin",
        order_by="(SecurityGroup.created_at, SecurityGroup.id)")

    def active_binding(self) -> PortBinding | None:
        for b in self.bindings:
            if b.status == BINDING_ACTIVE:
                return b
        return None


class IPAllocation(Base):
    """One address of a port, from one subnet."""

    __tablename__ = "network_ip_allocations"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_ports.id", ondelete="CASCADE"), index=True)
    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_subnets.id"), index=True)
    network_id: Mapped[str] = mapped_column(String(36), index=True)
    ip_address: Mapped[str] = mapped_column(String(64), index=True)
    # The order of the port's fixed_ips, as the user gave them.
    position: Mapped[int] = mapped_column(Integer, default=0)

    port: Mapped[Port] = relationship(back_populates="fixed_ips")


class PortBinding(Base):
    """A port bound (or being bound) to a host: what the hypervisor plugs."""

    __tablename__ = "network_port_bindings"
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_ports.id", ondelete="CASCADE"), primary_key=True)
    # "" while the port is not bound anywhere.
    host: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    status: Mapped[str] = mapped_column(String(16), default=BINDING_ACTIVE)
    vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    port: Mapped[Port] = relationship(back_populates="bindings")


class Tag(Base):
    """A tag on a network, subnet or port (the ids never collide: all UUIDs)."""

    __tablename__ = "network_tags"
    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Quota(Base):
    """A per-project quota override; defaults are in ``gureum.network.quotas``."""

    __tablename__ = "network_quotas"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Agent(Base):
    """What plugs ports on a host, as the host reported it (Neutron's agents).

    Today the compute agents report their VIF mechanism here (``configurations``:
    ``{"vif_type": "bridge", "vif_details": {...}}``); a network agent with its own
    data plane reports the same way under its own ``binary``.
    """

    __tablename__ = "network_agents"
    __table_args__ = (UniqueConstraint("binary", "host"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    binary: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), index=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SecurityGroup(Base):
    """A named set of allow rules a port's traffic is filtered by (Neutron's securitygroups)."""

    __tablename__ = "network_security_groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    rules: Mapped[list[SecurityGroupRule]] = relationship(
        back_populates="security_group", lazy="selectin", cascade="all, delete-orphan",
        foreign_keys="SecurityGroupRule.security_group_id",
        order_by="(SecurityGroupRule.created_at, SecurityGroupRule.id)")
    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == SecurityGroup.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")


class SecurityGroupRule(Base):
    __tablename__ = "network_security_group_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_security_groups.id", ondelete="CASCADE"), index=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("network_security_groups.id", ondelete="CASCADE"),
        nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(16))  # ingress | egress
    ethertype: Mapped[str] = mapped_column(String(8), default="IPv4")
    # As given: a name ("tcp") or a number as a string ("6"); None is any protocol.
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    security_group: Mapped[SecurityGroup] = relationship(
        back_populates="rules", foreign_keys=[security_group_id])


class DefaultSecurityGroup(Base):
    """Each project's ``default`` group; the primary key makes it one per project even
    when two first requests race to create it."""

    __tablename__ = "network_default_security_groups"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_security_groups.id", ondelete="CASCADE"))


class PortSecurityGroup(Base):
    """A port in a security group."""

    __tablename__ = "network_port_security_groups"
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_security_groups.id"), primary_key=True, index=True)


class SubnetPool(Base):
    """A pool of prefixes subnets are carved from (Neutron's subnet_allocation)."""

    __tablename__ = "network_subnetpools"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    # CIDRs in address order, merged where they touch.
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == SubnetPool.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")


class RBACPolicy(Base):
    """A network granted to a project (or to every project, target "*")."""

    __tablename__ = "network_rbac_policies"
    __table_args__ = (UniqueConstraint("object_id", "action", "target_project"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="network")
    object_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    # access_as_shared or access_as_external
    action: Mapped[str] = mapped_column(String(32))
    target_project: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AddressScope(Base):
    """Subnet pools whose prefixes are routed without NAT between them (address-scope)."""

    __tablename__ = "network_address_scopes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # Not on the wire (Neutron's address scopes have no timestamps): list order.
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class DefaultSecurityGroupRule(Base):
    """A template the rules of new security groups are made from (Neutron's
    security-groups-default-rules): for each project's default group, for the groups
    projects make, or both. ``remote_group_id`` may be ``PARENT``: the new group itself."""

    __tablename__ = "network_default_security_group_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8), default="IPv4")
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    used_in_default_sg: Mapped[bool] = mapped_column(Boolean, default=False)
    used_in_non_default_sg: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
