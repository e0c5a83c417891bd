"""POST /v2.1/servers/{id}/action: one handler per action name in the body.

Each handler is registered under the body key Nova uses ("os-stop", "reboot",
"resize", …) with the transaction it needs: most actions write (the state
change and the hand-over to the conductor, compute/actions.py and
compute/moves.py), a few only read. The route asks the same transaction
helper as every other route (gureum/api/transaction.py) for the kind the
action names. A handler parses the body (schemas, microversions), checks the
policy rule (compute/policy.py), calls the service and renders the answer; an
action that must wait on an agent (console output) reads in its transaction
and asks the agent after it, never holding the database while it waits.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gureum.agent import messages as msg
from gureum.agent.messages import ConsoleOutput
from gureum.api.microversion import at_least
from gureum.api.transaction import READ, WRITE, AfterTransaction, InTransaction
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.bus import BusError, RemoteError
from gureum.compute import actions, moves, policy, schemas
from gureum.compute.api import servers
from gureum.compute.api.common import call_agent, ctx_of, settings_of
from gureum.compute.api.params import reject_before
from gureum.db import Session
from gureum.errors import GureumError, InvalidInput, NotFound

router = Router()

ActionHandler = Callable[[Request, Session, Any], "Response | AfterTransaction"]


@dataclass(frozen=True)
class Action:
    handler: ActionHandler
    tx: str  # READ or WRITE


HANDLERS: dict[str, Action] = {}


def action(name: str, tx: str = WRITE) -> Callable[[ActionHandler], ActionHandler]:
    def deco(fn: ActionHandler) -> ActionHandler:
        HANDLERS[name] = Action(fn, tx)
        return fn
    return deco


def _named(req: Request) -> tuple[str, Any, Action]:
    body = req.json()
    if not isinstance(body, dict) or len(body) != 1:
        raise InvalidInput("The action body must be an object with exactly one action, "
                           'e.g. {"os-stop": null}.')
    name, value = next(iter(body.items()))
    found = HANDLERS.get(name)
    if found is None:
        raise InvalidInput(f"There is no such action: {name}", field=name)
    return name, value, found


def action_tx(req: Request) -> str:
    """The transaction the body's action needs (the route's tx option)."""
    return _named(req)[2].tx


@router.post("/v2.1/servers/{server_id}/action", tx=action_tx)
def server_action(req: Request, s: Session) -> Response | AfterTransaction:
    _, value, found = _named(req)
    return found.handler(req, s, value)


def _server_id(req: Request) -> str:
    return req.path_params["server_id"]


# -- actions the conductor runs as they are -----------------------------------------------

def simple(action_name: str, nova_action: str, rule: str) -> ActionHandler:
    def handler(req: Request, s: Session, body: Any) -> Response:
        ctx = policy.authorize(ctx_of(req), rule)
        actions.start(s, ctx, _server_id(req), action_name, nova_action)
        return empty(202)
    return handler


for _body_key, _action, _rule in (
    ("os-stop", "stop", "os_compute_api:servers:stop"),
    ("os-start", "start", "os_compute_api:servers:start"),
    ("pause", "pause", "os_compute_api:os-pause-server:pause"),
    ("unpause", "unpause", "os_compute_api:os-pause-server:unpause"),
    ("suspend", "suspend", "os_compute_api:os-suspend-server:suspend"),
    ("resume", "resume", "os_compute_api:os-suspend-server:resume"),
    ("unrescue", "unrescue", "os_compute_api:os-unrescue"),
):
    HANDLERS[_body_key] = Action(simple(_action, _action, _rule), WRITE)


_reboot = {"type": "object", "required": ["type"], "additionalProperties": False,
           "properties": {"type": {"type": "string",
                                   "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}}}


@action("reboot")
def reboot(req: Request, s: Session, body: Any) -> Response:
    body = validate(_reboot, body)
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:reboot")
    hard = body["type"].upper() == "HARD"
    actions.start(s, ctx, _server_id(req), "reboot_hard" if hard else "reboot", "reboot")
    return empty(202)


_rescue = {"type": ["object", "null"], "additionalProperties": False,
           "properties": {"adminPass": {"type": "string"},
                          "rescue_image_ref": {"type": "string"}}}


@action("rescue")
def rescue(req: Request, s: Session, body: Any) -> Response:
    body = validate(_rescue, body) or {}
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-rescue")
    password = body.get("adminPass") or secrets.token_urlsafe(9)
    if actions.volume_backed(actions.changeable(s, ctx, _server_id(req))):
        # Nova's answer without stable rescue: the rescue disk would replace a root disk
        # this server does not have on its host.
        raise InvalidInput("Cannot rescue a volume-backed instance")
    actions.start(s, ctx, _server_id(req), "rescue", "rescue",
                  {"image_ref": body.get("rescue_image_ref")})
    return json_response({"adminPass": password})


_change_password = {"type": "object", "required": ["adminPass"], "additionalProperties": False,
                    "properties": {"adminPass": {"type": "string"}}}


@action("changePassword")
def change_password(req: Request, s: Session, body: Any) -> AfterTransaction:
    """As Nova's, a call the request waits for: 501 when the host's driver cannot set
    passwords (nothing changes), 409 when setting it failed."""
    body = validate(_change_password, body)
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-admin-password")
    instance_id, host = actions.start_password_change(s, ctx, _server_id(req))

    def ask_agent() -> InTransaction:
        error = None
        try:
            if not host:
                raise BusError(f"Instance {instance_id} has no host.")
            call_agent(req, host, msg.SetAdminPassword(instance_id, body["adminPass"]))
        except BusError as exc:
            error = exc.remote_message if isinstance(exc, RemoteError) else exc.message

        def record(s2: Session) -> Response | GureumError:
            failed = actions.finish_password_change(s2, ctx, instance_id, host, error)
            return failed or empty(202)
        return InTransaction(record)

    return AfterTransaction(ask_agent)


@action("trigger_crash_dump")
def trigger_crash_dump(req: Request, s: Session, body: Any) -> Response:
    if not at_least(req, "2.17"):
        raise NotFound("The resource could not be found.")
    if body is not None:
        raise InvalidInput("trigger_crash_dump takes no arguments (null).")
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:trigger_crash_dump")
    actions.start(s, ctx, _server_id(req), "trigger_crash_dump", "trigger_crash_dump")
    return empty(202)


# -- actions that end here -------------------------------------------------------------

_lock = {"type": ["object", "null"], "additionalProperties": False,
         "properties": {"locked_reason": {"type": "string", "maxLength": 255}}}


@action("lock")
def lock(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-lock-server:lock")
    body = validate(_lock, body) or {}
    if body.get("locked_reason") and not at_least(req, "2.73"):
        raise InvalidInput("locked_reason needs microversion 2.73.", field="lock")
    actions.lock(s, ctx, _server_id(req), body.get("locked_reason"))
    return empty(202)


@action("unlock")
def unlock(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-lock-server:unlock")
    actions.unlock(s, ctx, _server_id(req))
    return empty(202)


_reset_state = {"type": "object", "required": ["state"], "additionalProperties": False,
                "properties": {"state": {"type": "string", "enum": ["active", "error"]}}}


@action("os-resetState")
def reset_state(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-admin-actions:reset_state")
    body = validate(_reset_state, body)
    actions.reset_state(s, ctx, _server_id(req), body["state"])
    return empty(202)


_console = {"type": ["object", "null"], "additionalProperties": False,
            "properties": {"length": {"type": ["integer", "string", "null"],
                                      "pattern": "^-?[0-9]+$"}}}


@action("os-getConsoleOutput", tx=READ)
def console_output(req: Request, s: Session, body: Any) -> AfterTransaction:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-console-output")
    body = validate(_console, body) or {}
    length = body.get("length")
    tail = int(length) if length not in (None, "") else None
    if tail is not None and tail < -1:
        raise InvalidInput("length must be -1 or a positive number.", field="length")
    host, instance_id = actions.console_target(s, ctx, _server_id(req))

    def ask_agent() -> Response:
        try:
            output = call_agent(req, host, ConsoleOutput(instance_id,
                                                         tail if tail and tail > 0 else None))
        except RemoteError as exc:
            if exc.kind != "GuestNotFound":
                raise
            # Nova's answer when the hypervisor has no such guest (the agent has reported
            # it to the conductor, which records NOSTATE and a fault).
            raise NotFound(f"Instance {instance_id} could not be found.",
                           kind="instance") from None
        return json_response({"output": output})

    return AfterTransaction(ask_agent)


@action("forceDelete")
def force_delete(req: Request, s: Session, body: Any) -> Response:
    servers.delete(req, s, "forceDelete", "os_compute_api:os-deferred-delete:force")
    return empty(202)


# -- resize and cold migration ------------------------------------------------------------

_resize = {"type": "object", "required": ["flavorRef"], "additionalProperties": False,
           "properties": {"flavorRef": {"type": ["string", "integer"], "minLength": 1},
                          "OS-DCF:diskConfig": {"type": "string",
                                                "enum": ["AUTO", "MANUAL"]}}}
_migrate = {"type": ["object", "null"], "additionalProperties": False,
            "properties": {"host": {"type": ["string", "null"], "minLength": 1,
                                    "maxLength": 255}}}


@action("resize")
def resize(req: Request, s: Session, body: Any) -> Response:
    body = validate(_resize, body)
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:resize")
    moves.resize(s, ctx, _server_id(req), str(body["flavorRef"]))
    return empty(202)


@action("migrate")
def migrate(req: Request, s: Session, body: Any) -> Response:
    body = validate(_migrate, body) or {}
    host = body.get("host")
    if host and not at_least(req, "2.56"):
        raise InvalidInput("Additional properties are not allowed ('host' was unexpected)",
                           field="migrate.host")
    # A project manager may migrate its servers; naming the host is the admin's.
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-migrate-server:migrate")
    if host:
        policy.authorize(ctx, "os_compute_api:os-migrate-server:migrate:host")
    moves.migrate(s, ctx, _server_id(req), host)
    return empty(202)


@action("confirmResize")
def confirm_resize(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:confirm_resize")
    moves.finish_resize(s, ctx, _server_id(req), confirm=True)
    return empty(204)


@action("revertResize")
def revert_resize(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:revert_resize")
    moves.finish_resize(s, ctx, _server_id(req), confirm=False)
    return empty(202)


# -- live migration and evacuation ---------------------------------------------------------

_live = {"type": "object", "additionalProperties": False,
         "properties": {"host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                        "block_migration": {"type": ["boolean", "string"],
                                            "enum": [*schemas.boolean["enum"], "auto"]},
                        "disk_over_commit": schemas.boolean,
                        "force": schemas.boolean}}


@action("os-migrateLive")
def live_migrate(req: Request, s: Session, body: Any) -> Response:
    body = validate(_live, body)
    if "block_migration" not in body:
        raise InvalidInput("'block_migration' is a required property",
                           field="os-migrateLive.block_migration")
    block = body["block_migration"]
    if block == "auto" and not at_least(req, "2.25"):
        raise InvalidInput("block_migration 'auto' needs microversion 2.25.",
                           field="os-migrateLive.block_migration")
    host = body.get("host")
    ctx = ctx_of(req)
    if host is not None:
        policy.authorize(ctx, "os_compute_api:os-migrate-server:migrate_live:host")
    policy.authorize(ctx, "os_compute_api:os-migrate-server:migrate_live")
    moves.live_migrate(s, ctx, _server_id(req), host,
                       "auto" if block == "auto" else schemas.to_bool(block))
    return empty(202)


_evacuate = {"type": ["object", "null"], "additionalProperties": False,
             "properties": {"host": {"type": ["string", "null"], "minLength": 1,
                                     "maxLength": 255},
                            "adminPass": {"type": "string"},
                            "onSharedStorage": {"type": ["boolean", "string"]},
                            "force": {"type": ["boolean", "string"]},
                            "targetState": {"type": "string", "enum": ["stopped"]}}}


@action("evacuate")
def evacuate(req: Request, s: Session, body: Any) -> Response:
    body = validate(_evacuate, body) or {}
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-evacuate")
    password = body.get("adminPass") or secrets.token_urlsafe(9)
    moves.evacuate(s, ctx, _server_id(req), body.get("host"),
                   keep_stopped=at_least(req, "2.95"), settings=settings_of(req))
    if at_least(req, "2.14"):
        return json_response(None)
    return json_response({"adminPass": password})


# -- snapshot, shelve, unshelve, rebuild -------------------------------------------------------

def _image_created(req: Request, image_id: str) -> Response:
    if at_least(req, "2.45"):
        return json_response({"image_id": image_id}, 202)
    return empty(202, {"location": f"{req.host_url}/image/v2/images/{image_id}"})


@action("createImage")
def create_image(req: Request, s: Session, body: Any) -> Response:
    body = validate(schemas.create_image, body)
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:create_image")
    image_id = actions.snapshot(s, ctx, _server_id(req), body["name"],
                                body.get("metadata") or {})
    return _image_created(req, image_id)


@action("createBackup")
def create_backup(req: Request, s: Session, body: Any) -> Response:
    body = validate(schemas.create_backup, body)
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-create-backup")
    image_id = actions.backup(s, ctx, _server_id(req), body["name"],
                              body.get("metadata") or {}, body["backup_type"],
                              int(body["rotation"]))
    return _image_created(req, image_id)


@action("shelve")
def shelve(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-shelve:shelve")
    actions.shelve(s, ctx, _server_id(req))
    return empty(202)


@action("shelveOffload", tx=READ)
def shelve_offload(req: Request, s: Session, body: Any) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:os-shelve:shelve_offload")
    actions.check_shelve_offload(s, ctx, _server_id(req))
    return empty(202)


_unshelve = {"type": ["object", "null"], "additionalProperties": False,
             "properties": {"availability_zone": {"oneOf": [schemas.name, {"type": "null"}]},
                            "host": {"type": "string", "minLength": 1, "maxLength": 255}}}


@action("unshelve")
def unshelve(req: Request, s: Session, body: Any) -> Response:
    body = validate(_unshelve, body) or {}
    ctx = ctx_of(req)
    if body and not at_least(req, "2.77"):
        raise InvalidInput("Unshelve takes no arguments before microversion 2.77.",
                           field="unshelve")
    if "host" in body:
        if not at_least(req, "2.91"):
            raise InvalidInput("Additional properties are not allowed ('host' was "
                               "unexpected)", field="unshelve.host")
        policy.authorize(ctx, "os_compute_api:os-shelve:unshelve_to_host")
    policy.authorize(ctx, "os_compute_api:os-shelve:unshelve")
    actions.unshelve(s, ctx, _server_id(req), body.get("availability_zone"),
                     body.get("host"), settings_of(req))
    return empty(202)


# Rebuild body keys → the instance attributes they set.
_REBUILD_FIELDS = (("name", "name"), ("metadata", "metadata_"), ("description", "description"),
                   ("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6"),
                   ("hostname", "hostname"))


@action("rebuild")
def rebuild(req: Request, s: Session, body: Any) -> Response:
    from gureum.compute.servers import decode_user_data

    body = validate(schemas.server_rebuild_for(req.version), body)
    reject_before(req, body, schemas.REBUILD_SINCE, "rebuild")
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:rebuild")
    changes = {attr: body[key] for key, attr in _REBUILD_FIELDS if key in body}
    if "user_data" in body:
        changes["user_data"] = decode_user_data(body["user_data"])
    inst = actions.rebuild(s, ctx, _server_id(req),
                           actions.Rebuild(body["imageRef"], changes), settings_of(req))
    view = servers.show_view(req, s, inst, ctx)
    view["adminPass"] = body.get("adminPass") or secrets.token_urlsafe(9)
    return json_response({"server": view}, 202)
