"""The Image v2 API family (Glance-compatible), mounted at /image.

Version discovery, the schema documents clients fetch, and the info
endpoints live here; images, data and members have their own modules.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.api.app import Family
from gureum.api.faults import image_fault
from gureum.api.web import Request, Response, Router, json_response
from gureum.errors import GureumError, NotFound
from gureum.image import api_data, api_images, api_members, api_metadefs, data, policy, schemas
from gureum.image import models as m

router = Router()

# What a Glance with default settings (no image cache, one store) advertises,
# in the order it lists them (glance/api/versions.py).
VERSIONS = [("2.15", "SUPPORTED"), ("2.9", "SUPPORTED"), ("2.17", "CURRENT"),
            ("2.7", "SUPPORTED"), ("2.6", "SUPPORTED"), ("2.5", "SUPPORTED"),
            ("2.4", "SUPPORTED"), ("2.3", "SUPPORTED"), ("2.2", "SUPPORTED"),
            ("2.1", "SUPPORTED"), ("2.0", "SUPPORTED")]


def versions_doc(req: Request) -> dict[str, Any]:
    return {"versions": [{"id": f"v{v}", "status": status,
                          "links": [{"rel": "self", "href": f"{req.base_url}/v2/"}]}
                         for v, status in VERSIONS]}


@router.get("/", auth=False)
async def versions(req: Request) -> Response:
    return json_response(versions_doc(req), 300)


@router.get("/versions", auth=False)
async def versions_list(req: Request) -> Response:
    return json_response(versions_doc(req))


@router.get("/v2", auth=False)
async def version_root(req: Request) -> Response:
    # Glance has no document of its own here; the version list lets a client that
    # was given the versioned URL discover the API all the same.
    return json_response(versions_doc(req))


# -- schemas -------------------------------------------------------------------------

_SCHEMAS = {"image": schemas.image_schema, "images": schemas.images_schema,
            "member": schemas.member_schema, "members": schemas.members_schema,
            "task": schemas.task_schema, "tasks": schemas.tasks_schema}


@router.get("/v2/schemas/{name}")
async def get_schema(req: Request) -> Response:
    make = _SCHEMAS.get(req.path_params["name"])
    if make is None:
        raise NotFound("The resource could not be found.")
    return json_response(make())


# -- tasks ---------------------------------------------------------------------------
# Glance's deprecated, admin-only tasks API: imports here finish inside their
# request, so there is never a task to show.

def _tasks_access(req: Request) -> None:
    if not api_images.ctx_of(req).is_admin:
        raise policy.deny("tasks_api_access")


@router.get("/v2/tasks")
async def list_tasks(req: Request) -> Response:
    _tasks_access(req)
    return json_response({"tasks": [], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"})


@router.get("/v2/tasks/{task_id}")
async def show_task(req: Request) -> Response:
    _tasks_access(req)
    raise NotFound(f"Task with identifier {req.path_params['task_id']} not found")


# -- info ----------------------------------------------------------------------------

@router.get("/v2/info/import")
async def import_info(req: Request) -> Response:
    return json_response({"import-methods": {"description": "Import methods available.",
                                             "type": "array",
                                             "value": list(data.IMPORT_METHODS)}})


@router.get("/v2/info/stores")
async def stores_info(req: Request) -> Response:
    raise NotFound("Multi backend is not supported at this site.")


@router.get("/v2/info/usage", tx=True)
def usage_info(req: Request, s: Session) -> Response:
    """The caller's project usage; no limits are enforced (-1), as without keystone limits."""
    ctx = api_images.ctx_of(req)
    policy.check_read(ctx)
    mine = m.Image.owner == ctx.project_id
    size = s.scalar(select(func.coalesce(func.sum(m.Image.size), 0)).where(mine)) or 0
    count = s.scalar(select(func.count()).select_from(m.Image).where(mine)) or 0
    uploading = s.scalar(select(func.count()).select_from(m.Image).where(
        mine, m.Image.status.in_((m.SAVING, m.UPLOADING, m.IMPORTING)))) or 0
    mib = 1 << 20
    return json_response({"usage": {
        "image_size_total": {"limit": -1, "usage": int(size) // mib},
        "image_stage_total": {"limit": -1, "usage": 0},
        "image_count_total": {"limit": -1, "usage": int(count)},
        "image_count_uploading": {"limit": -1, "usage": int(uploading)}}})


def render_error(err: GureumError, req: Request) -> Response:
    """Glance's fault body, plus any headers the error asks for (e.g. Accept-Patch)."""
    response = image_fault(err, req)
    response.headers.update(err.details.get("headers") or {})
    return response


def family() -> Family:
    top = Router()
    for module in (api_images, api_data, api_members, api_metadefs):
        top.include(module.router)
    top.include(router)
    return Family("image", "/image", top, render_error)
