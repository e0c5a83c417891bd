"""First start: the `private` and `public` networks every new cloud has.

As devstack does it: a project network ``private`` of the demo project with an
IPv4 subnet ``private-subnet`` (10.0.0.0/26, DHCP on, gateway on the first
host), so ``openstack server create --network private`` works out of the box;
and the admin's external network ``public`` (flat on the physical network
``public``) with ``public-subnet`` (172.24.4.0/24, no DHCP), where router
gateways and floating IPs come from (``openstack floating ip create public``).
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.config import Settings
from gureum.context import RequestContext
from gureum.db import Database
from gureum.identity import models as identity_models
from gureum.network import models as m
from gureum.network import networks, subnets

DEMO_PROJECT = "demo"
DEFAULT_DOMAIN_ID = "default"
NETWORK_NAME = "private"
SUBNET_NAME = "private-subnet"
SUBNET_CIDR = "10.0.0.0/26"
ADMIN_PROJECT = "admin"
PUBLIC_NETWORK = "public"
PUBLIC_PHYSNET = "public"
PUBLIC_SUBNET = "public-subnet"
PUBLIC_CIDR = "172.24.4.0/24"


def _project(s: Session, name: str) -> str | None:
    found = s.scalar(select(identity_models.Project.id).where(
        identity_models.Project.name == name,
        identity_models.Project.domain_id == DEFAULT_DOMAIN_ID))
    return None if found is None else str(found)


def create_public_network(settings: Settings, db: Database, out: Any = sys.stderr
                          ) -> str | None:
    """Create the external `public` + `public-subnet` (admin's); its id, or None."""
    ctx = RequestContext.system()
    underlay = networks.Underlay.of(settings.network)
    with db.session() as s:
        admin = _project(s, ADMIN_PROJECT)
        if admin is None:
            return None
        existing = s.scalar(select(m.Network.id).where(m.Network.name == PUBLIC_NETWORK,
                                                       m.Network.external.is_(True)))
        if existing is not None:
            return str(existing)
        net = networks.create_network(s, ctx, {
            "name": PUBLIC_NETWORK, "project_id": admin, "router:external": True,
            "provider:network_type": "flat", "provider:physical_network": PUBLIC_PHYSNET},
            underlay)
        subnets.create_subnet(s, ctx, {"name": PUBLIC_SUBNET, "network_id": net.id,
                                       "ip_version": 4, "cidr": PUBLIC_CIDR,
                                       "enable_dhcp": False, "project_id": admin})
        network_id = net.id
    print(f"created the external network {PUBLIC_NETWORK} ({PUBLIC_CIDR})", file=out)
    return network_id


def create_default_networks(settings: Settings, db: Database, out: Any = sys.stderr
                            ) -> str | None:
    """Create `private` + `private-subnet` for the demo project, and `public`; the
    private network's id, or None."""
    create_public_network(settings, db, out)
    ctx = RequestContext.system()
    with db.session() as s:
        demo = _project(s, DEMO_PROJECT)
        if demo is None:
            return None
        existing = s.scalar(select(m.Network.id).where(m.Network.project_id == demo,
                                                       m.Network.name == NETWORK_NAME))
        if existing is not None:
            return str(existing)
        net = networks.create_network(s, ctx, {"name": NETWORK_NAME, "project_id": demo},
                                      networks.Underlay.of(settings.network))
        subnets.create_subnet(s, ctx, {"name": SUBNET_NAME, "network_id": net.id,
                                       "ip_version": 4, "cidr": SUBNET_CIDR,
                                       "project_id": demo})
        network_id = net.id
    print(f"created the network {NETWORK_NAME} ({SUBNET_CIDR}) for the demo project",
          file=out)
    return network_id
