"""Routers, floating IPs, port forwardings and where agents carry them (Neutron's L3).

* a router's ports are ordinary ports: its gateway port (``network:router_gateway``,
  on the external network) and its interfaces (``network:router_interface``), each
  with ``device_id`` = the router's id; ``gw_port_id`` names the gateway port;
* a floating IP owns a port on its external network (``network:floatingip``) that
  holds its address; ``fixed_port_id``/``fixed_ip_address``/``router_id`` say where
  it points while associated;
* ``RouterL3AgentBinding`` and ``NetworkDhcpAgentBinding`` say which agent carries
  a router or serves a network's DHCP (Neutron's scheduler tables); the conductor
  moves them off agents that stop heartbeating (S6).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gureum.db.base import Base, new_uuid, utcnow
from gureum.network.models import ACTIVE, DOWN, Tag

# The device_owner of the ports L3 makes.
ROUTER_GATEWAY = "network:router_gateway"
ROUTER_INTERFACE = "network:router_interface"
FLOATINGIP = "network:floatingip"
DHCP = "network:dhcp"

__all__ = ["ACTIVE", "DOWN", "FloatingIP", "NetworkDhcpAgentBinding", "PortForwarding",
           "Router", "RouterL3AgentBinding"]


class Router(Base):
    __tablename__ = "network_routers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    gw_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    ha: Mapped[bool] = mapped_column(Boolean, default=False)
    distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"destination": cidr, "nexthop": ip}, ...]
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == Router.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")


class FloatingIP(Base):
    __tablename__ = "network_floatingips"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    floating_network_id: Mapped[str] = mapped_column(String(36), index=True)
    floating_port_id: Mapped[str] = mapped_column(String(36), unique=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64), index=True)
    fixed_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default=DOWN)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    tags: Mapped[list[Tag]] = relationship(
        primaryjoin="foreign(Tag.resource_id) == FloatingIP.id", viewonly=True,
        lazy="selectin", order_by="Tag.tag")
    port_forwardings: Mapped[list[PortForwarding]] = relationship(
        back_populates="floatingip", lazy="selectin", cascade="all, delete-orphan",
        order_by="PortForwarding.external_port")


class PortForwarding(Base):
    """A floating IP's (protocol, external port) forwarded to a fixed address's port."""

    __tablename__ = "network_port_forwardings"
    __table_args__ = (UniqueConstraint("floatingip_id", "protocol", "external_port"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    floatingip_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_floatingips.id", ondelete="CASCADE"), index=True)
    internal_port_id: Mapped[str] = mapped_column(String(36), index=True)
    internal_ip_address: Mapped[str] = mapped_column(String(64))
    internal_port: Mapped[int] = mapped_column(Integer)
    external_port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(255), default="")

    floatingip: Mapped[FloatingIP] = relationship(back_populates="port_forwardings")


class RouterL3AgentBinding(Base):
    """A router carried by an L3 agent (an HA router by more than one)."""

    __tablename__ = "network_router_l3_agents"
    router_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_routers.id", ondelete="CASCADE"), primary_key=True)
    l3_agent_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_agents.id", ondelete="CASCADE"), primary_key=True,
        index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NetworkDhcpAgentBinding(Base):
    """A network whose DHCP a DHCP agent serves."""

    __tablename__ = "network_dhcp_agents"
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_networks.id", ondelete="CASCADE"), primary_key=True)
    dhcp_agent_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("network_agents.id", ondelete="CASCADE"), primary_key=True,
        index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
