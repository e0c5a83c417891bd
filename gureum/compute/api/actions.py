"""POST /v2.1/servers/{id}/action: one handler per action name in the body.

Each handler is registered under the body key Nova uses ("os-stop", "reboot",
"resize", …). The action table in compute/states.py decides whether the
action may start; handlers only parse the body and hand over to a workflow.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from gureum import outbox
from gureum.agent.messages import ConsoleOutput
from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.bus import RemoteError
from gureum.compute import instances, schemas, states
from gureum.compute.api import servers
from gureum.compute.api.common import (
    call_agent,
    check_not_locked,
    ctx_of,
    instance_for,
    require_admin,
    require_manager,
    require_writer,
    settings_of,
)
from gureum.compute.api.params import reject_before
from gureum.compute.quotas import check_metadata_items
from gureum.compute.servers import known_zones
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound

router = Router()

ActionHandler = Callable[[Request, Any], Response]
HANDLERS: dict[str, ActionHandler] = {}


def action(name: str) -> Callable[[ActionHandler], ActionHandler]:
    def deco(fn: ActionHandler) -> ActionHandler:
        HANDLERS[name] = fn
        return fn
    return deco


def start(req: Request, action: str, nova_action: str, params: dict[str, Any] | None = None,
          admin_only: bool = False) -> str:
    """Check the action table, move to its task_state (compare-and-swap), record the
    instance action, and hand the rest to the conductor. Returns the instance id."""
    ctx = ctx_of(req)
    rule = f"os_compute_api:servers:{nova_action}"
    if admin_only:
        require_admin(ctx, rule)
    require_writer(ctx, rule)
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        instances.start_task(s, inst, action)
        instances.start_action(s, inst.id, nova_action, ctx.request_id, ctx.user_id,
                               ctx.project_id)
        instance_id = inst.id
        outbox.add(s, "run_action", {"instance_id": instance_id, "action": action,
                                     "request_id": ctx.request_id,
                                     "params": params or {}})
    return instance_id


def simple(action: str, nova_action: str | None = None) -> ActionHandler:
    def handler(req: Request, body: Any) -> Response:
        start(req, action, nova_action or action)
        return empty(202)
    return handler


for _body_key, _action, _nova in (
    ("os-stop", "stop", "stop"), ("os-start", "start", "start"),
    ("pause", "pause", "pause"), ("unpause", "unpause", "unpause"),
    ("suspend", "suspend", "suspend"), ("resume", "resume", "resume"),
    ("unrescue", "unrescue", "unrescue"),
):
    HANDLERS[_body_key] = simple(_action, _nova)


_reboot = {"type": "object", "required": ["type"], "additionalProperties": False,
           "properties": {"type": {"type": "string",
                                   "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}}}


@action("reboot")
def reboot(req: Request, body: Any) -> Response:
    body = validate(_reboot, body)
    hard = body["type"].upper() == "HARD"
    start(req, "reboot_hard" if hard else "reboot", "reboot")
    return empty(202)


_rescue = {"type": ["object", "null"], "additionalProperties": False,
           "properties": {"adminPass": {"type": "string"},
                          "rescue_image_ref": {"type": "string"}}}


@action("rescue")
def rescue(req: Request, body: Any) -> Response:
    body = validate(_rescue, body) or {}
    password = body.get("adminPass") or secrets.token_urlsafe(9)
    start(req, "rescue", "rescue", {"image_ref": body.get("rescue_image_ref")})
    return json_response({"adminPass": password})


_change_password = {"type": "object", "required": ["adminPass"], "additionalProperties": False,
                    "properties": {"adminPass": {"type": "string"}}}


@action("changePassword")
def change_password(req: Request, body: Any) -> Response:
    validate(_change_password, body)
    start(req, "changePassword", "changePassword")
    return empty(202)


@action("trigger_crash_dump")
def trigger_crash_dump(req: Request, body: Any) -> Response:
    if not at_least(req, "2.17"):
        raise NotFound("The resource could not be found.")
    if body is not None:
        raise InvalidInput("trigger_crash_dump takes no arguments (null).")
    start(req, "trigger_crash_dump", "trigger_crash_dump")
    return empty(202)


_lock = {"type": ["object", "null"], "additionalProperties": False,
         "properties": {"locked_reason": {"type": "string", "maxLength": 255}}}


@action("lock")
def lock(req: Request, body: Any) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:os-lock-server:lock")
    body = validate(_lock, body) or {}
    if body.get("locked_reason") and not at_least(req, "2.73"):
        raise InvalidInput("locked_reason needs microversion 2.73.", field="lock")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        instances.start_action(s, inst.id, "lock", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        instances.update(s, inst.id, {"locked": True,
                                    "locked_by": "admin" if ctx.is_admin and
                                    inst.project_id != ctx.project_id else "owner",
                                    "locked_reason": body.get("locked_reason")})
        instances.finish_action(s, inst.id, ctx.request_id)
    return empty(202)


@action("unlock")
def unlock(req: Request, body: Any) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:os-lock-server:unlock")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        if inst.locked and inst.locked_by == "admin" and not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                            "unlock_override to be performed.")
        instances.start_action(s, inst.id, "unlock", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        instances.update(s, inst.id, {"locked": False, "locked_by": None,
                                    "locked_reason": None})
        instances.finish_action(s, inst.id, ctx.request_id)
    return empty(202)


_reset_state = {"type": "object", "required": ["state"], "additionalProperties": False,
                "properties": {"state": {"type": "string", "enum": ["active", "error"]}}}


@action("os-resetState")
def reset_state(req: Request, body: Any) -> Response:
    """Admin: force vm_state to active or error and clear task_state (S2's recovery)."""
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-admin-actions:reset_state")
    body = validate(_reset_state, body)
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        instances.start_action(s, inst.id, "resetState", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        # A compare-and-swap too: the state the admin saw is the one replaced (409 if
        # it changed in between); a workflow holding the old task_state then stops.
        instances.save(s, inst.id, {"vm_state": body["state"], "task_state": None},
                       expected_task_state=inst.task_state, expected_vm_state=inst.vm_state)
        instances.finish_action(s, inst.id, ctx.request_id)
    return empty(202)


_console = {"type": ["object", "null"], "additionalProperties": False,
            "properties": {"length": {"type": ["integer", "string", "null"],
                                      "pattern": "^-?[0-9]+$"}}}


@action("os-getConsoleOutput")
def console_output(req: Request, body: Any) -> Response:
    ctx = ctx_of(req)
    # Nova's default is PROJECT_MEMBER_OR_ADMIN: the console may hold secrets.
    require_writer(ctx, "os_compute_api:os-console-output")
    body = validate(_console, body) or {}
    length = body.get("length")
    tail = int(length) if length not in (None, "") else None
    if tail is not None and tail < -1:
        raise InvalidInput("length must be -1 or a positive number.", field="length")
    with req.app_state.db.session(write=False) as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        if inst.vm_state not in (states.ACTIVE, states.RESCUED, states.PAUSED,
                                 states.STOPPED, states.SUSPENDED) or not inst.host:
            raise Conflict(f"Cannot 'os-getConsoleOutput' instance {inst.id} while it is in "
                           f"vm_state {inst.vm_state}")
        host, instance_id = inst.host, inst.id
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


# -- resize and cold migration ------------------------------------------------------------

_resize = {"type": "object", "required": ["flavorRef"], "additionalProperties": False,
           "properties": {"flavorRef": {"type": ["string", "integer"], "minLength": 1},
                          "OS-DCF:diskConfig": {"type": "string",
                                                "enum": ["AUTO", "MANUAL"]}}}
_migrate = {"type": ["object", "null"], "additionalProperties": False,
            "properties": {"host": {"type": ["string", "null"], "minLength": 1,
                                    "maxLength": 255}}}


def begin_move(req: Request, action: str, nova_action: str, migration_type: str,
               new_flavor: dict[str, Any] | None = None, host: str | None = None,
               admin_only: bool = False) -> None:
    from gureum.workflows.resize import start_migration

    ctx = ctx_of(req)
    rule = f"os_compute_api:servers:{nova_action}"
    if admin_only:
        require_admin(ctx, rule)
    require_writer(ctx, rule)
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        if host is not None:
            check_host(s, host, inst.host)
        instances.start_task(s, inst, action)
        instances.start_action(s, inst.id, nova_action, ctx.request_id, ctx.user_id,
                               ctx.project_id)
        mig = start_migration(s, inst, migration_type, new_flavor, host, ctx.user_id,
                              ctx.project_id or "")
        migration_id = mig.id
        outbox.add(s, "begin_workflow", {"migration_id": migration_id,
                                         "request_id": ctx.request_id})


def check_host(s: Any, host: str, source: str | None) -> None:
    from sqlalchemy import select

    from gureum.compute.models import ComputeNode

    if s.scalar(select(ComputeNode.id).where(ComputeNode.host == host).limit(1)) is None:
        raise InvalidInput(f"Compute host {host} could not be found.", field="host")
    if host == source:
        raise InvalidInput(f"The target host can't be the same one ({host}).", field="host")


@action("resize")
def resize(req: Request, body: Any) -> Response:
    from gureum.compute.servers import find_flavor, flavor_snapshot

    body = validate(_resize, body)
    ctx = ctx_of(req)
    with req.app_state.db.session(write=False) as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        flavor = find_flavor(s, ctx, str(body["flavorRef"]))
        current = inst.flavor or {}
        if flavor.id == inst.flavor_id:
            raise InvalidInput("When resizing, instances must change flavor!",
                               field="flavorRef")
        if flavor.disk and flavor.disk < int(current.get("disk", 0)):
            raise InvalidInput("Resize to a smaller disk is not allowed: the root disk "
                               f"would shrink from {current.get('disk')} GB to "
                               f"{flavor.disk} GB.", field="flavorRef")
        new_flavor = flavor_snapshot(flavor)
    begin_move(req, "resize", "resize", "resize", new_flavor=new_flavor)
    return empty(202)


@action("migrate")
def migrate(req: Request, body: Any) -> Response:
    body = validate(_migrate, body) or {}
    host = body.get("host")
    if host and not at_least(req, "2.56"):
        raise InvalidInput("Additional properties are not allowed ('host' was unexpected)",
                           field="migrate.host")
    # A project manager may migrate its servers; naming the host is the admin's.
    require_manager(ctx_of(req), "os_compute_api:os-migrate-server:migrate")
    begin_move(req, "migrate", "migrate", "migration", host=host, admin_only=bool(host))
    return empty(202)


def _finish_resize(req: Request, confirm: bool) -> None:
    ctx = ctx_of(req)
    action = "confirmResize" if confirm else "revertResize"
    require_writer(ctx, f"os_compute_api:servers:{action}")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        instances.start_task(s, inst, action)
        instances.start_action(s, inst.id, action, ctx.request_id, ctx.user_id,
                               ctx.project_id)
        instance_id = inst.id
        outbox.add(s, "finish_resize", {"instance_id": instance_id,
                                        "request_id": ctx.request_id, "confirm": confirm})


@action("confirmResize")
def confirm_resize(req: Request, body: Any) -> Response:
    _finish_resize(req, True)
    return empty(204)


@action("revertResize")
def revert_resize(req: Request, body: Any) -> Response:
    _finish_resize(req, False)
    return empty(202)


# -- live migration and evacuation ---------------------------------------------------------

_live = {"type": "object", "additionalProperties": False,
         "properties": {"host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                        "block_migration": {"type": ["boolean", "string"],
                                            "enum": [*schemas.boolean["enum"], "auto"]},
                        "disk_over_commit": schemas.boolean,
                        "force": schemas.boolean}}


def _block(value: Any) -> Any:
    return "auto" if value == "auto" else schemas.to_bool(value)


@action("os-migrateLive")
def live_migrate(req: Request, body: Any) -> Response:
    body = validate(_live, body)
    if "block_migration" not in body:
        raise InvalidInput("'block_migration' is a required property",
                           field="os-migrateLive.block_migration")
    if body["block_migration"] == "auto" and not at_least(req, "2.25"):
        raise InvalidInput("block_migration 'auto' needs microversion 2.25.",
                           field="os-migrateLive.block_migration")
    host = body.get("host")
    begin_live(req, host, _block(body["block_migration"]))
    return empty(202)


def begin_live(req: Request, host: str | None, block: Any) -> None:
    from gureum.workflows.resize import start_migration

    ctx = ctx_of(req)
    if host is not None:
        require_admin(ctx, "os_compute_api:os-migrate-server:migrate_live:host")
    require_manager(ctx, "os_compute_api:os-migrate-server:migrate_live")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        if host is not None:
            check_host(s, host, inst.host)
        instances.start_task(s, inst, "os-migrateLive")
        instances.start_action(s, inst.id, "live-migration", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        mig = start_migration(s, inst, "live-migration", None, host, ctx.user_id,
                              ctx.project_id or "")
        mig.status = "queued"
        mig.state = {**(mig.state or {}), "block_migration": block}
        migration_id = mig.id
        outbox.add(s, "begin_workflow", {"migration_id": migration_id,
                                         "request_id": ctx.request_id})


_evacuate = {"type": ["object", "null"], "additionalProperties": False,
             "properties": {"host": {"type": ["string", "null"], "minLength": 1,
                                     "maxLength": 255},
                            "adminPass": {"type": "string"},
                            "onSharedStorage": {"type": ["boolean", "string"]},
                            "force": {"type": ["boolean", "string"]},
                            "targetState": {"type": "string", "enum": ["stopped"]}}}


@action("evacuate")
def evacuate(req: Request, body: Any) -> Response:
    from sqlalchemy import select

    from gureum.compute.api.common import settings_of
    from gureum.compute.models import ComputeService
    from gureum.scheduler.select import COMPUTE_BINARY, service_is_up
    from gureum.workflows.resize import start_migration

    body = validate(_evacuate, body) or {}
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-evacuate")
    host = body.get("host")
    password = body.get("adminPass") or secrets.token_urlsafe(9)
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        if host is not None:
            check_host(s, host, inst.host)
        svc = s.scalar(select(ComputeService).where(
            ComputeService.host == inst.host, ComputeService.binary == COMPUTE_BINARY))
        if svc is not None and service_is_up(svc, settings_of(req).compute.service_down_time):
            raise Conflict(f"Compute service of {inst.host} is still in use.")
        instances.start_task(s, inst, "evacuate")
        instances.start_action(s, inst.id, "evacuate", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        mig = start_migration(s, inst, "evacuation", None, host, ctx.user_id,
                              ctx.project_id or "")
        mig.status = "accepted"
        mig.state = {**(mig.state or {}), "keep_stopped": at_least(req, "2.95")}
        migration_id = mig.id
        outbox.add(s, "begin_workflow", {"migration_id": migration_id,
                                         "request_id": ctx.request_id})
    if at_least(req, "2.14"):
        return json_response(None)
    return json_response({"adminPass": password})


# -- snapshot, shelve, unshelve, rebuild -------------------------------------------------------

def _snapshot_record(req: Request, s: Any, inst: Any, name: str,
                     metadata: dict[str, str]) -> str:
    from gureum.image.service import create_image

    ctx = ctx_of(req)
    props = {k: v for k, v in metadata.items() if k not in ("id", "name", "status")}
    body = {"name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", **props, "instance_uuid": inst.id,
            "image_type": "backup" if "backup_type" in props else "snapshot",
            "base_image_ref": inst.image_ref or "",
            "owner_user_name": ctx.user_name or ""}
    image = create_image(s, ctx, body)
    s.flush()
    return str(image.id)


@action("createImage")
def create_image_action(req: Request, body: Any) -> Response:
    body = validate(schemas.create_image, body)
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:servers:create_image")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        instances.start_task(s, inst, "createImage")
        instances.start_action(s, inst.id, "createImage", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        image_id = _snapshot_record(req, s, inst, body["name"], body.get("metadata") or {})
        instance_id = inst.id
        outbox.add(s, "snapshot", {"instance_id": instance_id, "image_id": image_id,
                                   "request_id": ctx.request_id})
    location = f"{req.host_url}/image/v2/images/{image_id}"
    if at_least(req, "2.45"):
        return json_response({"image_id": image_id}, 202)
    return empty(202, {"location": location})


@action("createBackup")
def create_backup(req: Request, body: Any) -> Response:
    """A snapshot kept in a rotation: only the newest ``rotation`` backups of a type stay."""
    body = validate(schemas.create_backup, body)
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:os-create-backup")
    rotation = int(body["rotation"])
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        instances.start_task(s, inst, "createBackup")
        instances.start_action(s, inst.id, "createBackup", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        metadata = {**(body.get("metadata") or {}), "backup_type": body["backup_type"]}
        image_id = _snapshot_record(req, s, inst, body["name"], metadata)
        instance_id = inst.id
        outbox.add(s, "snapshot", {"instance_id": instance_id, "image_id": image_id,
                                   "request_id": ctx.request_id,
                                   "backup": {"type": body["backup_type"],
                                              "rotation": rotation}})
    if at_least(req, "2.45"):
        return json_response({"image_id": image_id}, 202)
    return empty(202, {"location": f"{req.host_url}/image/v2/images/{image_id}"})


@action("shelve")
def shelve(req: Request, body: Any) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:os-shelve:shelve")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        instances.start_task(s, inst, "shelve")
        instances.start_action(s, inst.id, "shelve", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        image_id = _snapshot_record(req, s, inst, f"{inst.name}-shelved", {})
        instance_id = inst.id
        outbox.add(s, "shelve", {"instance_id": instance_id, "image_id": image_id,
                                 "request_id": ctx.request_id})
    return empty(202)


@action("shelveOffload")
def shelve_offload(req: Request, body: Any) -> Response:
    # Shelving always offloads at once here (shelved_offload_time = 0), so a server is
    # never left in "shelved"; the table then answers 409 like Nova for other states.
    ctx = ctx_of(req)
    require_admin(ctx, "os_compute_api:os-shelve:shelve_offload")
    with req.app_state.db.session(write=False) as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        states.check("shelveOffload", inst.id, inst.vm_state, inst.task_state,
                     launched=inst.launched_at is not None)
    return empty(202)


_unshelve = {"type": ["object", "null"], "additionalProperties": False,
             "properties": {"availability_zone": {"oneOf": [schemas.name, {"type": "null"}]},
                            "host": {"type": "string", "minLength": 1, "maxLength": 255}}}


@action("unshelve")
def unshelve(req: Request, body: Any) -> Response:
    body = validate(_unshelve, body) or {}
    ctx = ctx_of(req)
    if body and not at_least(req, "2.77"):
        raise InvalidInput("Unshelve takes no arguments before microversion 2.77.",
                           field="unshelve")
    if "host" in body:
        if not at_least(req, "2.91"):
            raise InvalidInput("Additional properties are not allowed ('host' was "
                               "unexpected)", field="unshelve.host")
        require_admin(ctx, "os_compute_api:os-shelve:unshelve_to_host")
    require_writer(ctx, "os_compute_api:os-shelve:unshelve")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        if body.get("host"):
            check_host(s, body["host"], None)
        zone = body.get("availability_zone")
        if zone and zone not in known_zones(s, settings_of(req)):
            raise InvalidInput("The requested availability zone is not available",
                               field="unshelve.availability_zone")
        instances.start_task(s, inst, "unshelve")
        instances.start_action(s, inst.id, "unshelve", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        instance_id = inst.id
        outbox.add(s, "unshelve", {"instance_id": instance_id, "request_id": ctx.request_id,
                                   "availability_zone": body.get("availability_zone"),
                                   "host": body.get("host")})
    return empty(202)


@action("rebuild")
def rebuild(req: Request, body: Any) -> Response:
    from gureum.compute.api.servers import show_view
    from gureum.compute.servers import decode_user_data, find_image, image_properties

    body = validate(schemas.server_rebuild_for(req.version), body)
    reject_before(req, body, schemas.REBUILD_SINCE, "rebuild")
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:servers:rebuild")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        if body.get("metadata"):
            check_metadata_items(s, inst.project_id, settings_of(req), len(body["metadata"]))
        image = find_image(s, ctx, body["imageRef"])
        instances.start_task(s, inst, "rebuild")
        instances.start_action(s, inst.id, "rebuild", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        values: dict[str, Any] = {"image_ref": image.id}
        sysmeta = dict(inst.system_metadata or {})
        sysmeta["image_properties"] = image_properties(image)
        values["system_metadata"] = sysmeta
        for key, attr in (("name", "name"), ("metadata", "metadata_"),
                          ("description", "description"), ("accessIPv4", "access_ip_v4"),
                          ("accessIPv6", "access_ip_v6"), ("hostname", "hostname")):
            if key in body:
                values[attr] = body[key]
        if "user_data" in body:
            values["user_data"] = decode_user_data(body["user_data"])
        instances.update(s, inst.id, values)
        s.refresh(inst)
        view = show_view(req, s, inst, ctx)
        instance_id = inst.id
        outbox.add(s, "rebuild", {"instance_id": instance_id,
                                  "request_id": ctx.request_id})
    view["adminPass"] = body.get("adminPass") or secrets.token_urlsafe(9)
    return json_response({"server": view}, 202)
