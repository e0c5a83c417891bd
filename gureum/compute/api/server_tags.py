"""/v2.1/servers/{id}/tags (2.26+): list, replace, check, add and remove tags.

A server has at most 50 tags, each 1 to 60 characters without '/' or ','; when
they may change is compute/server_metadata.py's rule.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import policy, server_metadata
from gureum.compute.api.common import ctx_of
from gureum.compute.server_metadata import MAX_TAG_LENGTH, MAX_TAGS
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput, NotFound

router = Router()

_tag = {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LENGTH, "pattern": "^[^,/]*$"}
tags_body = {"type": "object", "required": ["tags"], "additionalProperties": False,
             "properties": {"tags": {"type": "array", "items": _tag,
                                     "maxItems": MAX_TAGS}}}


def _since_226(req: Request) -> None:
    if not at_least(req, "2.26"):
        raise NotFound("The resource could not be found.")


def _ctx(req: Request, rule: str) -> RequestContext:
    _since_226(req)
    return policy.authorize(ctx_of(req), f"os_compute_api:os-server-tags:{rule}")


def _tags(req: Request, s: Session, rule: str) -> list[str]:
    return server_metadata.tags(s, _ctx(req, rule), req.path_params["server_id"])


def _change(req: Request, s: Session, rule: str, verb: str,
            mutate: Callable[[list[str]], list[str]]) -> list[str]:
    return server_metadata.change_tags(s, _ctx(req, rule), req.path_params["server_id"],
                                       verb, mutate)


@router.get("/v2.1/servers/{server_id}/tags", tx=True)
def list_tags(req: Request, s: Session) -> Response:
    return json_response({"tags": _tags(req, s, "index")})


@router.put("/v2.1/servers/{server_id}/tags", tx=True)
def replace_tags(req: Request, s: Session) -> Response:
    _since_226(req)
    body = validate(tags_body, req.json())
    wanted = list(dict.fromkeys(body["tags"]))  # duplicates collapse, order kept
    return json_response({"tags": _change(req, s, "update_all", "update tags",
                                          lambda old: wanted)})


@router.delete("/v2.1/servers/{server_id}/tags", tx=True)
def delete_tags(req: Request, s: Session) -> Response:
    _change(req, s, "delete_all", "delete tags", lambda old: [])
    return empty(204)


@router.get("/v2.1/servers/{server_id}/tags/{tag}", tx=True)
def check_tag(req: Request, s: Session) -> Response:
    tag = req.path_params["tag"]
    if tag not in _tags(req, s, "show"):
        raise NotFound(f"Server {req.path_params['server_id']} has no tag '{tag}'")
    return empty(204)


@router.put("/v2.1/servers/{server_id}/tags/{tag}", tx=True)
def add_tag(req: Request, s: Session) -> Response:
    tag = req.path_params["tag"]
    _since_226(req)
    if not tag or len(tag) > MAX_TAG_LENGTH or "," in tag or "/" in tag:
        raise InvalidInput(f"Tag '{tag}' is invalid. It must be a non empty string without "
                           "characters '/' and ',' and at most 60 characters long.",
                           field="tag")
    existed = False

    def add(old: list[str]) -> list[str]:
        nonlocal existed
        if len(old) >= MAX_TAGS:
            raise InvalidInput(f"The number of tags exceeded the per-server limit {MAX_TAGS}",
                               field="tag")
        existed = tag in old
        return old if existed else [*old, tag]

    _change(req, s, "update", "update tag", add)
    if existed:
        return empty(204)
    server_id = req.path_params["server_id"]
    location = f"{req.base_url}/v2.1/servers/{server_id}/tags/{quote(tag, safe='')}"
    return empty(201, {"location": location})


@router.delete("/v2.1/servers/{server_id}/tags/{tag}", tx=True)
def delete_tag(req: Request, s: Session) -> Response:
    tag = req.path_params["tag"]

    def remove(old: list[str]) -> list[str]:
        if tag not in old:
            raise NotFound(f"Instance {req.path_params['server_id']} has no tag '{tag}'")
        return [t for t in old if t != tag]

    _change(req, s, "delete", "delete tag", remove)
    return empty(204)
