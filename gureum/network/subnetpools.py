"""Subnet pools (/v2.0/subnetpools, Neutron's subnet_allocation): prefixes subnets come from.

A pool holds prefixes of one IP version and the bounds of the subnets carved
from it (``min_prefixlen`` ≤ ``default_prefixlen`` ≤ ``max_prefixlen``). A
subnet created with ``subnetpool_id`` (or ``use_default_subnetpool``) and no
``cidr`` gets the lowest free block of ``prefixlen`` (default: the pool's
``default_prefixlen``); with a ``cidr`` it must lie in the pool and overlap no
subnet already taken from it. Each allocation bumps the pool's revision with a
compare-and-swap, so two racing requests cannot take the same block: the loser
starts again in a new transaction (``StaleRead``). A pool's ``default_quota``
bounds what each project takes from it (IPv4 addresses, IPv6 /64s): beyond it,
409 ``SubnetPoolQuotaExceeded``.

A pool may belong to an address scope (``gureum.network.address_scopes``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.errors import StaleRead
from gureum.network import address_scopes, ipam, listing, policy, resources
from gureum.network import errors as e
from gureum.network import models as m
from gureum.network.schemas import _bool, _obj, _project, _str, _tags
from gureum.network.views import iso

ADMIN_ATTRS = ("shared", "is_default")
# Neutron's bounds when none are given: /8 (IPv4) or /64 (IPv6) at the widest.
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
BITS = {4: 32, 6: 128}

_prefixlen = {"type": "integer", "minimum": 0, "maximum": 128}
_common = {
    "name": _str(), "description": _str(),
    "prefixes": {"type": "array", "minItems": 1, "maxItems": 64, "items": _str(64, 1)},
    "default_prefixlen": _prefixlen, "min_prefixlen": _prefixlen,
    "max_prefixlen": _prefixlen, "is_default": _bool,
    "default_quota": {"type": ["integer", "null"], "minimum": 0},
    "address_scope_id": _str(64, nullable=True),
}
create_schema = _obj({**_common, "shared": _bool, "project_id": _project,
                      "tenant_id": _project, "tags": _tags}, ("prefixes",))
update_schema = _obj({**_common, **{k: {} for k in ("shared", "ip_version", "project_id",
                                                    "tenant_id", "id")}})
READ_ONLY = ("shared", "ip_version", "project_id", "tenant_id", "id")


def _nullable(column: Any) -> listing.Custom:
    def clause(values: list[str]) -> ColumnElement[bool]:
        return or_(*[column.is_(None) if v in ("", "None", "null") else column == v
                     for v in values])
    return clause


COLLECTION = listing.Collection("subnetpools", m.SubnetPool, {
    "id": listing.Attr(m.SubnetPool.id), "name": listing.Attr(m.SubnetPool.name),
    "description": listing.Attr(m.SubnetPool.description),
    "project_id": listing.Attr(m.SubnetPool.project_id),
    "tenant_id": listing.Attr(m.SubnetPool.project_id),
    "revision_number": listing.Attr(m.SubnetPool.revision_number, "int"),
    "created_at": listing.Attr(m.SubnetPool.created_at, filterable=False),
    "updated_at": listing.Attr(m.SubnetPool.updated_at, filterable=False),
    "ip_version": listing.Attr(m.SubnetPool.ip_version, "int"),
    "shared": listing.Attr(m.SubnetPool.shared, "bool"),
    "is_default": listing.Attr(m.SubnetPool.is_default, "bool"),
    "default_prefixlen": listing.Attr(m.SubnetPool.default_prefixlen, "int"),
    "min_prefixlen": listing.Attr(m.SubnetPool.min_prefixlen, "int"),
    "max_prefixlen": listing.Attr(m.SubnetPool.max_prefixlen, "int"),
    "default_quota": listing.Attr(m.SubnetPool.default_quota, "int"),
    "address_scope_id": listing.Attr(custom=_nullable(m.SubnetPool.address_scope_id)),
})


def visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    mine = m.SubnetPool.project_id == ctx.project_id
    return or_(mine, m.SubnetPool.shared.is_(True))


def can_see(ctx: RequestContext, pool: m.SubnetPool) -> bool:
    return policy.owns(ctx, pool.project_id) or pool.shared


def view(p: m.SubnetPool, ctx: RequestContext) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "description": p.description,
            "project_id": p.project_id, "tenant_id": p.project_id,
            "ip_version": p.ip_version, "prefixes": list(p.prefixes),
            "default_prefixlen": p.default_prefixlen, "min_prefixlen": p.min_prefixlen,
            "max_prefixlen": p.max_prefixlen, "shared": p.shared,
            "is_default": p.is_default, "default_quota": p.default_quota,
            "address_scope_id": p.address_scope_id,
            "revision_number": p.revision_number, "tags": [t.tag for t in p.tags],
            "created_at": iso(p.created_at), "updated_at": iso(p.updated_at)}


def get(s: Session, ctx: RequestContext | None, pool_id: str) -> m.SubnetPool:
    pool = s.get(m.SubnetPool, pool_id)
    if pool is None or (ctx is not None and not can_see(ctx, pool)):
        raise e.not_found("subnetpool", pool_id)
    return pool


# -- prefixes ---------------------------------------------------------------------------

def _prefixes(values: list[str]) -> tuple[int, list[ipam.IPNetwork]]:
    nets = [ipam.parse_cidr(v, "prefixes") for v in values]
    versions = {n.version for n in nets}
    if len(versions) != 1:
        raise e.invalid_input("Cannot mix IPv4 and IPv6 prefixes in a subnet pool",
                              "prefixes")
    version = versions.pop()
    merged = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
    return version, merged


def _bounds(version: int, body: dict[str, Any], pool: m.SubnetPool | None
            ) -> tuple[int, int, int]:
    def pick(key: str, fallback: int) -> int:
        if body.get(key) is not None:
            return int(body[key])
        return int(getattr(pool, key)) if pool is not None else fallback

    low = pick("min_prefixlen", DEFAULT_MIN_PREFIXLEN[version])
    high = pick("max_prefixlen", BITS[version])
    default = pick("default_prefixlen", low)
    for key, value in (("min_prefixlen", low), ("max_prefixlen", high),
                       ("default_prefixlen", default)):
        if value > BITS[version]:
            raise e.invalid_input(f"{key} {value} is longer than an IPv{version} "
                                  f"address ({BITS[version]} bits)", key)
    if not low <= default <= high:
        raise e.invalid_input(f"Illegal prefix bounds: min_prefixlen={low}, "
                              f"default_prefixlen={default}, max_prefixlen={high}; "
                              "min_prefixlen <= default_prefixlen <= max_prefixlen is "
                              "required", "default_prefixlen")
    return low, default, high


def _check_default(s: Session, pool: m.SubnetPool) -> None:
    if not pool.is_default:
        return
    other = s.scalar(select(m.SubnetPool.id).where(
        m.SubnetPool.is_default.is_(True), m.SubnetPool.ip_version == pool.ip_version,
        m.SubnetPool.id != pool.id))
    if other:
        raise e.invalid_input(f"A default subnetpool for this IP family has already been "
                              f"set ({other}). Only one default may exist per IP family",
                              "is_default")




# -- the API ----------------------------------------------------------------------------

def create(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.SubnetPool:
    policy.writer(ctx, "create_subnetpool")
    policy.check_admin_attrs(ctx, body, ADMIN_ATTRS, "create_subnetpool")
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "subnetpool")
    version, prefixes = _prefixes(body["prefixes"])
    if body.get("address_scope_id"):
        address_scopes.check_pool(s, ctx, body["address_scope_id"], None, version,
                                  [str(p) for p in prefixes])
    low, default, high = _bounds(version, body, None)
    pool = m.SubnetPool(
        project_id=project_id, name=body.get("name") or "",
        description=body.get("description") or "", ip_version=version,
        prefixes=[str(p) for p in prefixes], default_prefixlen=default, min_prefixlen=low,
        max_prefixlen=high, shared=body.get("shared", False),
        is_default=body.get("is_default", False), default_quota=body.get("default_quota"),
        address_scope_id=body.get("address_scope_id"))
    _check_default(s, pool)
    s.add(pool)
    s.flush()
    if body.get("tags"):
        resources.set_tags(s, pool, body["tags"])
    return pool


def update_pool(s: Session, ctx: RequestContext, pool_id: str, body: dict[str, Any]
                ) -> m.SubnetPool:
    pool = get(s, ctx, pool_id)
    policy.writer(ctx, "update_subnetpool")
    policy.check_owner(ctx, pool.project_id, "update_subnetpool")
    policy.check_admin_attrs(ctx, body, ADMIN_ATTRS, "update_subnetpool")
    if body.get("prefixes") is not None:
        version, prefixes = _prefixes(body["prefixes"])
        if version != pool.ip_version:
            raise e.invalid_input(f"The prefixes of an IPv{pool.ip_version} subnet pool "
                                  f"must be IPv{pool.ip_version}", "prefixes")
        for old in pool.prefixes:
            old_net = ipaddress.ip_network(old)
            if not any(old_net.subnet_of(new) for new in prefixes):  # type: ignore[arg-type]
                raise e.invalid_input(f"Illegal update to prefixes: {old} is no longer "
                                      "covered; prefixes can only be added or extended",
                                      "prefixes")
        pool.prefixes = [str(p) for p in prefixes]
    if "address_scope_id" in body:
        if body["address_scope_id"]:
            address_scopes.check_pool(s, ctx, body["address_scope_id"], pool.id,
                                      pool.ip_version, list(pool.prefixes))
        pool.address_scope_id = body["address_scope_id"] or None
    elif body.get("prefixes") is not None and pool.address_scope_id:
        address_scopes.check_pool(s, ctx, pool.address_scope_id, pool.id, pool.ip_version,
                                  list(pool.prefixes))
    pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen = _bounds(
        pool.ip_version, body, pool)
    for key in ("name", "description"):
        if key in body:
            setattr(pool, key, body[key] or "")
    if "default_quota" in body:
        pool.default_quota = body["default_quota"]
    if "is_default" in body:
        pool.is_default = body["is_default"]
        _check_default(s, pool)
    resources.touch(pool)
    s.flush()
    return pool


def delete(s: Session, ctx: RequestContext, pool_id: str) -> None:
    pool = get(s, ctx, pool_id)
    policy.writer(ctx, "delete_subnetpool")
    policy.check_owner(ctx, pool.project_id, "delete_subnetpool")
    if s.scalar(select(m.Subnet.id).where(m.Subnet.subnetpool_id == pool.id).limit(1)):
        raise e.conflict("SubnetPoolInUse", f"Unable to complete operation on subnet pool "
                         f"{pool.id}: subnets are allocated from it.")
    resources.drop_tags(s, pool.id)
    s.delete(pool)
    s.flush()


# -- subnets from a pool ----------------------------------------------------------------

def for_subnet(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.SubnetPool | None:
    """The pool a subnet create names (subnetpool_id or use_default_subnetpool)."""
    if body.get("subnetpool_id"):
        return get(s, ctx, body["subnetpool_id"])
    if not body.get("use_default_subnetpool"):
        return None
    version = body.get("ip_version", 4)
    pool = s.scalar(select(m.SubnetPool).where(m.SubnetPool.is_default.is_(True),
                                               m.SubnetPool.ip_version == version))
    if pool is None or not can_see(ctx, pool):
        raise e.bad_request(f"No default subnetpool found for IPv{version}",
                            "use_default_subnetpool")
    return pool


def _taken(s: Session, pool: m.SubnetPool) -> list[ipam.IPNetwork]:
    return [ipaddress.ip_network(c) for c in s.scalars(
        select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id))]


def _free_block(pool: m.SubnetPool, taken: list[ipam.IPNetwork], prefixlen: int
                ) -> ipam.IPNetwork | None:
    """The lowest block of ``prefixlen`` in the pool that overlaps nothing taken."""
    free: list[ipam.IPNetwork] = [ipaddress.ip_network(p) for p in pool.prefixes]
    for used in taken:
        rest: list[ipam.IPNetwork] = []
        for block in free:
            if not block.overlaps(used):
                rest.append(block)
            elif used.subnet_of(block) and used != block:  # type: ignore[arg-type]
                rest.extend(block.address_exclude(used))  # type: ignore[arg-type]
        free = rest
    fits = sorted((b for b in free if b.prefixlen <= prefixlen),
                  key=lambda b: int(b.network_address))
    if not fits:
        return None
    return ipaddress.ip_network((fits[0].network_address, prefixlen))


def _claim(s: Session, pool: m.SubnetPool) -> None:
    """Compare-and-swap the pool's revision; another allocation came first: the
    request starts again in a new transaction, which sees the block it took."""
    seen = pool.revision_number
    done = s.execute(update(m.SubnetPool).where(
        m.SubnetPool.id == pool.id, m.SubnetPool.revision_number == seen)
        .values(revision_number=seen + 1).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 1) != 1:
        raise StaleRead(f"Failed to allocate subnet from subnet pool {pool.id}: too many "
                        "concurrent requests; try again.",
                        neutron_type="SubnetAllocationError")
    pool.revision_number = seen + 1


def quota_units(net: ipam.IPNetwork) -> int:
    """What a subnet costs against a pool's default_quota: IPv4 addresses, IPv6 /64s."""
    return net.num_addresses if net.version == 4 else 2 ** max(0, 64 - net.prefixlen)


def _check_pool_quota(s: Session, pool: m.SubnetPool, project_id: str,
                      block: ipam.IPNetwork) -> None:
    if pool.default_quota is None:
        return
    used = sum(quota_units(ipaddress.ip_network(c)) for c in s.scalars(
        select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id,
                                    m.Subnet.project_id == project_id)))
    if used + quota_units(block) > pool.default_quota:
        raise e.conflict("SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota "
                         f"exceeded: {block} needs {quota_units(block)} of the "
                         f"{pool.default_quota - used} left of subnet pool {pool.id}'s "
                         f"default_quota {pool.default_quota}.")


def allocate(s: Session, pool: m.SubnetPool, body: dict[str, Any], project_id: str
             ) -> ipam.IPNetwork:
    """The CIDR of a new subnet from ``pool``: the one asked for, or a free block."""
    if body.get("ip_version") is not None and body["ip_version"] != pool.ip_version:
        raise e.invalid_input(f"ip_version {body['ip_version']} does not match subnet pool "
                              f"{pool.id} (IPv{pool.ip_version})", "ip_version")
    taken = _taken(s, pool)
    if body.get("cidr"):
        wanted = ipam.parse_cidr(body["cidr"])
        _check_length(pool, wanted.prefixlen, "cidr")
        if wanted.version != pool.ip_version or not any(
                wanted.subnet_of(ipaddress.ip_network(p))  # type: ignore[arg-type]
                for p in pool.prefixes):
            raise e.invalid_input(f"Cidr {wanted} is not within the prefixes of subnet "
                                  f"pool {pool.id} ({', '.join(pool.prefixes)})", "cidr")
        clash = next((t for t in taken if t.overlaps(wanted)), None)
        if clash is not None:
            raise e.invalid_input(f"Failed to allocate subnet: {wanted} overlaps "
                                  f"{clash}, already allocated from subnet pool "
                                  f"{pool.id}", "cidr")
        block = wanted
    else:
        prefixlen = int(body["prefixlen"]) if body.get("prefixlen") is not None \
            else pool.default_prefixlen
        _check_length(pool, prefixlen, "prefixlen")
        found = _free_block(pool, taken, prefixlen)
        if found is None:
            raise e.conflict("SubnetAllocationError", f"Failed to allocate subnet: "
                             f"Insufficient prefix space to allocate subnet size "
                             f"/{prefixlen} from subnet pool {pool.id}.")
        block = found
    _check_pool_quota(s, pool, project_id, block)
    _claim(s, pool)
    return block


def _check_length(pool: m.SubnetPool, prefixlen: int, field: str) -> None:
    if not pool.min_prefixlen <= prefixlen <= pool.max_prefixlen:
        raise e.invalid_input(f"Illegal prefix bounds: prefixlen={prefixlen}, subnet pool "
                              f"{pool.id} allows /{pool.min_prefixlen} to "
                              f"/{pool.max_prefixlen}", field)
