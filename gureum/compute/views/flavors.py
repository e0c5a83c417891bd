"""Flavor wire shapes, with their microversion differences."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute.models import Flavor
from gureum.compute.views.common import links


def flavor(req: Request, f: Flavor, detail: bool = True,
           show_extra_specs: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.id, "name": f.name, "links": links(req, "flavors", f.id)}
    if at_least(req, "2.55"):
        out["description"] = f.description
    if not detail:
        return out
    out.update({
        "ram": f.ram, "disk": f.disk, "vcpus": f.vcpus,
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral, "OS-FLV-DISABLED:disabled": f.disabled,
        # Before 2.75 a flavor without swap said "" instead of 0.
        "swap": f.swap if (f.swap or at_least(req, "2.75")) else "",
        "rxtx_factor": f.rxtx_factor, "os-flavor-access:is_public": f.is_public,
    })
    if at_least(req, "2.61") and show_extra_specs:
        out["extra_specs"] = dict(f.extra_specs or {})
    return out
