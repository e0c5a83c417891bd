"""First start: the `private` network every new cloud has, owned by the demo project.

As devstack does it: a project network ``private`` with an IPv4 subnet
``private-subnet`` (10.0.0.0/26, DHCP on, gateway on the first host), so
``openstack server create --network private`` works out of the box.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import select

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


def create_default_networks(settings: Settings, db: Database, out: Any = sys.stderr
                            ) -> str | None:
    """Create `private` + `private-subnet` for the demo project; the network id, or None."""
    ctx = RequestContext.system()
    with db.session() as s:
        demo = s.scalar(select(identity_models.Project.id).where(
            identity_models.Project.name == DEMO_PROJECT,
            identity_models.Project.domain_id == DEFAULT_DOMAIN_ID))
        if demo is None:
            return None
        existing = s.scalar(select(m.Network.id).where(m.Network.project_id == demo,
                                                       m.Network.name == NETWORK_NAME))
        if existing is not None:
            return str(existing)
        net = networks.create_network(s, ctx, {"name": NETWORK_NAME, "project_id": demo})
        subnets.create_subnet(s, ctx, {"name": SUBNET_NAME, "network_id": net.id,
                                       "ip_version": 4, "cidr": SUBNET_CIDR,
                                       "project_id": demo})
        network_id = net.id
    print(f"created the network {NETWORK_NAME} ({SUBNET_CIDR}) for the demo project",
          file=out)
    return network_id
