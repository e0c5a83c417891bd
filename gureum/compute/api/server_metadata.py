"""/v2.1/servers/{id}/metadata: the user's key/value pairs on a server.

Changes are allowed in the states the action table gives "update_metadata"
(409 otherwise, and while locked); the merged result may hold at most
``[quota] metadata_items`` keys (403). Each change is a compare-and-swap on the
server row, so two concurrent updates never lose one another's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import states
from gureum.compute.api.common import (
    check_not_locked,
    ctx_of,
    instance_for,
    require_writer,
    settings_of,
)
from gureum.compute.models import Instance
from gureum.compute.quotas import check_metadata_items
from gureum.db import compare_and_swap, utcnow
from gureum.errors import Conflict, InvalidInput, NotFound

router = Router()

_metadata = {"type": "object", "additionalProperties": False, "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}}
metadata_body = {"type": "object", "required": ["metadata"], "additionalProperties": False,
                 "properties": {"metadata": _metadata}}
meta_body = {"type": "object", "required": ["meta"], "additionalProperties": False,
             "properties": {"meta": {**_metadata, "minProperties": 1, "maxProperties": 1}}}

ATTEMPTS = 5


def change_metadata(req: Request, s: Session, verb: str,
                    mutate: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str]:
    """Apply mutate to the server's metadata atomically; return the new metadata."""
    ctx = ctx_of(req)
    require_writer(ctx, f"os_compute_api:server-metadata:{verb.split()[0]}")
    server_id = req.path_params["server_id"]
    for _ in range(ATTEMPTS):
        inst = instance_for(s, ctx, server_id)
        check_not_locked(ctx, inst)
        try:
            states.check("update_metadata", inst.id, inst.vm_state, inst.task_state,
                         launched=inst.launched_at is not None)
        except states.ActionNotAllowed as err:
            raise Conflict(f"Cannot '{verb}' instance {inst.id} while it is in {err.attr} "
                           f"{err.state}") from None
        old = dict(inst.metadata_ or {})
        new = mutate(dict(old))
        if len(new) > len(old):
            check_metadata_items(s, inst.project_id, settings_of(req), len(new))
        expected = {"deleted": False, "vm_state": inst.vm_state,
                    "task_state": inst.task_state, "updated_at": inst.updated_at}
        if compare_and_swap(s, Instance, inst.id, expected,
                            {"metadata_": new, "updated_at": utcnow()}):
            s.expire_all()
            return new
        s.expire_all()  # somebody else changed the server first: read it again
    raise Conflict(f"Instance {server_id} is being changed by other requests; try again.")


def _metadata_of(req: Request, s: Session) -> dict[str, str]:
    inst = instance_for(s, ctx_of(req), req.path_params["server_id"])
    return dict(inst.metadata_ or {})


@router.get("/v2.1/servers/{server_id}/metadata", tx=True)
def list_metadata(req: Request, s: Session) -> Response:
    return json_response({"metadata": _metadata_of(req, s)})


@router.post("/v2.1/servers/{server_id}/metadata", tx=True)
def update_metadata(req: Request, s: Session) -> Response:
    """Merge the given keys into the server's metadata."""
    body = validate(metadata_body, req.json())["metadata"]
    new = change_metadata(req, s, "update metadata", lambda old: {**old, **body})
    return json_response({"metadata": new})


@router.put("/v2.1/servers/{server_id}/metadata", tx=True)
def replace_metadata(req: Request, s: Session) -> Response:
    body = validate(metadata_body, req.json())["metadata"]
    new = change_metadata(req, s, "update metadata", lambda old: dict(body))
    return json_response({"metadata": new})


@router.get("/v2.1/servers/{server_id}/metadata/{key}", tx=True)
def show_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    metadata = _metadata_of(req, s)
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    return json_response({"meta": {key: metadata[key]}})


@router.put("/v2.1/servers/{server_id}/metadata/{key}", tx=True)
def set_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    body: dict[str, Any] = validate(meta_body, req.json())["meta"]
    if key not in body:
        raise InvalidInput("Request body and URI mismatch", field="meta")
    change_metadata(req, s, "update metadata", lambda old: {**old, **body})
    return json_response({"meta": body})


@router.delete("/v2.1/servers/{server_id}/metadata/{key}", tx=True)
def delete_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    if key not in _metadata_of(req, s):
        raise NotFound("Metadata item was not found")

    def without(old: dict[str, str]) -> dict[str, str]:
        if key not in old:
            raise NotFound("Metadata item was not found")
        return {k: v for k, v in old.items() if k != key}

    change_metadata(req, s, "delete metadata", without)
    return empty(204)
