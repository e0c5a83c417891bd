"""/v2.1/servers/{id}/ips: a server's addresses by network, from its network_info."""

from __future__ import annotations

from typing import Any

from gureum.api.web import Request, Response, Router, json_response
from gureum.compute import instances, policy
from gureum.compute.api.common import ctx_of
from gureum.compute.views.servers import ips
from gureum.db import Session
from gureum.errors import NotFound

router = Router()


def _ips(req: Request, s: Session, rule: str) -> dict[str, list[dict[str, Any]]]:
    ctx = policy.authorize(ctx_of(req), f"os_compute_api:ips:{rule}")
    return ips(instances.visible(s, ctx, req.path_params["server_id"]))


@router.get("/v2.1/servers/{server_id}/ips", tx=True)
def list_ips(req: Request, s: Session) -> Response:
    return json_response({"addresses": _ips(req, s, "index")})


@router.get("/v2.1/servers/{server_id}/ips/{network_label}", tx=True)
def show_ips(req: Request, s: Session) -> Response:
    label = req.path_params["network_label"]
    found = _ips(req, s, "show")
    if label not in found:
        raise NotFound("Instance is not a member of specified network")
    return json_response({label: found[label]})
