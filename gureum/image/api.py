"""The Image v2 API family (Glance-compatible), mounted at /image."""

from __future__ import annotations

from typing import Any

from gureum.api.app import Family
from gureum.api.faults import image_fault
from gureum.api.web import Request, Response, Router, json_response

router = Router()

VERSIONS = ["2.17", "2.16", "2.15", "2.14", "2.13", "2.12", "2.11", "2.10", "2.9", "2.8",
            "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"]


def versions_doc(req: Request) -> dict[str, Any]:
    values = []
    for i, v in enumerate(VERSIONS):
        values.append({"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
                       "links": [{"rel": "self", "href": f"{req.base_url}/v2/"}]})
    return {"versions": values}


@router.get("/", auth=False)
async def versions(req: Request) -> Response:
    return json_response(versions_doc(req), 300)


@router.get("/versions", auth=False)
async def versions_list(req: Request) -> Response:
    return json_response(versions_doc(req))


def family() -> Family:
    return Family("image", "/image", router, image_fault)
