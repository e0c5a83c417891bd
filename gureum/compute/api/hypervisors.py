"""/v2.1/os-hypervisors: compute nodes with their service's state (admin only).

Ids are integers before 2.53 and uuids from 2.53 on; 2.53 also moves the
``/{pattern}/search`` and ``/{pattern}/servers`` routes into the
``hypervisor_hostname_pattern`` and ``with_servers`` query parameters, and
2.88 drops the usage numbers (``/statistics`` and ``/{id}/uptime`` with them).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import zones
from gureum.compute.api.common import ctx_of, require_admin, settings_of
from gureum.compute.api.params import int_id, is_uuid, limit_marker, page, reject_unknown
from gureum.compute.api.params import strict_bool as flag
from gureum.compute.models import ComputeNode, ComputeService, Instance
from gureum.compute.views import hypervisors as views
from gureum.compute.views.common import next_link
from gureum.errors import InvalidInput, NotFound
from gureum.paging import SortKey
from gureum.scheduler.select import COMPUTE_BINARY

router = Router()


def _services(s: Session) -> dict[str, ComputeService]:
    return {svc.host: svc for svc in s.scalars(
        select(ComputeService).where(ComputeService.binary == COMPUTE_BINARY))}


def _instances(s: Session, hosts: set[str]) -> dict[str, list[Instance]]:
    out: dict[str, list[Instance]] = {}
    if hosts:
        for inst in s.scalars(select(Instance).where(
                Instance.host.in_(hosts), Instance.deleted.is_(False))
                .order_by(Instance.created_at, Instance.seq)):
            out.setdefault(inst.host or "", []).append(inst)
    return out


def _usage(instances: list[Instance]) -> views.NodeUsage:
    return views.NodeUsage(running_vms=len(instances),
                           current_workload=sum(1 for i in instances if i.task_state))


def _not_found(hypervisor_id: str) -> NotFound:
    return NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")


def _matching(s: Session, pattern: str) -> list[ComputeNode]:
    """Nodes whose hypervisor_hostname contains the pattern (Nova's LIKE %pattern%)."""
    nodes = [n for n in s.scalars(select(ComputeNode).order_by(ComputeNode.id))
             if pattern in n.hypervisor_hostname]
    if not nodes:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return nodes


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-hypervisors:list" + ("-detail" if detail else ""))
    pattern = None
    with_servers = False
    limit = marker = None
    paging = at_least(req, "2.33")
    if at_least(req, "2.53"):
        reject_unknown(req, ("limit", "marker", "hypervisor_hostname_pattern",
                             "with_servers"), since=None)
        pattern = req.arg("hypervisor_hostname_pattern")
        with_servers = flag(req, "with_servers")
    if paging:
        limit, marker = limit_marker(req)
    if pattern is not None:
        if "limit" in req.query or marker:
            raise InvalidInput("Paging over hypervisors with the hypervisor_hostname_pattern "
                               "query parameter is not supported.")
        nodes = _matching(s, pattern)
        paging = False
    else:
        nodes = _page(s, req, select(ComputeNode), limit, marker)
    services = _services(s)
    nodes = [n for n in nodes if n.host in services]  # a deleted service hides its node
    on_host = _instances(s, {n.host for n in nodes})
    settings = settings_of(req)
    items = [views.hypervisor(req, n, services[n.host], zones.is_up(services[n.host], settings),
                              detail=detail, usage=_usage(on_host.get(n.host, [])),
                              instances=on_host.get(n.host) if with_servers else None,
                              with_servers=with_servers) for n in nodes]
    body: dict[str, Any] = {"hypervisors": items}
    if paging:
        links = next_link(req, "os-hypervisors/detail" if detail else "os-hypervisors",
                          items, limit)
        if links:
            body["hypervisors_links"] = links
    return json_response(body)


def _page(s: Session, req: Request, stmt: Select[Any], limit: int | None,
          marker: str | None) -> list[ComputeNode]:
    """From 2.53 the marker is a node's uuid, before it its integer id."""
    if not marker:
        where: ColumnElement[bool] = ComputeNode.id.is_(None)  # no marker: not looked up
    elif at_least(req, "2.53"):
        where = ComputeNode.uuid == marker
    else:
        number = int_id(marker)
        where = ComputeNode.id == number if number is not None else false()
    return page(s, stmt, [SortKey(ComputeNode.id)], limit, marker, where,
                not_found="marker [{marker}] not found")


@router.get("/v2.1/os-hypervisors", tx=True)
def list_hypervisors(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/os-hypervisors/detail", tx=True)
def list_hypervisors_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


@router.get("/v2.1/os-hypervisors/statistics", tx=True)
def statistics(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-hypervisors:statistics")
    if at_least(req, "2.88"):
        raise NotFound("The resource could not be found.")
    services = _services(s)
    # Nova sums the nodes of enabled compute services only.
    nodes = [n for n in s.scalars(select(ComputeNode).order_by(ComputeNode.id))
             if n.host in services and not services[n.host].disabled]
    on_host = _instances(s, {n.host for n in nodes})
    totals: Counter[str] = Counter()
    for node in nodes:
        totals.update(views.statistics_of(node, _usage(on_host.get(node.host, []))))
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
            "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
            "disk_available_least")
    stats = {"count": len(nodes), **{k: totals.get(k, 0) for k in keys}}
    return json_response({"hypervisor_statistics": stats})


def _node(req: Request, s: Session, hypervisor_id: str) -> tuple[ComputeNode, ComputeService]:
    if at_least(req, "2.53"):
        if not is_uuid(hypervisor_id):
            raise InvalidInput(f"Invalid uuid {hypervisor_id}")
        node = s.scalar(select(ComputeNode).where(ComputeNode.uuid == hypervisor_id))
    else:
        number = int_id(hypervisor_id)
        node = s.get(ComputeNode, number) if number is not None else None
    svc = zones.compute_service(s, node.host) if node is not None else None
    if node is None or svc is None:
        raise _not_found(hypervisor_id)
    return node, svc


@router.get("/v2.1/os-hypervisors/{hypervisor_id}", tx=True)
def show_hypervisor(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-hypervisors:show")
    with_servers = False
    if at_least(req, "2.53"):
        reject_unknown(req, ("with_servers",), since=None)
        with_servers = flag(req, "with_servers")
    node, svc = _node(req, s, req.path_params["hypervisor_id"])
    on_host = _instances(s, {node.host}).get(node.host, [])
    view = views.hypervisor(req, node, svc, zones.is_up(svc, settings_of(req)), detail=True,
                            usage=_usage(on_host),
                            instances=on_host if with_servers else None,
                            with_servers=with_servers)
    return json_response({"hypervisor": view})


@router.get("/v2.1/os-hypervisors/{hypervisor_id}/uptime", tx=True)
def uptime(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-hypervisors:uptime")
    if at_least(req, "2.88"):
        raise NotFound("The resource could not be found.")
    node, svc = _node(req, s, req.path_params["hypervisor_id"])
    view = views.hypervisor(req, node, svc, zones.is_up(svc, settings_of(req)), detail=False)
    view["uptime"] = views.uptime(svc)
    return json_response({"hypervisor": view})


def _by_pattern(req: Request, s: Session, with_instances: bool) -> Response:
    if at_least(req, "2.53"):
        raise NotFound("The resource could not be found.")
    services = _services(s)
    nodes = [n for n in _matching(s, req.path_params["pattern"]) if n.host in services]
    on_host = _instances(s, {n.host for n in nodes}) if with_instances else {}
    settings = settings_of(req)
    items = [views.hypervisor(req, n, services[n.host], zones.is_up(services[n.host], settings),
                              detail=False, instances=on_host.get(n.host)) for n in nodes]
    return json_response({"hypervisors": items})


@router.get("/v2.1/os-hypervisors/{pattern}/search", tx=True)
def search(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-hypervisors:search")
    return _by_pattern(req, s, with_instances=False)


@router.get("/v2.1/os-hypervisors/{pattern}/servers", tx=True)
def servers(req: Request, s: Session) -> Response:
    require_admin(ctx_of(req), "os_compute_api:os-hypervisors:servers")
    return _by_pattern(req, s, with_instances=True)
