"""/v2.1/servers/{id}/metadata: the user's key/value pairs on a server.

The rules (the states that allow a change, the lock, the quota, the
compare-and-swap) are compute/server_metadata.py's.
"""

from __future__ import annotations

from typing import Any

from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import policy, server_metadata
from gureum.compute.api.common import ctx_of, settings_of
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_metadata = {"type": "object", "additionalProperties": False, "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}}
metadata_body = {"type": "object", "required": ["metadata"], "additionalProperties": False,
                 "properties": {"metadata": _metadata}}
meta_body = {"type": "object", "required": ["meta"], "additionalProperties": False,
             "properties": {"meta": {**_metadata, "minProperties": 1, "maxProperties": 1}}}


def _ctx(req: Request, rule: str) -> RequestContext:
    return policy.authorize(ctx_of(req), f"os_compute_api:server-metadata:{rule}")


def _current(req: Request, s: Session, rule: str) -> dict[str, str]:
    return server_metadata.metadata(s, _ctx(req, rule), req.path_params["server_id"])


def _change(req: Request, s: Session, rule: str, verb: str, mutate: Any) -> dict[str, str]:
    return server_metadata.change_metadata(s, _ctx(req, rule), req.path_params["server_id"],
                                           verb, mutate, settings_of(req))


@router.get("/v2.1/servers/{server_id}/metadata", tx=True)
def list_metadata(req: Request, s: Session) -> Response:
    return json_response({"metadata": _current(req, s, "index")})


@router.post("/v2.1/servers/{server_id}/metadata", tx=True)
def update_metadata(req: Request, s: Session) -> Response:
    """Merge the given keys into the server's metadata."""
    body = validate(metadata_body, req.json())["metadata"]
    new = _change(req, s, "create", "update metadata", lambda old: {**old, **body})
    return json_response({"metadata": new})


@router.put("/v2.1/servers/{server_id}/metadata", tx=True)
def replace_metadata(req: Request, s: Session) -> Response:
    body = validate(metadata_body, req.json())["metadata"]
    new = _change(req, s, "update_all", "update metadata", lambda old: dict(body))
    return json_response({"metadata": new})


@router.get("/v2.1/servers/{server_id}/metadata/{key}", tx=True)
def show_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    metadata = _current(req, s, "show")
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    return json_response({"meta": {key: metadata[key]}})


@router.put("/v2.1/servers/{server_id}/metadata/{key}", tx=True)
def set_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    body: dict[str, Any] = validate(meta_body, req.json())["meta"]
    if key not in body:
        raise InvalidInput("Request body and URI mismatch", field="meta")
    _change(req, s, "update", "update metadata", lambda old: {**old, **body})
    return json_response({"meta": body})


@router.delete("/v2.1/servers/{server_id}/metadata/{key}", tx=True)
def delete_metadata_item(req: Request, s: Session) -> Response:
    key = req.path_params["key"]
    if key not in _current(req, s, "delete"):
        raise NotFound("Metadata item was not found")

    def without(old: dict[str, str]) -> dict[str, str]:
        if key not in old:
            raise NotFound("Metadata item was not found")
        return {k: v for k, v in old.items() if k != key}

    _change(req, s, "delete", "delete metadata", without)
    return empty(204)
