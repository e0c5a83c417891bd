"""/v2.1/os-floating-ip-pools: Nova's proxy listing the external networks (gone from 2.36).

Nova answers with the networks whose ``router:external`` is true, each named by
its name (its id when it has none). openstacksdk's cloud layer
(``list_floating_ip_pools``, ``available_floating_ip``) and `openstack floating
ip pool list` ask here.
"""

from __future__ import annotations

from gureum.api.web import Request, Response, Router, json_response
from gureum.compute.api.images import _until_2_35
from gureum.db import Session
from gureum.network import service as netsvc

router = Router()


@router.get("/v2.1/os-floating-ip-pools", tx=True)
def list_floating_ip_pools(req: Request, s: Session) -> Response:
    _until_2_35(req)
    return json_response({"floating_ip_pools": [
        {"name": name} for name in netsvc.floating_ip_pool_names(s)]})
