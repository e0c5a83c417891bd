"""List queries as Neutron answers them: filters, tags, fields, sorting and paging.

Every attribute a collection declares filterable is matched exactly (repeat a
parameter to OR values: ``?id=a&id=b``; an empty value matches the empty
string); unknown filters are a 400, as with Neutron's filter-validation.
Paging is keyset paging on the sort keys plus the id, with Neutron's
``<collection>_links`` ("next" / "previous") in the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, and_, exists, not_, or_, select
from sqlalchemy.orm import Session

from gureum import paging
from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import models as m
from gureum.paging import SortKey
from gureum.query import parse_bool

CONTROL = ("fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir")
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")

Custom = Callable[[list[str]], ColumnElement[bool]]


class Request(Protocol):
    """What a listing reads of a request (gureum.api.web.Request has it): the query
    parameters and the family's base URL for paging links."""

    @property
    def query(self) -> dict[str, list[str]]: ...

    @property
    def base_url(self) -> str: ...

    def arg(self, name: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class Attr:
    """A filterable attribute: its column (or a custom clause builder) and type."""

    column: Any = None
    kind: str = "str"  # str | bool | int
    admin_only: bool = False
    custom: Custom | None = None
    # A clause that depends on who asks (the caller's context and the values).
    custom_for: Callable[[RequestContext, list[str]], ColumnElement[bool]] | None = None
    sortable: bool = True
    filterable: bool = True


@dataclass(frozen=True)
class Collection:
    name: str  # "networks"
    model: Any
    attrs: dict[str, Attr] = field(default_factory=dict)


@dataclass
class Page:
    rows: list[Any]
    links: list[dict[str, str]]
    fields: list[str] | None


def to_bool(value: str, name: str) -> bool:
    """Neutron's convert_to_boolean: oslo's words, else its 400."""
    parsed = parse_bool(value)
    if parsed is None:
        raise e.invalid_input(f"'{value}' cannot be converted to boolean", name)
    return parsed


def to_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise e.invalid_input(f"'{value}' is not an integer", name) from None
    if abs(number) > 2**31:
        raise e.invalid_input(f"'{value}' is out of range", name)
    return number


def _convert(attr: Attr, values: list[str], name: str) -> list[Any]:
    if attr.kind == "bool":
        return [to_bool(v, name) for v in values]
    if attr.kind == "int":
        return [to_int(v, name) for v in values]
    return values


def tag_clause(model: Any, kind: str, values: list[str]) -> ColumnElement[bool]:
    tags = sorted({t for v in values for t in v.split(",") if t})
    if not tags:
        raise e.invalid_input(f"'{kind}' needs at least one tag", kind)

    def has(tag_filter: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(m.Tag.resource_id == model.id, tag_filter)

    if kind in ("tags", "not-tags"):
        clause = and_(*[has(m.Tag.tag == t) for t in tags])
    else:
        clause = has(m.Tag.tag.in_(tags))
    return not_(clause) if kind.startswith("not-") else clause


def filtered(req: Request, ctx: RequestContext, coll: Collection, stmt: Select[Any]
             ) -> Select[Any]:
    for name, values in req.query.items():
        if any("\x00" in v for v in values):
            raise e.invalid_input("NUL characters are not allowed in query parameters", name)
        if name in CONTROL:
            continue
        if name in TAG_FILTERS:
            stmt = stmt.where(tag_clause(coll.model, name, values))
            continue
        attr = coll.attrs.get(name)
        if attr is None or not attr.filterable or (attr.admin_only and not ctx.is_admin):
            raise e.bad_request(f"[{name}] is invalid attribute for filtering", name)
        if attr.custom_for is not None:
            stmt = stmt.where(attr.custom_for(ctx, values))
            continue
        if attr.custom is not None:
            stmt = stmt.where(attr.custom(values))
            continue
        converted = _convert(attr, values, name)
        stmt = stmt.where(attr.column == converted[0] if len(converted) == 1
                          else attr.column.in_(converted))
    return stmt


def _sort_keys(req: Request, coll: Collection) -> list[SortKey]:
    keys = [k for v in req.query.get("sort_key", []) for k in v.split(",") if k]
    dirs = [d.lower() for v in req.query.get("sort_dir", []) for d in v.split(",") if d]
    if dirs and len(dirs) != len(keys):
        raise e.bad_request("The number of sort_keys and sort_dirs must be same", "sort_dir")
    out: list[SortKey] = []
    for i, key in enumerate(keys):
        attr = coll.attrs.get(key)
        if attr is None or attr.column is None or not attr.sortable:
            raise e.bad_request(f"{key} is invalid attribute for sort_keys", "sort_key")
        direction = dirs[i] if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise e.bad_request(f"{direction} is invalid value for sort_dirs, valid value is "
                                "'asc' and 'desc'", "sort_dir")
        out.append(SortKey(attr.column, direction == "asc"))
    if not keys:
        out.append(SortKey(coll.model.created_at))
    if "id" not in keys:
        out.append(SortKey(coll.model.id))
    return out


def _link(req: Request, coll: Collection, marker: str, reverse: bool, limit: int
          ) -> str:
    params = [(k, v) for k, values in req.query.items() if k not in ("marker", "page_reverse",
                                                                       "limit")
              for v in values]
    params += [("limit", str(limit)), ("marker", marker)]
    if reverse:
        params.append(("page_reverse", "True"))
    return f"{req.base_url}/v2.0/{coll.name}?{urlencode(params)}"


def list_page(req: Request, s: Session, ctx: RequestContext, coll: Collection,
              visible: ColumnElement[bool] | None) -> Page:
    """The rows a list request asks for, and the paging links to go on."""
    stmt = select(coll.model)
    if visible is not None:
        stmt = stmt.where(visible)
    stmt = filtered(req, ctx, coll, stmt)
    keys = _sort_keys(req, coll)
    # Neutron reads page_reverse as "true" (any case) or not: never an error.
    reverse = (req.arg("page_reverse") or "").lower() == "true"
    limit_arg = req.arg("limit")
    limit = to_int(limit_arg, "limit") if limit_arg not in (None, "") else 0
    if limit < 0:
        raise e.bad_request(f"Limit must be an integer 0 or greater and not '{limit}'",
                            "limit")
    marker = req.arg("marker") or None
    values = None
    if marker:
        where = [coll.model.id == marker] + ([visible] if visible is not None else [])
        values = paging.marker_values(s, keys, *where)
        if values is None:
            raise e.bad_request(f"Marker {marker} could not be found", "marker")
    page = paging.fetch(s, stmt, keys, limit or None, values, reverse=reverse)
    rows, more = page.rows, page.more
    links: list[dict[str, str]] = []
    if limit and rows:
        has_next = marker is not None if reverse else more
        has_previous = more if reverse else marker is not None
        if has_next:
            links.append({"href": _link(req, coll, rows[-1].id, False, limit), "rel": "next"})
        if has_previous:
            links.append({"href": _link(req, coll, rows[0].id, True, limit),
                          "rel": "previous"})
    fields = [f for v in req.query.get("fields", []) for f in v.split(",") if f] or None
    return Page(rows, links, fields)


# -- the collections -------------------------------------------------------------------

def _common(model: Any) -> dict[str, Attr]:
    return {"id": Attr(model.id), "name": Attr(model.name),
            "description": Attr(model.description),
            "project_id": Attr(model.project_id), "tenant_id": Attr(model.project_id),
            "revision_number": Attr(model.revision_number, "int"),
            "created_at": Attr(model.created_at, filterable=False),
            "updated_at": Attr(model.updated_at, filterable=False)}


def _network_shared(ctx: RequestContext, values: list[str]) -> ColumnElement[bool]:
    """``shared`` as the caller sees it: also true where an RBAC policy shares the
    network with the caller's project."""
    wanted = [to_bool(v, "shared") for v in values]
    shared: ColumnElement[bool] = m.Network.shared.is_(True)
    if not ctx.is_admin and ctx.project_id:
        shared = or_(shared, m.Network.id.in_(select(m.RBACPolicy.object_id).where(
            m.RBACPolicy.action == "access_as_shared",
            m.RBACPolicy.target_project.in_(["*", ctx.project_id]))))
    if all(wanted):
        return shared
    if not any(wanted):
        return not_(shared)
    return m.Network.id.is_not(None)


NETWORKS = Collection("networks", m.Network, {
    **_common(m.Network), "status": Attr(m.Network.status),
    "admin_state_up": Attr(m.Network.admin_state_up, "bool"),
    "shared": Attr(m.Network.shared, "bool", custom_for=_network_shared),
    "router:external": Attr(m.Network.external, "bool"),
    "is_default": Attr(m.Network.is_default, "bool"),
    "mtu": Attr(m.Network.mtu, "int"),
    "port_security_enabled": Attr(m.Network.port_security_enabled, "bool"),
    "dns_domain": Attr(m.Network.dns_domain),
    "provider:network_type": Attr(m.Network.network_type, admin_only=True),
    "provider:physical_network": Attr(m.Network.physical_network, admin_only=True),
    "provider:segmentation_id": Attr(m.Network.segmentation_id, "int", admin_only=True,
                                     sortable=False),
})


def _subnet_external(values: list[str]) -> ColumnElement[bool]:
    wanted = [to_bool(v, "router:external") for v in values]
    return m.Subnet.network_id.in_(select(m.Network.id)
                                   .where(m.Network.external.in_(wanted)))


def _nullable_string(column: Any) -> Custom:
    def clause(values: list[str]) -> ColumnElement[bool]:
        return or_(*[column.is_(None) if v in ("", "None", "null") else column == v
                     for v in values])
    return clause


SUBNETS = Collection("subnets", m.Subnet, {
    **_common(m.Subnet), "network_id": Attr(m.Subnet.network_id),
    "ip_version": Attr(m.Subnet.ip_version, "int"), "cidr": Attr(m.Subnet.cidr),
    "gateway_ip": Attr(m.Subnet.gateway_ip, custom=_nullable_string(m.Subnet.gateway_ip),
                       sortable=False),
    "enable_dhcp": Attr(m.Subnet.enable_dhcp, "bool"),
    "ipv6_ra_mode": Attr(custom=_nullable_string(m.Subnet.ipv6_ra_mode)),
    "ipv6_address_mode": Attr(custom=_nullable_string(m.Subnet.ipv6_address_mode)),
    "dns_publish_fixed_ip": Attr(m.Subnet.dns_publish_fixed_ip, "bool"),
    "router:external": Attr(custom=_subnet_external),
    "subnetpool_id": Attr(custom=_nullable_string(m.Subnet.subnetpool_id)),
})


def _port_fixed_ips(values: list[str]) -> ColumnElement[bool]:
    wanted: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise e.invalid_input(f"Invalid fixed_ips filter '{value}': use ip_address=, "
                                  "subnet_id= or ip_address_substr=", "fixed_ips")
        wanted.setdefault(key, []).append(val)
    conditions: list[ColumnElement[bool]] = [m.IPAllocation.port_id == m.Port.id]
    if "ip_address" in wanted:
        conditions.append(m.IPAllocation.ip_address.in_(wanted["ip_address"]))
    if "subnet_id" in wanted:
        conditions.append(m.IPAllocation.subnet_id.in_(wanted["subnet_id"]))
    for substr in wanted.get("ip_address_substr", []):
        escaped = substr.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(m.IPAllocation.ip_address.like(f"%{escaped}%", escape="\\"))
    return exists().where(*conditions)


def _binding(column: Any) -> Custom:
    def clause(values: list[str]) -> ColumnElement[bool]:
        return exists().where(m.PortBinding.port_id == m.Port.id,
                              m.PortBinding.status == m.BINDING_ACTIVE, column.in_(values))
    return clause


def _in_security_groups(values: list[str]) -> ColumnElement[bool]:
    """``?security_groups=a&security_groups=b``: ports in any of these groups."""
    return m.Port.id.in_(select(m.PortSecurityGroup.port_id).where(
        m.PortSecurityGroup.security_group_id.in_(values)))


PORTS = Collection("ports", m.Port, {
    **_common(m.Port), "network_id": Attr(m.Port.network_id),
    "mac_address": Attr(m.Port.mac_address), "status": Attr(m.Port.status),
    "admin_state_up": Attr(m.Port.admin_state_up, "bool"),
    "device_id": Attr(m.Port.device_id), "device_owner": Attr(m.Port.device_owner),
    "port_security_enabled": Attr(m.Port.port_security_enabled, "bool"),
    "dns_name": Attr(m.Port.dns_name), "dns_domain": Attr(m.Port.dns_domain),
    "fixed_ips": Attr(custom=_port_fixed_ips),
    "security_groups": Attr(custom=_in_security_groups),
    "binding:host_id": Attr(custom=_binding(m.PortBinding.host), admin_only=True),
    "binding:vif_type": Attr(custom=_binding(m.PortBinding.vif_type), admin_only=True),
    "binding:vnic_type": Attr(custom=_binding(m.PortBinding.vnic_type)),
})
