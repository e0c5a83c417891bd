"""What every networking operation shares: finding resources, revisions, tags, quotas.

Functions take an open session; the caller (an API handler, the conductor,
bootstrap) owns the transaction. The resource operations live in
``networks``, ``subnets`` and ``ports``; what Compute calls is in ``service``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db.base import utcnow
from gureum.db.locks import lock_project_quotas
from gureum.network import errors as e
from gureum.network import l3_models as l3
from gureum.network import models as m
from gureum.network import policy

T = TypeVar("T")

# Neutron's default quotas (neutron/conf/quota.py); -1 is unlimited.
DEFAULT_QUOTAS = {"network": 100, "subnet": 100, "port": 500, "router": 10,
                  "floatingip": 50, "security_group": 10, "security_group_rule": 100,
                  "rbac_policy": 10, "subnetpool": -1}
COUNTED: dict[str, Any] = {"network": m.Network, "subnet": m.Subnet, "port": m.Port,
                           "security_group": m.SecurityGroup,
                           "security_group_rule": m.SecurityGroupRule,
                           "subnetpool": m.SubnetPool, "rbac_policy": m.RBACPolicy,
                           "router": l3.Router, "floatingip": l3.FloatingIP}


def get_network(s: Session, ctx: RequestContext | None, network_id: str) -> m.Network:
    """The network, if ctx may see it (ctx None: the system, sees all); 404 otherwise."""
    net = s.get(m.Network, network_id)
    if net is None or (ctx is not None and not policy.can_see_network(ctx, net)):
        raise e.not_found("network", network_id)
    return net


def get_subnet(s: Session, ctx: RequestContext | None, subnet_id: str) -> m.Subnet:
    sn = s.get(m.Subnet, subnet_id)
    if sn is None or (ctx is not None and not policy.can_see_network(ctx, sn.network)):
        raise e.not_found("subnet", subnet_id)
    return sn


def get_port(s: Session, ctx: RequestContext | None, port_id: str) -> m.Port:
    p = s.get(m.Port, port_id)
    if p is None or (ctx is not None and not (policy.owns(ctx, p.project_id) or
                                              policy.owns(ctx, p.network.project_id))):
        raise e.not_found("port", port_id)
    return p


def touch(row: Any) -> None:
    """A change: bump the revision and the update time."""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()


# -- tags ---------------------------------------------------------------------------

def set_tags(s: Session, row: Any, tags: list[str]) -> None:
    s.execute(delete(m.Tag).where(m.Tag.resource_id == row.id))
    for tag in sorted(set(tags)):
        s.add(m.Tag(resource_id=row.id, tag=tag))
    s.flush()
    s.expire(row, ["tags"])


def add_tag(s: Session, row: Any, tag: str) -> None:
    if s.get(m.Tag, (row.id, tag)) is None:
        s.add(m.Tag(resource_id=row.id, tag=tag))
        s.flush()
        s.expire(row, ["tags"])


def remove_tag(s: Session, row: Any, tag: str) -> None:
    found = s.get(m.Tag, (row.id, tag))
    if found is None:
        raise e.typed_not_found("TagNotFound", f"Tag {tag} could not be found.")
    s.delete(found)
    s.flush()
    s.expire(row, ["tags"])


def drop_tags(s: Session, resource_id: str) -> None:
    s.execute(delete(m.Tag).where(m.Tag.resource_id == resource_id))


# -- quotas -------------------------------------------------------------------------

def quota_limits(s: Session, project_id: str) -> dict[str, int]:
    limits = dict(DEFAULT_QUOTAS)
    for q in s.scalars(select(m.Quota).where(m.Quota.project_id == project_id)):
        if q.resource in limits:
            limits[q.resource] = q.hard_limit
    return limits


def usage(s: Session, project_id: str, resource: str) -> int:
    model = COUNTED.get(resource)
    if model is None:
        return 0
    return int(s.scalar(select(func.count()).select_from(model)
                        .where(model.project_id == project_id)) or 0)


def check_quota(s: Session, project_id: str, resource: str, adding: int = 1) -> None:
    """403 over quota; counted under the project's quota lock (gureum/db/locks.py), held
    until the transaction ends, so concurrent creates cannot both take the last one."""
    limit = quota_limits(s, project_id)[resource]
    if limit < 0:
        return
    lock_project_quotas(s, project_id)
    if usage(s, project_id, resource) + adding > limit:
        raise e.over_quota(resource)
