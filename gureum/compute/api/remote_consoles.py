"""Remote consoles: a URL that opens a server's screen in the browser.

``POST /servers/{id}/remote-consoles`` (2.6+) and the older server actions
(os-getVNCConsole and its siblings, 2.1 to 2.5) ask the server's host agent where
the guest's VNC websocket listens, after the read transaction, then record a
console token in a new one and answer the noVNC URL (compute/consoles.py for
the rules, gureum/console/ for tokens and the proxy). ``GET
/os-console-auth-tokens/{token}`` (admin, 2.31+) shows what a token opens.
"""

from __future__ import annotations

import copy
from typing import Any

from gureum.agent.messages import GetVncConsole
from gureum.api.microversion import at_least
from gureum.api.transaction import READ, AfterTransaction, InTransaction
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, json_response
from gureum.bus import RemoteError
from gureum.compute import consoles, policy
from gureum.compute.api.actions import action
from gureum.compute.api.common import call_agent, ctx_of, settings_of
from gureum.compute.api.params import reject_unknown
from gureum.db import Session
from gureum.errors import GureumError, InvalidInput, NotFound, NotImplementedYet

router = Router()

RULE = "os_compute_api:os-remote-consoles"

_create_v26: dict[str, Any] = {
    "type": "object", "required": ["remote_console"], "additionalProperties": False,
    "properties": {"remote_console": {
        "type": "object", "required": ["protocol", "type"], "additionalProperties": False,
        "properties": {
            "protocol": {"type": "string", "enum": ["vnc", "spice", "serial", "rdp"]},
            "type": {"type": "string", "enum": ["novnc", "xvpvnc", "spice-html5", "serial",
                                                "rdp-html5"]}}}}}
_create_v28 = copy.deepcopy(_create_v26)
_create_v28["properties"]["remote_console"]["properties"]["protocol"]["enum"].append("mks")
_create_v28["properties"]["remote_console"]["properties"]["type"]["enum"].append("webmks")
_create_v299 = copy.deepcopy(_create_v28)
_create_v299["properties"]["remote_console"]["properties"]["type"]["enum"].append(
    "spice-direct")

def _console(req: Request, s: Session, server_id: str, protocol: str, console_type: str,
             render: Any) -> AfterTransaction:
    ctx = policy.authorize(ctx_of(req), RULE)
    settings = settings_of(req)
    target = consoles.target(s, ctx, server_id, protocol, console_type, settings)

    def ask_agent() -> InTransaction:
        try:
            console = call_agent(req, target.host, GetVncConsole(target.instance_id))
        except RemoteError as exc:
            raise _agent_error(exc, target.instance_id) from None

        def record(s2: Session) -> Response | GureumError:
            return json_response(render(consoles.record_vnc(s2, target, console, settings)))
        return InTransaction(record)

    return AfterTransaction(ask_agent)


def _agent_error(exc: RemoteError, instance_id: str) -> GureumError:
    """The agent's refusal as Nova answers it."""
    if exc.kind == "GuestNotFound":
        return NotFound(f"Instance {instance_id} could not be found.", kind="instance")
    if exc.kind == "ConsoleUnavailable":
        return consoles.not_ready(instance_id)
    if exc.kind == "NotSupported":
        return NotImplementedYet("The requested functionality is not supported.")
    return exc


@router.post("/v2.1/servers/{server_id}/remote-consoles", tx=READ)
def create(req: Request, s: Session) -> AfterTransaction:
    if not at_least(req, "2.6"):
        raise NotFound("The resource could not be found.")
    schema = (_create_v299 if at_least(req, "2.99") else
              _create_v28 if at_least(req, "2.8") else _create_v26)
    body = validate(schema, req.json())["remote_console"]
    protocol, console_type = body["protocol"], body["type"]
    if protocol == "rdp":  # removed with Nova's Hyper-V driver
        raise InvalidInput(f"Unavailable console type {protocol}.")
    return _console(req, s, req.path_params["server_id"], protocol, console_type,
                    lambda url: {"remote_console": {"protocol": protocol,
                                                    "type": console_type, "url": url}})


def _legacy(name: str, protocol: str, types: list[str]) -> None:
    schema = {"type": "object", "required": ["type"], "additionalProperties": False,
              "properties": {"type": {"type": "string", "enum": types}}}

    @action(name, tx=READ)
    def handler(req: Request, s: Session, body: Any) -> AfterTransaction:
        if at_least(req, "2.6"):
            raise NotFound("The resource could not be found.")
        console_type = validate(schema, body)["type"]
        return _console(req, s, req.path_params["server_id"], protocol, console_type,
                        lambda url: {"console": {"type": console_type, "url": url}})


_legacy("os-getVNCConsole", "vnc", ["novnc", "xvpvnc"])
_legacy("os-getSPICEConsole", "spice", ["spice-html5"])
_legacy("os-getSerialConsole", "serial", ["serial"])


@action("os-getRDPConsole", tx=READ)
def rdp_console(req: Request, s: Session, body: Any) -> Response:
    """Removed with Nova's Hyper-V driver (29.0.0): Nova answers a bare 400."""
    if at_least(req, "2.6"):
        raise NotFound("The resource could not be found.")
    raise InvalidInput("The server could not comply with the request since it is either "
                       "malformed or otherwise incorrect.")


@router.get("/v2.1/os-console-auth-tokens/{token}", tx=READ)
def show_token(req: Request, s: Session) -> Response:
    if not at_least(req, "2.31"):
        # Only RDP consoles were shown before 2.31, and RDP is gone.
        raise InvalidInput("The server could not comply with the request since it is "
                           "either malformed or otherwise incorrect.")
    reject_unknown(req, (), since="2.99")
    policy.authorize(ctx_of(req), "os_compute_api:os-console-auth-tokens")
    found = consoles.show_token(s, req.path_params["token"])
    # (2.99 adds tls_port, for SPICE direct consoles only.)
    return json_response({"console": {"instance_uuid": found.instance_id, "host": found.host,
                                      "port": found.port,
                                      "internal_access_path": found.path}})
