"""POST /v2.1/servers/{id}/action: one handler per action name in the body.

Each handler is registered under the body key Nova uses ("os-stop", "reboot",
"resize", …). The action table in compute/states.py decides whether the
action may start; handlers only parse the body and hand over to a workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gureum.api.web import Request, Response, Router
from gureum.compute.api import servers
from gureum.errors import InvalidInput

router = Router()

ActionHandler = Callable[[Request, Any], Response]
HANDLERS: dict[str, ActionHandler] = {}


def action(name: str) -> Callable[[ActionHandler], ActionHandler]:
    def deco(fn: ActionHandler) -> ActionHandler:
        HANDLERS[name] = fn
        return fn
    return deco


@action("forceDelete")
def force_delete(req: Request, body: Any) -> Response:
    return servers.force_delete(req)


@router.post("/v2.1/servers/{server_id}/action")
def server_action(req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict) or len(body) != 1:
        raise InvalidInput("The action body must be an object with exactly one action, "
                           'e.g. {"os-stop": null}.')
    name, value = next(iter(body.items()))
    handler = HANDLERS.get(name)
    if handler is None:
        raise InvalidInput(f"There is no such action: {name}", field=name)
    return handler(req, value)
