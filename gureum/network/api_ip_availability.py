"""/v2.0/network-ip-availabilities: how many addresses each network's subnets use (admins).

Neutron's ``network-ip-availability`` extension: per network and per subnet,
``total_ips`` is the size of the subnet's allocation pools and ``used_ips`` the
addresses allocated in it (ports' fixed IPs, wherever they are in the subnet).
A read-only report; by default policy only admins see it: a list for anyone
else is empty and a show is 404, as Neutron answers.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, json_response
from gureum.network import errors as e
from gureum.network import models as m
from gureum.network import policy

router = Router()

def _pool_size(pools: list[dict[str, str]]) -> int:
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1
               for p in pools)


def _report(s: Session, nets: list[m.Network], ip_version: int | None
            ) -> list[dict[str, Any]]:
    ids = [n.id for n in nets]
    rows = s.execute(select(m.IPAllocation.subnet_id, func.count())
                     .where(m.IPAllocation.network_id.in_(ids))
                     .group_by(m.IPAllocation.subnet_id)).all() if ids else []
    used: dict[str, int] = {subnet_id: count for subnet_id, count in rows}
    out = []
    for net in nets:
        subnets: list[dict[str, Any]] = [
            {"subnet_id": sub.id, "subnet_name": sub.name, "cidr": sub.cidr,
             "ip_version": sub.ip_version, "total_ips": _pool_size(sub.allocation_pools),
             "used_ips": used.get(sub.id, 0)}
            for sub in net.subnets if ip_version in (None, sub.ip_version)]
        if ip_version is not None and not subnets:
            continue
        out.append({"network_id": net.id, "network_name": net.name,
                    "project_id": net.project_id, "tenant_id": net.project_id,
                    "total_ips": sum(x["total_ips"] for x in subnets),
                    "used_ips": sum(x["used_ips"] for x in subnets),
                    "subnet_ip_availability": subnets})
    return out


def _ip_version(req: Request) -> int | None:
    value = req.arg("ip_version")
    if value is None:
        return None
    if value not in ("4", "6"):
        raise e.invalid_input(f"Invalid input for ip_version. Reason: '{value}' is not a "
                              "valid IP version.", field="ip_version")
    return int(value)


@router.get("/v2.0/network-ip-availabilities", tx=True)
def list_availabilities(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_network_ip_availability")
    if not ctx.is_admin:
        return json_response({"network_ip_availabilities": []})
    query = select(m.Network).order_by(m.Network.created_at, m.Network.id)
    for name, column in (("network_id", m.Network.id), ("network_name", m.Network.name),
                         ("project_id", m.Network.project_id),
                         ("tenant_id", m.Network.project_id)):
        values = req.query.get(name)
        if values:
            query = query.where(column.in_(values))
    nets = list(s.scalars(query).unique())
    return json_response({"network_ip_availabilities": _report(s, nets, _ip_version(req))})


@router.get("/v2.0/network-ip-availabilities/{network_id}", tx=True)
def show_availability(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_network_ip_availability")
    network_id = req.path_params["network_id"]
    net = s.get(m.Network, network_id) if ctx.is_admin else None
    if net is None:
        raise e.not_found("network", network_id)
    (report,) = _report(s, [net], None)
    return json_response({"network_ip_availability": report})
