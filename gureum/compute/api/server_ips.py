"""/v2.1/servers/{id}/ips: a server's addresses by network, from its network_info."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, json_response
from gureum.compute.api.common import ctx_of, instance_for
from gureum.compute.models import Instance
from gureum.compute.views.servers import addresses
from gureum.errors import NotFound

router = Router()


def networks(inst: Instance) -> dict[str, list[dict[str, Any]]]:
    """network label → [{"version", "addr"}] (the ips API leaves out type and MAC)."""
    return {label: [{"version": a["version"], "addr": a["addr"]} for a in entries]
            for label, entries in addresses(inst).items()}


@router.get("/v2.1/servers/{server_id}/ips", tx=True)
def list_ips(req: Request, s: Session) -> Response:
    inst = instance_for(s, ctx_of(req), req.path_params["server_id"])
    return json_response({"addresses": networks(inst)})


@router.get("/v2.1/servers/{server_id}/ips/{network_label}", tx=True)
def show_ips(req: Request, s: Session) -> Response:
    inst = instance_for(s, ctx_of(req), req.path_params["server_id"])
    label = req.path_params["network_label"]
    found = networks(inst)
    if label not in found:
        raise NotFound("Instance is not a member of specified network")
    return json_response({label: found[label]})
