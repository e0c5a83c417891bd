"""/v2.1/servers: create, list, detail, show, update, delete.

Handlers parse the body or the query string (at the caller's microversion),
check the policy rule and render with compute/views/servers.py; creating,
changing and deleting are compute/servers.py's, finding servers for a list is
compute/server_queries.py's.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from gureum.api.microversion import at_least
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.compute import instances, policy, schemas, servers
from gureum.compute.api.common import bool_arg, ctx_of, int_arg, settings_of
from gureum.compute.api.params import MAX_LIMIT, reject_before, reject_unknown
from gureum.compute.server_queries import EXACT, ServerQuery, host_statuses, list_servers
from gureum.compute.views import servers as views
from gureum.compute.views.common import next_link
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import InvalidInput

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
    if isinstance(networks, list) and not ((2, 32) <= v < (2, 37) or v >= (2, 42)) and any(
            isinstance(n, dict) and "tag" in n for n in networks):
        # Nova's: device tags on networks from 2.32, dropped at 2.37, back at 2.42.
        raise InvalidInput("Invalid input for field/attribute networks. Additional "
                           "properties are not allowed ('tag' was unexpected)",
                           field="server.networks")
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


@router.post("/v2.1/servers", tx=True)
def create_server(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:create")
    body = validate(schemas.server_create_for(req.version), req.json())
    create = _create_request(req, body)
    made = servers.create(s, ctx, create, settings_of(req), ctx.request_id)
    first = made[0]
    if schemas.to_bool(body["server"].get("return_reservation_id", False)):
        return json_response({"reservation_id": first.reservation_id}, 202)
    view = views.created(req, first, [{"name": n} for n in create.security_groups],
                         create.admin_pass or secrets.token_urlsafe(9))
    return json_response({"server": view}, 202, {"location": view["links"][0]["href"]})


# -- list ----------------------------------------------------------------------------

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


def _tags(req: Request, name: str) -> list[str]:
    return [t for t in (req.arg(name) or "").split(",") if t]


def server_query(req: Request, ctx: RequestContext, rule: str) -> ServerQuery:
    """The query string of GET /servers as a ServerQuery, at the caller's microversion."""
    check_list_query(req)
    all_tenants = bool(bool_arg(req, "all_tenants")) if "all_tenants" in req.query else False
    if all_tenants:
        policy.authorize(ctx, f"{rule}:get_all_tenants")
    exact = {name: value for name in EXACT if (value := req.arg(name)) is not None}
    if not (ctx.is_admin or at_least(req, "2.83")):
        exact.pop("power_state", None)
    return ServerQuery(
        all_tenants=all_tenants, project_id=req.arg("project_id") or req.arg("tenant_id"),
        changes_since=_parse_time(req, "changes-since"),
        changes_before=_parse_time(req, "changes-before"),
        deleted=bool_arg(req, "deleted") if ctx.is_admin and "deleted" in req.query
        else None,
        status=req.arg("status") or None, exact=exact,
        locked=bool_arg(req, "locked") if at_least(req, "2.73") and "locked" in req.query
        else None,
        ip=req.arg("ip") or req.arg("ip6"),
        patterns={name: p for name in ("name", "description", "hostname")
                  if (p := req.arg(name))},
        tags=_tags(req, "tags"), tags_any=_tags(req, "tags-any"),
        not_tags=_tags(req, "not-tags"), not_tags_any=_tags(req, "not-tags-any"),
        sort_keys=req.query.get("sort_key", []), sort_dirs=req.query.get("sort_dir", []),
        # Nova's [api] max_limit: no page is larger, whatever the client asks.
        limit=min(int_arg(req, "limit") or MAX_LIMIT, MAX_LIMIT), marker=req.arg("marker"))


def _shows_host_status(req: Request, ctx: RequestContext) -> bool:
    return ctx.is_admin and at_least(req, "2.16")


def _list(req: Request, s: Session, detail: bool) -> Response:
    rule = "os_compute_api:servers:" + ("detail" if detail else "index")
    ctx = policy.authorize(ctx_of(req), rule)
    query = server_query(req, ctx, rule)
    rows = list_servers(s, ctx, query)
    if detail:
        with_status = _shows_host_status(req, ctx)
        statuses = host_statuses(s, {i.host for i in rows if i.host},
                                 settings_of(req)) if with_status else {}
        items = [views.show(req, i, ctx, for_list=True,
                            host_status=statuses.get(i.host or "", "") if with_status
                            else None) for i in rows]
    else:
        items = [views.basic(req, i) for i in rows]
    body: dict[str, Any] = {"servers": items}
    links = next_link(req, "servers/detail" if detail else "servers", items, query.limit)
    if links:
        body["servers_links"] = links
    return json_response(body)


@router.get("/v2.1/servers", tx=True)
def list_servers_brief(req: Request, s: Session) -> Response:
    return _list(req, s, detail=False)


@router.get("/v2.1/servers/detail", tx=True)
def list_servers_detail(req: Request, s: Session) -> Response:
    return _list(req, s, detail=True)


# -- show, update, delete ----------------------------------------------------------------

def show_view(req: Request, s: Session, inst: Any, ctx: RequestContext) -> dict[str, Any]:
    """The server as GET /servers/{id} shows it (with its host's state for admins)."""
    host_status = None
    if _shows_host_status(req, ctx):
        host_status = host_statuses(s, {inst.host} if inst.host else set(),
                                    settings_of(req)).get(inst.host or "", "")
    return views.show(req, inst, ctx, host_status=host_status)


@router.get("/v2.1/servers/{server_id}", tx=True)
def show_server(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:show")
    inst = instances.visible(s, ctx, req.path_params["server_id"])
    return json_response({"server": show_view(req, s, inst, ctx)})


# Body keys of PUT /servers/{id} → the instance attributes they set.
_UPDATE_FIELDS = (("name", "name"), ("description", "description"),
                  ("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6"),
                  ("hostname", "hostname"))


@router.put("/v2.1/servers/{server_id}", tx=True)
def update_server(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), "os_compute_api:servers:update")
    body = validate(schemas.server_update_for(req.version), req.json())["server"]
    if "description" in body and not at_least(req, "2.19"):
        raise InvalidInput("Additional properties are not allowed ('description' was "
                           "unexpected)", field="server.description")
    if "hostname" in body and not at_least(req, "2.90"):
        raise InvalidInput("Additional properties are not allowed ('hostname' was "
                           "unexpected)", field="server.hostname")
    values = {attr: body[key] for key, attr in _UPDATE_FIELDS if key in body}
    inst = servers.update(s, ctx, req.path_params["server_id"], values)
    return json_response({"server": show_view(req, s, inst, ctx)})


def delete(req: Request, s: Session, action: str, rule: str) -> None:
    ctx = policy.authorize(ctx_of(req), rule)
    servers.delete(s, ctx, req.path_params["server_id"], action)


@router.delete("/v2.1/servers/{server_id}", tx=True)
def delete_server(req: Request, s: Session) -> Response:
    delete(req, s, "delete", "os_compute_api:servers:delete")
    return empty(204)
