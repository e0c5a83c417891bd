"""/v2.1/servers/{id}/tags (2.26+): list, replace, check, add and remove tags.

A server has at most 50 tags, each 1 to 60 characters without '/' or ','. Tags
change in the vm_states where the action table lets metadata change, whatever
the task (as Nova allows); each change is a compare-and-swap on the server row.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import states
from gureum.compute.api.common import ctx_of, instance_for, require_writer
from gureum.compute.models import Instance
from gureum.db import compare_and_swap, utcnow
from gureum.errors import Conflict, InvalidInput, NotFound

router = Router()

MAX_TAGS = 50
MAX_TAG_LENGTH = 60
_tag = {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LENGTH, "pattern": "^[^,/]*$"}
tags_body = {"type": "object", "required": ["tags"], "additionalProperties": False,
             "properties": {"tags": {"type": "array", "items": _tag,
                                     "maxItems": MAX_TAGS}}}


def _since_226(req: Request) -> None:
    if not at_least(req, "2.26"):
        raise NotFound("The resource could not be found.")


def _instance(req: Request, s: Session) -> Instance:
    _since_226(req)
    return instance_for(s, ctx_of(req), req.path_params["server_id"])


def change_tags(req: Request, s: Session, verb: str,
                mutate: Callable[[list[str]], list[str]]) -> list[str]:
    ctx = ctx_of(req)
    _since_226(req)
    require_writer(ctx, f"os_compute_api:os-server-tags:{verb.replace(' ', '_')}")
    allowed = states.ACTIONS["update_metadata"].vm_states or frozenset()
    for _ in range(5):
        inst = instance_for(s, ctx, req.path_params["server_id"])
        if inst.vm_state not in allowed:
            raise Conflict(f"Cannot '{verb}' instance {inst.id} while it is in vm_state "
                           f"{inst.vm_state}")
        new = mutate(list(inst.tags or []))
        expected = {"deleted": False, "updated_at": inst.updated_at}
        if compare_and_swap(s, Instance, inst.id, expected,
                            {"tags": new, "updated_at": utcnow()}):
            s.expire_all()
            return new
        s.expire_all()
    raise Conflict(f"Instance {req.path_params['server_id']} is being changed by other "
                   "requests; try again.")


@router.get("/v2.1/servers/{server_id}/tags", tx=True)
def list_tags(req: Request, s: Session) -> Response:
    return json_response({"tags": list(_instance(req, s).tags or [])})


@router.put("/v2.1/servers/{server_id}/tags", tx=True)
def replace_tags(req: Request, s: Session) -> Response:
    _since_226(req)
    body = validate(tags_body, req.json())
    wanted = list(dict.fromkeys(body["tags"]))  # duplicates collapse, order kept
    return json_response({"tags": change_tags(req, s, "update tags", lambda old: wanted)})


@router.delete("/v2.1/servers/{server_id}/tags", tx=True)
def delete_tags(req: Request, s: Session) -> Response:
    change_tags(req, s, "delete tags", lambda old: [])
    return empty(204)


@router.get("/v2.1/servers/{server_id}/tags/{tag}", tx=True)
def check_tag(req: Request, s: Session) -> Response:
    inst = _instance(req, s)
    tag = req.path_params["tag"]
    if tag not in (inst.tags or []):
        raise NotFound(f"Server {inst.id} has no tag '{tag}'")
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

    change_tags(req, s, "update tag", add)
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

    change_tags(req, s, "delete tag", remove)
    return empty(204)
