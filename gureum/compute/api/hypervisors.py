"""/v2.1/os-hypervisors: compute nodes with their service's state (admin only).

Ids are integers before 2.53 and uuids from 2.53 on; 2.53 also moves the
``/{pattern}/search`` and ``/{pattern}/servers`` routes into the
``hypervisor_hostname_pattern`` and ``with_servers`` query parameters, and
2.88 drops the usage numbers (``/statistics`` and ``/{id}/uptime`` with them).
Which nodes show and what they carry is compute/hypervisors.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import hypervisors, policy
from gureum.compute.api.common import ctx_of, settings_of
from gureum.compute.api.params import is_uuid, limit_marker, reject_unknown
from gureum.compute.api.params import strict_bool as flag
from gureum.compute.hypervisors import Hypervisor
from gureum.compute.views import hypervisors as views
from gureum.compute.views.common import next_link
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()
_RULE = "os_compute_api:os-hypervisors:"


def _view(req: Request, h: Hypervisor, detail: bool, with_servers: bool = False,
          instances: bool = False) -> dict[str, Any]:
    return views.hypervisor(req, h.node, h.service, h.up, detail=detail, usage=h.usage,
                            instances=h.instances if with_servers or instances else None,
                            with_servers=with_servers)


def _list(req: Request, s: Session, detail: bool) -> Response:
    policy.authorize(ctx_of(req), _RULE + ("list-detail" if detail else "list"))
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
        nodes = hypervisors.matching(s, pattern)
        paging = False
    else:
        nodes = hypervisors.page_nodes(s, limit, marker, by_uuid=at_least(req, "2.53"))
    items = [_view(req, h, detail, with_servers)
             for h in hypervisors.described(s, nodes, settings_of(req))]
    body: dict[str, Any] = {"hypervisors": items}
    if paging:
        links = next_link(req, "os-hypervisors/detail" if detail else "os-hypervisors",
                          items, limit)
        if links:
            body["hypervisors_links"] = links
    return json_response(body)


@router.get("/v2.1/os-hypervisors", tx=True)
def list_hypervisors(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/os-hypervisors/detail", tx=True)
def list_hypervisors_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


@router.get("/v2.1/os-hypervisors/statistics", tx=True)
def statistics(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "statistics")
    if at_least(req, "2.88"):
        raise NotFound("The resource could not be found.")
    return json_response({"hypervisor_statistics": hypervisors.statistics(s)})


def _get(req: Request, s: Session) -> Hypervisor:
    hypervisor_id = req.path_params["hypervisor_id"]
    by_uuid = at_least(req, "2.53")
    if by_uuid and not is_uuid(hypervisor_id):
        raise InvalidInput(f"Invalid uuid {hypervisor_id}")
    return hypervisors.get(s, hypervisor_id, by_uuid, settings_of(req))


@router.get("/v2.1/os-hypervisors/{hypervisor_id}", tx=True)
def show_hypervisor(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "show")
    with_servers = False
    if at_least(req, "2.53"):
        reject_unknown(req, ("with_servers",), since=None)
        with_servers = flag(req, "with_servers")
    return json_response({"hypervisor": _view(req, _get(req, s), True, with_servers)})


@router.get("/v2.1/os-hypervisors/{hypervisor_id}/uptime", tx=True)
def uptime(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "uptime")
    if at_least(req, "2.88"):
        raise NotFound("The resource could not be found.")
    found = _get(req, s)
    view = _view(req, found, detail=False)
    view["uptime"] = views.uptime(found.service)
    return json_response({"hypervisor": view})


def _by_pattern(req: Request, s: Session, with_instances: bool) -> Response:
    if at_least(req, "2.53"):
        raise NotFound("The resource could not be found.")
    nodes = hypervisors.matching(s, req.path_params["pattern"])
    items = [_view(req, h, detail=False, instances=with_instances)
             for h in hypervisors.described(s, nodes, settings_of(req))]
    return json_response({"hypervisors": items})


@router.get("/v2.1/os-hypervisors/{pattern}/search", tx=True)
def search(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "search")
    return _by_pattern(req, s, with_instances=False)


@router.get("/v2.1/os-hypervisors/{pattern}/servers", tx=True)
def servers(req: Request, s: Session) -> Response:
    policy.authorize(ctx_of(req), _RULE + "servers")
    return _by_pattern(req, s, with_instances=True)
