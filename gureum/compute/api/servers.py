"""/v2.1/servers: create, list, detail, show, update, delete."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import Select, and_, or_, select, true
from sqlalchemy.orm import Session

from gureum import outbox
from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import instances, schemas, servers, states
from gureum.compute.api.common import (
    bool_arg,
    check_not_locked,
    ctx_of,
    instance_for,
    int_arg,
    require_reader,
    require_writer,
    settings_of,
)
from gureum.compute.api.params import MAX_LIMIT, page, reject_before, reject_unknown
from gureum.compute.models import ComputeService, Instance
from gureum.compute.views import servers as views
from gureum.compute.views.common import next_link
from gureum.context import RequestContext
from gureum.errors import Forbidden, InvalidInput
from gureum.paging import SortKey
from gureum.scheduler.select import COMPUTE_BINARY, service_is_up

router = Router()


# -- create ------------------------------------------------------------------------

def _create_request(req: Request, body: dict[str, Any]) -> servers.CreateRequest:
    server = body["server"]
    v = req.version
    reject_before(req, server, schemas.CREATE_SINCE, "server")
    if "personality" in server and at_least(req, "2.57"):
        raise InvalidInput("Invalid input for field/attribute server. Additional properties "
                           "are not allowed ('personality' was unexpected)",
                           field="server.personality")
    networks = server.get("networks")
    if isinstance(networks, str) and v < (2, 37):
        raise InvalidInput("Invalid input for field/attribute networks: 'auto' and 'none' "
                           "need microversion 2.37.", field="server.networks")
    if networks is None and v >= (2, 37):
        raise InvalidInput("Invalid input for field/attribute server. Value: … 'networks' "
                           "is a required property", field="server.networks")
    min_count = int(server.get("min_count") or 1)
    max_count = int(server.get("max_count") or min_count)
    if min_count < 1 or max_count < 1:
        raise InvalidInput("min_count and max_count must be at least 1.",
                           field="server.min_count")
    if min_count > max_count:
        raise InvalidInput("min_count must be <= max_count", field="server.min_count")
    if server.get("hostname") and max_count > 1:
        raise InvalidInput("Unable to allocate a single hostname to multiple instances",
                           field="server.hostname")
    hints = dict(body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints")
                 or {})
    if isinstance(hints.get("group"), list):
        hints["group"] = hints["group"][0] if hints["group"] else None
    groups = [g.get("name", "default") for g in server.get("security_groups") or []]
    return servers.CreateRequest(
        name=server["name"], flavor_ref=str(server["flavorRef"]),
        image_ref=server.get("imageRef") or "", networks=networks,
        key_name=server.get("key_name"), user_data=server.get("user_data"),
        metadata=dict(server.get("metadata") or {}),
        availability_zone=server.get("availability_zone"),
        min_count=min_count, max_count=max_count,
        security_groups=groups or ["default"],
        block_device_mapping=list(server.get("block_device_mapping_v2") or []),
        scheduler_hints={k: v for k, v in hints.items() if v is not None},
        description=server.get("description"), hostname=server.get("hostname"),
        tags=list(server.get("tags") or []),
        config_drive=schemas.to_bool(server.get("config_drive", False)),
        access_ip_v4=server.get("accessIPv4"), access_ip_v6=server.get("accessIPv6"),
        host=server.get("host"), hypervisor_hostname=server.get("hypervisor_hostname"),
        admin_pass=server.get("adminPass"))


@router.post("/v2.1/servers")
def create_server(req: Request) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:servers:create")
    body = validate(schemas.server_create_for(req.version), req.json())
    create = _create_request(req, body)
    with req.app_state.db.session() as s:
        made = servers.create(s, ctx, create, settings_of(req), ctx.request_id)
        ids = [i.id for i in made]
        first = made[0]
        reservation = first.reservation_id
        view = views.created(req, first, [{"name": n} for n in create.security_groups],
                             create.admin_pass or secrets.token_urlsafe(9))
        # Handed to the conductor once this transaction committed (gureum/outbox.py).
        outbox.add(s, "build_instances", {"instance_ids": ids, "request_id": ctx.request_id})
    if schemas.to_bool(body["server"].get("return_reservation_id", False)):
        return json_response({"reservation_id": reservation}, 202)
    return json_response({"server": view}, 202, {"location": view["links"][0]["href"]})


# -- list ----------------------------------------------------------------------------

SORT_KEYS = {"created_at": Instance.created_at, "display_name": Instance.name,
             "updated_at": Instance.updated_at, "uuid": Instance.id, "host": Instance.host,
             "node": Instance.node, "vm_state": Instance.vm_state,
             "task_state": Instance.task_state, "power_state": Instance.power_state,
             "launched_at": Instance.launched_at, "terminated_at": Instance.terminated_at,
             "launch_index": Instance.launch_index, "key_name": Instance.key_name,
             "project_id": Instance.project_id, "user_id": Instance.user_id,
             "availability_zone": Instance.availability_zone,
             "hostname": Instance.hostname, "display_description": Instance.description,
             "locked": Instance.locked}


def _parse_time(req: Request, name: str) -> dt.datetime | None:
    value = req.arg(name)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"Invalid input for query parameters {name}. Value: {value}. "
                           f"'{value}' is not a 'date-time'", field=name) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _status_condition(status: str) -> Any:
    conds: list[Any] = []
    for m in states.status_matches(status.upper()):
        parts: list[Any] = []
        if m.task_states:
            parts.append(Instance.task_state.in_(m.task_states))
        if m.default:
            own = states.own_status_tasks(m.vm_state)
            parts.append(or_(Instance.task_state.is_(None), Instance.task_state.not_in(own))
                         if own else true())
        conds.append(and_(Instance.vm_state == m.vm_state, or_(*parts)))
    if status.upper() == "DELETED":
        conds.append(Instance.deleted.is_(True))
    return or_(*conds) if conds else False


# GET /servers query parameters Nova's schema knows (others: ignored before 2.75, 400 after).
_LIST_QUERY = (
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
    "name", "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
    "changes-since", "ip", "ip6", "created_at", "limit", "marker")
_LIST_QUERY_SINCE = {"2.26": ("tags", "tags-any", "not-tags", "not-tags-any"),
                     "2.66": ("changes-before",), "2.73": ("locked",)}
# Joined tables and internal attributes: never a filter, at any microversion.
_NOT_FILTERS = ("block_device_mapping", "services", "metadata", "system_metadata",
                "info_cache", "security_groups", "pci_devices")


def check_list_query(req: Request) -> None:
    """Refuse what Nova's servers index refuses: internal fields, and from 2.75 unknowns."""
    for name in req.query:
        if name in _NOT_FILTERS or name.startswith("_"):
            raise InvalidInput(f"Invalid filter field: {name}.", field=name)
    allowed = list(_LIST_QUERY)
    for since, names in _LIST_QUERY_SINCE.items():
        if at_least(req, since):
            allowed.extend(names)
    reject_unknown(req, allowed)


def _query(req: Request, s: Session, ctx: RequestContext
           ) -> tuple[Select[Any], list[SortKey], Any]:
    """The filtered statement, its sort keys and a Python predicate for regex filters."""
    check_list_query(req)
    stmt = select(Instance)
    admin = ctx.is_admin
    all_tenants = bool_arg(req, "all_tenants") if "all_tenants" in req.query else False
    if all_tenants and not admin:
        raise Forbidden("Policy doesn't allow os_compute_api:servers:index:get_all_tenants "
                        "to be performed.")
    project = req.arg("project_id") or req.arg("tenant_id")
    if not admin:
        stmt = stmt.where(Instance.project_id == ctx.project_id)
    elif project:
        stmt = stmt.where(Instance.project_id == project)
    elif not all_tenants:
        stmt = stmt.where(Instance.project_id == ctx.project_id)
    changes_since = _parse_time(req, "changes-since")
    changes_before = _parse_time(req, "changes-before")
    if changes_since and changes_before and changes_since > changes_before:
        raise InvalidInput("The value of changes-since must be less than or equal to "
                           "changes-before.", field="changes-since")
    deleted = bool_arg(req, "deleted") if admin and "deleted" in req.query else None
    if deleted is not None:
        stmt = stmt.where(Instance.deleted.is_(deleted))
    elif changes_since is None and changes_before is None:
        stmt = stmt.where(Instance.deleted.is_(False))
    if changes_since is not None:
        stmt = stmt.where(Instance.updated_at >= changes_since)
    if changes_before is not None:
        stmt = stmt.where(Instance.updated_at <= changes_before)
    if req.arg("status"):
        stmt = stmt.where(_status_condition(req.arg("status") or ""))
    exact: dict[str, Any] = {"flavor": Instance.flavor_id, "image": Instance.image_ref,
             "reservation_id": Instance.reservation_id, "key_name": Instance.key_name,
             "user_id": Instance.user_id, "availability_zone": Instance.availability_zone,
             "vm_state": Instance.vm_state, "task_state": Instance.task_state}
    if admin or at_least(req, "2.83"):
        exact.update({"power_state": Instance.power_state})
    if admin:
        exact.update({"host": Instance.host, "node": Instance.node,
                      "launch_index": Instance.launch_index})
    for name, column in exact.items():
        value = req.arg(name)
        if value is not None:
            if name == "image":
                value = value.rstrip("/").rsplit("/", 1)[-1]
            stmt = stmt.where(column == value)
    locked = bool_arg(req, "locked") if at_least(req, "2.73") and "locked" in req.query \
        else None
    if locked is not None:
        stmt = stmt.where(Instance.locked.is_(locked))
    ip_ids = _ip_filter(req, s)
    if ip_ids is not None:
        stmt = stmt.where(Instance.id.in_(ip_ids))
    return stmt, _sort_keys(req), _python_filters(req)


def _ip_filter(req: Request, s: Session) -> list[str] | None:
    from gureum.network import service as netsvc

    ip = req.arg("ip") or req.arg("ip6")
    if not ip:
        return None
    return list(netsvc.instance_ids_with_ip(s, ip))


def _python_filters(req: Request) -> Any:
    checks = []
    for name, attr in (("name", "name"), ("description", "description"),
                       ("hostname", "hostname")):
        pattern = req.arg(name)
        if pattern:
            try:
                rx = re.compile(pattern)
            except re.error:
                raise InvalidInput(f"Invalid regular expression for {name}: {pattern!r}",
                                   field=name) from None
            checks.append((attr, rx))
    tag_all = [t for t in (req.arg("tags") or "").split(",") if t]
    tag_any = [t for t in (req.arg("tags-any") or "").split(",") if t]
    not_all = [t for t in (req.arg("not-tags") or "").split(",") if t]
    not_any = [t for t in (req.arg("not-tags-any") or "").split(",") if t]
    if not (checks or tag_all or tag_any or not_all or not_any):
        return None

    def keep(inst: Instance) -> bool:
        for attr, rx in checks:
            if not rx.search(getattr(inst, attr) or ""):
                return False
        tags = set(inst.tags or [])
        if tag_all and not set(tag_all) <= tags:
            return False
        if tag_any and not set(tag_any) & tags:
            return False
        if not_all and set(not_all) <= tags:
            return False
        return not (not_any and set(not_any) & tags)

    return keep


def _sort_keys(req: Request) -> list[SortKey]:
    keys = req.query.get("sort_key", [])
    dirs = req.query.get("sort_dir", [])
    out: list[SortKey] = []
    for i, key in enumerate(keys):
        column = SORT_KEYS.get(key)
        if column is None:
            raise InvalidInput(f"Invalid input for query parameters sort_key. Value: {key}.",
                               field="sort_key")
        direction = dirs[i] if i < len(dirs) else (dirs[0] if dirs else "desc")
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"Invalid input for query parameters sort_dir. Value: "
                               f"{direction}.", field="sort_dir")
        out.append(SortKey(column, direction == "asc"))
    if not out:
        out.append(SortKey(Instance.created_at, ascending=False))
    out.append(SortKey(Instance.seq, ascending=False))  # unique: the order is total
    return out


def _page(s: Session, ctx: RequestContext, stmt: Select[Any], keys: list[SortKey],
          keep: Any, limit: int | None, marker: str | None) -> list[Instance]:
    """Rows after the marker that pass the Python filters, at most ``limit``.

    The marker need not pass the filters (Nova finds it by id alone); paging goes
    on from its place in the sort order.
    """
    where = [Instance.id == marker]
    if not ctx.is_admin:
        where.append(Instance.project_id == ctx.project_id)
    return page(s, stmt, keys, limit, marker, *where, not_found="marker [{marker}] not found",
                keep=keep)


def host_statuses(s: Session, req: Request, hosts: set[str]) -> dict[str, str]:
    """2.16 host_status: UP, DOWN, MAINTENANCE (disabled) or UNKNOWN, per host."""
    if not hosts:
        return {}
    down_after = settings_of(req).compute.service_down_time
    out = {}
    for svc in s.scalars(select(ComputeService).where(ComputeService.host.in_(hosts),
                                                      ComputeService.binary == COMPUTE_BINARY)):
        if svc.forced_down:
            out[svc.host] = "DOWN"
        elif not service_is_up(svc, down_after):
            out[svc.host] = "UNKNOWN"
        else:
            out[svc.host] = "MAINTENANCE" if svc.disabled else "UP"
    return out


def _list(req: Request, s: Session, detail: bool) -> Response:
    ctx = ctx_of(req)
    require_reader(ctx, "os_compute_api:servers:" + ("detail" if detail else "index"))
    # Nova's [api] max_limit: no page is larger, whatever the client asks.
    limit = min(int_arg(req, "limit") or MAX_LIMIT, MAX_LIMIT)
    marker = req.arg("marker")
    stmt, keys, keep = _query(req, s, ctx)
    rows = _page(s, ctx, stmt, keys, keep, limit, marker)
    if detail:
        statuses = (host_statuses(s, req, {i.host for i in rows if i.host})
                    if ctx.is_admin and at_least(req, "2.16") else {})
        items = [views.show(req, i, ctx, for_list=True,
                            host_status=statuses.get(i.host or "", "") if ctx.is_admin
                            and at_least(req, "2.16") else None) for i in rows]
    else:
        items = [views.basic(req, i) for i in rows]
    body: dict[str, Any] = {"servers": items}
    links = next_link(req, "servers/detail" if detail else "servers", items, limit)
    if links:
        body["servers_links"] = links
    return json_response(body)


@router.get("/v2.1/servers", tx=True)
def list_servers(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/servers/detail", tx=True)
def list_servers_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


# -- show, update, delete ----------------------------------------------------------------

def show_view(req: Request, s: Session, inst: Instance, ctx: RequestContext
              ) -> dict[str, Any]:
    host_status = None
    if ctx.is_admin and at_least(req, "2.16"):
        host_status = host_statuses(s, req, {inst.host} if inst.host else set()).get(
            inst.host or "", "")
    return views.show(req, inst, ctx, host_status=host_status)


@router.get("/v2.1/servers/{server_id}", tx=True)
def show_server(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    inst = instance_for(s, ctx, req.path_params["server_id"])
    return json_response({"server": show_view(req, s, inst, ctx)})


@router.put("/v2.1/servers/{server_id}", tx=True)
def update_server(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:servers:update")
    body = validate(schemas.server_update_for(req.version), req.json())["server"]
    if "description" in body and not at_least(req, "2.19"):
        raise InvalidInput("Additional properties are not allowed ('description' was "
                           "unexpected)", field="server.description")
    if "hostname" in body and not at_least(req, "2.90"):
        raise InvalidInput("Additional properties are not allowed ('hostname' was "
                           "unexpected)", field="server.hostname")
    inst = instance_for(s, ctx, req.path_params["server_id"])
    check_not_locked(ctx, inst)
    values: dict[str, Any] = {}
    for key, attr in (("name", "name"), ("description", "description"),
                      ("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6"),
                      ("hostname", "hostname")):
        if key in body:
            values[attr] = body[key]
    if values:
        instances.update(s, inst.id, values)
        s.refresh(inst)
    return json_response({"server": show_view(req, s, inst, ctx)})


@router.delete("/v2.1/servers/{server_id}")
def delete_server(req: Request) -> Response:
    return _delete(req, "delete")


def _delete(req: Request, action: str) -> Response:
    ctx = ctx_of(req)
    require_writer(ctx, "os_compute_api:servers:delete")
    with req.app_state.db.session() as s:
        inst = instance_for(s, ctx, req.path_params["server_id"])
        check_not_locked(ctx, inst)
        if inst.task_state == states.DELETING:
            return empty(204)  # already being deleted: deleting again is a no-op
        instances.start_task(s, inst, action)
        instances.start_action(s, inst.id, "delete", ctx.request_id, ctx.user_id,
                               ctx.project_id)
        outbox.add(s, "delete_instance", {"instance_id": inst.id,
                                          "request_id": ctx.request_id})
    return empty(204)


def force_delete(req: Request) -> Response:
    _delete(req, "forceDelete")
    return empty(202)
