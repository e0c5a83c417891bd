"""Security groups: groups and their rules, each project's ``default`` group, ports'
membership, and the rules the data plane enforces for a port.

* Every project has one ``default`` group, made on its first use (listing
  groups, creating a port or a server) with the rules of the default security
  group rules (``secgroup_defaults``), at first Neutron's four: egress
  anywhere over IPv4 and IPv6, ingress from members of the group itself over
  IPv4 and IPv6. It cannot be renamed, nor deleted by its project (409).
* A new group gets the templates for custom groups: at first all egress (two
  rules), no ingress.
* A port with port security on and no groups named joins its project's
  default group; a port of the network's own (``network:*`` owners: router
  interfaces, DHCP) joins none. Groups need port security (400 on create, 409
  when disabling port security on a port still in groups, as Neutron).
* ``rules_for_port`` is what the network agent's data plane turns into
  firewall rules: the port's rules with each remote group expanded into the
  addresses of its member ports (fixed IPs and allowed address pairs).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, NotFound, StaleRead
from gureum.network import errors as e
from gureum.network import listing, policy, resources, secgroup_defaults, views
from gureum.network import models as m
from gureum.network import secgroup_rules as rules

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"

_str = {"type": "string", "maxLength": 255, "pattern": "^[^\x00]*$"}
_id = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^\x00]*$"}
group_create: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"name": _str, "description": _str, "stateful": {"type": "boolean"},
                   "project_id": _id, "tenant_id": _id,
                   "tags": {"type": "array", "maxItems": 100, "uniqueItems": True,
                            "items": {**_str, "minLength": 1}}},
}
GROUP_READ_ONLY = ("project_id", "tenant_id", "id")
group_update: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"name": _str, "description": _str, "stateful": {"type": "boolean"},
                   **{k: {} for k in GROUP_READ_ONLY}},
}


# -- finding and seeing -----------------------------------------------------------------

def group_not_found(group_id: str) -> Exception:
    return e.typed_not_found("SecurityGroupNotFound", f"Security group {group_id} does not "
                             "exist")


def get_group(s: Session, ctx: RequestContext | None, group_id: str) -> m.SecurityGroup:
    group = s.get(m.SecurityGroup, group_id) if isinstance(group_id, str) else None
    if group is None or (ctx is not None and not policy.owns(ctx, group.project_id)):
        raise group_not_found(group_id)
    return group


def get_rule(s: Session, ctx: RequestContext | None, rule_id: str) -> m.SecurityGroupRule:
    rule = s.get(m.SecurityGroupRule, rule_id) if isinstance(rule_id, str) else None
    if rule is None or (ctx is not None and not (
            policy.owns(ctx, rule.project_id)
            or policy.owns(ctx, rule.security_group.project_id))):
        raise e.typed_not_found("SecurityGroupRuleNotFound",
                                f"Security group rule {rule_id} does not exist")
    return rule


def group_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    if not ctx.project_id:
        return false()
    return m.SecurityGroup.project_id == ctx.project_id


def rule_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    if not ctx.project_id:
        return false()
    own_groups = select(m.SecurityGroup.id).where(
        m.SecurityGroup.project_id == ctx.project_id)
    return or_(m.SecurityGroupRule.project_id == ctx.project_id,
               m.SecurityGroupRule.security_group_id.in_(own_groups))


def default_group_id(s: Session, project_id: str) -> str | None:
    row = s.get(m.DefaultSecurityGroup, project_id)
    return row.security_group_id if row is not None else None


def is_default(s: Session, group: m.SecurityGroup) -> bool:
    return default_group_id(s, group.project_id) == group.id


# -- the default group ------------------------------------------------------------------

def _add_rule(s: Session, group: m.SecurityGroup, **attrs: Any) -> m.SecurityGroupRule:
    rule = m.SecurityGroupRule(project_id=group.project_id, security_group_id=group.id,
                               **attrs)
    group.rules.append(rule)
    return rule


def _template_rules(s: Session, group: m.SecurityGroup, default: bool) -> None:
    for attrs in secgroup_defaults.rules_for_new_group(s, group.id, default):
        _add_rule(s, group, **attrs)


def ensure_default(s: Session, project_id: str) -> str:
    """The project's default group's id, made (with its rules) if it has none yet."""
    found = default_group_id(s, project_id)
    if found is not None:
        return found
    group = m.SecurityGroup(project_id=project_id, name=DEFAULT_NAME,
                            description=DEFAULT_DESCRIPTION)
    try:
        with s.begin_nested():
            s.add(group)
            s.flush()
            s.add(m.DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
            _template_rules(s, group, default=True)
            s.flush()
    except IntegrityError:  # a concurrent first request made it
        found = default_group_id(s, project_id)
        if found is None:
            # Under repeatable read (MariaDB) the winner's row is not visible to this
            # transaction: the request runs again in a new one, which sees it.
            raise StaleRead(f"The default security group of project {project_id} "
                            "was being created by another request.") from None
        return found
    return group.id


def prepare_list(s: Session, ctx: RequestContext) -> None:
    """A project's first look at its groups shows its default group (as Neutron)."""
    if ctx.project_id and ctx.can_write:
        ensure_default(s, ctx.project_id)


# -- groups -----------------------------------------------------------------------------

def group_view(g: m.SecurityGroup, ctx: RequestContext) -> dict[str, Any]:
    s = object_session(g)
    default = s is not None and is_default(s, g)
    return {"id": g.id, "name": g.name, "stateful": g.stateful, "shared": False,
            "security_group_rules": [rules.view(r, default) for r in g.rules],
            "tenant_id": g.project_id, "project_id": g.project_id,
            "description": g.description, "revision_number": g.revision_number,
            "tags": [t.tag for t in g.tags], "created_at": views.iso(g.created_at),
            "updated_at": views.iso(g.updated_at)}


def create_group(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.SecurityGroup:
    policy.writer(ctx, "create_security_group")
    project_id = policy.target_project(ctx, body)
    name = body.get("name") or ""
    ensure_default(s, project_id)
    if name == DEFAULT_NAME:  # there is one now
        raise e.conflict("SecurityGroupDefaultAlreadyExists",
                         "Default security group already exists.")
    resources.check_quota(s, project_id, "security_group")
    group = m.SecurityGroup(project_id=project_id, name=name,
                            description=body.get("description") or "",
                            stateful=body.get("stateful", True))
    s.add(group)
    s.flush()
    _template_rules(s, group, default=False)
    s.flush()
    if body.get("tags"):
        resources.set_tags(s, group, body["tags"])
    return group


def _in_use(s: Session, group_id: str) -> bool:
    return s.scalar(select(m.PortSecurityGroup.port_id).where(
        m.PortSecurityGroup.security_group_id == group_id).limit(1)) is not None


def update_group(s: Session, ctx: RequestContext, group_id: str, body: dict[str, Any]
                 ) -> m.SecurityGroup:
    group = get_group(s, ctx, group_id)
    policy.writer(ctx, "update_security_group")
    if is_default(s, group) and "name" in body and body["name"] != group.name:
        raise e.conflict("SecurityGroupCannotUpdateDefault",
                         "Updating default security group not allowed.")
    if body.get("name") == DEFAULT_NAME and group.name != DEFAULT_NAME:
        raise e.conflict("SecurityGroupDefaultAlreadyExists",
                         "Default security group already exists.")
    if "stateful" in body and body["stateful"] != group.stateful and _in_use(s, group.id):
        raise e.conflict("SecurityGroupInUse", f"Security Group {group.id} in use.")
    for key in ("name", "description", "stateful"):
        if key in body:
            setattr(group, key, body[key] if body[key] is not None else "")
    resources.touch(group)
    s.flush()
    return group


def delete_group(s: Session, ctx: RequestContext, group_id: str) -> None:
    group = get_group(s, ctx, group_id)
    policy.writer(ctx, "delete_security_group")
    if is_default(s, group) and not ctx.is_admin:
        raise e.conflict("SecurityGroupCannotRemoveDefault",
                         "Insufficient rights for removing default security group.")
    if _in_use(s, group.id):
        raise e.conflict("SecurityGroupInUse", f"Security Group {group.id} in use.")
    # Rules of other groups that name this one as their remote side go with it.
    s.execute(delete(m.SecurityGroupRule).where(
        m.SecurityGroupRule.remote_group_id == group.id,
        m.SecurityGroupRule.security_group_id != group.id))
    s.execute(delete(m.DefaultSecurityGroup).where(
        m.DefaultSecurityGroup.security_group_id == group.id))
    resources.drop_tags(s, group.id)
    s.delete(group)
    s.flush()


# -- rules ------------------------------------------------------------------------------

def rule_view(r: m.SecurityGroupRule, ctx: RequestContext) -> dict[str, Any]:
    s = object_session(r)
    return rules.view(r, s is not None and is_default(s, r.security_group))


def create_rule(s: Session, ctx: RequestContext, body: dict[str, Any]
                ) -> m.SecurityGroupRule:
    policy.writer(ctx, "create_security_group_rule")
    group = get_group(s, ctx, body["security_group_id"])
    policy.target_project(ctx, body)
    attrs = rules.validated(body)
    if attrs["remote_group_id"]:
        get_group(s, ctx, attrs["remote_group_id"])
    key = rules.same_key(attrs)
    for existing in group.rules:
        if rules.same_key(existing) == key:
            raise e.conflict("SecurityGroupRuleExists", "Security group rule already "
                             f"exists. Rule id is {existing.id}.")
    resources.check_quota(s, group.project_id, "security_group_rule")
    rule = _add_rule(s, group, **attrs)
    s.flush()
    resources.touch(group)
    return rule


def update_rule(s: Session, ctx: RequestContext, rule_id: str, body: dict[str, Any]
                ) -> m.SecurityGroupRule:
    rule = get_rule(s, ctx, rule_id)
    policy.writer(ctx, "update_security_group_rule")
    policy.check_owner(ctx, rule.project_id, "update_security_group_rule")
    if "description" in body:
        rule.description = body["description"] or ""
    resources.touch(rule)
    return rule


def delete_rule(s: Session, ctx: RequestContext, rule_id: str) -> None:
    rule = get_rule(s, ctx, rule_id)
    policy.writer(ctx, "delete_security_group_rule")
    group = rule.security_group
    group.rules.remove(rule)
    resources.touch(group)
    s.flush()


# -- listing ----------------------------------------------------------------------------

def _common(model: Any) -> dict[str, listing.Attr]:
    return {"id": listing.Attr(model.id), "description": listing.Attr(model.description),
            "project_id": listing.Attr(model.project_id),
            "tenant_id": listing.Attr(model.project_id),
            "revision_number": listing.Attr(model.revision_number, "int"),
            "created_at": listing.Attr(model.created_at, filterable=False),
            "updated_at": listing.Attr(model.updated_at, filterable=False)}


def _shared(values: list[str]) -> ColumnElement[bool]:
    # No RBAC sharing of groups: no group is shared.
    wanted = [listing.to_bool(v, "shared") for v in values]
    return m.SecurityGroup.id.isnot(None) if False in wanted else m.SecurityGroup.id.is_(None)


def _protocol(values: list[str]) -> ColumnElement[bool]:
    return m.SecurityGroupRule.protocol.in_([rules.protocol(v) or "" for v in values])


SECURITY_GROUPS = listing.Collection("security-groups", m.SecurityGroup, {
    **_common(m.SecurityGroup), "name": listing.Attr(m.SecurityGroup.name),
    "stateful": listing.Attr(m.SecurityGroup.stateful, "bool"),
    "shared": listing.Attr(custom=_shared),
})
R = m.SecurityGroupRule
SECURITY_GROUP_RULES = listing.Collection("security-group-rules", R, {
    **_common(R), "security_group_id": listing.Attr(R.security_group_id),
    "direction": listing.Attr(R.direction), "ethertype": listing.Attr(R.ethertype),
    "protocol": listing.Attr(R.protocol, custom=_protocol),
    "port_range_min": listing.Attr(R.port_range_min, "int"),
    "port_range_max": listing.Attr(R.port_range_max, "int"),
    "remote_ip_prefix": listing.Attr(R.remote_ip_prefix),
    "remote_group_id": listing.Attr(R.remote_group_id),
    # No address groups: no rule has one.
    "remote_address_group_id": listing.Attr(custom=lambda values: R.id.is_(None),
                                            sortable=False),
})


# -- ports ------------------------------------------------------------------------------

def _groups_for(s: Session, ctx: RequestContext | None, project_id: str, ids: list[str]
                ) -> list[m.SecurityGroup]:
    out: list[m.SecurityGroup] = []
    for group_id in dict.fromkeys(ids):
        group = s.get(m.SecurityGroup, group_id)
        if group is None or (group.project_id != project_id and
                             not (ctx is not None and ctx.is_admin)):
            raise group_not_found(group_id)
        out.append(group)
    return out


def _one_statefulness(groups: list[m.SecurityGroup]) -> None:
    """Neutron's rule: a port's groups are all stateful or all stateless (409)."""
    if len({bool(g.stateful) for g in groups}) > 1:
        raise e.conflict("SecurityGroupConflict", "Error Cannot apply both stateful and "
                         "stateless security groups on the same port at the same time "
                         "while attempting the operation.")


def _needs_security(port: m.Port) -> None:
    if not port.port_security_enabled:
        raise e.typed_bad_request(
            "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled "
            "and port must have an IP address in order to use security groups.",
            "security_groups")


def join_new_port(s: Session, ctx: RequestContext | None, port: m.Port,
                  body: dict[str, Any]) -> None:
    """The groups of a port being created: those named, else the project's default."""
    if "security_groups" in body and body["security_groups"] is not None:
        groups = _groups_for(s, ctx, port.project_id, list(body["security_groups"]))
        _one_statefulness(groups)
        if groups:
            _needs_security(port)
        port.security_groups = groups
    elif port.port_security_enabled and not port.device_owner.startswith("network:"):
        port.security_groups = [s.get_one(m.SecurityGroup,
                                          ensure_default(s, port.project_id))]


def update_port_groups(s: Session, ctx: RequestContext | None, port: m.Port,
                       body: dict[str, Any]) -> None:
    """A port update's ``security_groups`` and ``port_security_enabled``, checked together
    (called after port_security_enabled has been applied)."""
    if "security_groups" in body:
        groups = _groups_for(s, ctx, port.project_id, list(body["security_groups"] or []))
        _one_statefulness(groups)
        if groups and not port.port_security_enabled:
            if body.get("port_security_enabled") is False:
                raise _has_groups()
            _needs_security(port)
        port.security_groups = groups
    elif body.get("port_security_enabled") is False and port.security_groups:
        raise _has_groups()


def _has_groups() -> Exception:
    return e.conflict("PortSecurityPortHasSecurityGroup", "Port has security group "
                      "associated. Cannot disable port security or IP address until security "
                      "group is removed.")


def group_ids(port: m.Port) -> list[str]:
    return [g.id for g in port.security_groups]


# -- what the data plane enforces -------------------------------------------------------

# Port security off: no filtering at all. Returned as rules allowing everything, so
# a data plane that only ever turns rules into "accept" lines filters nothing; the
# port's port_security_enabled (False) says the same for one that checks it.
NO_FILTERING: list[dict[str, Any]] = [
    {"direction": direction, "ethertype": ether, "protocol": None, "port_range_min": None,
     "port_range_max": None, "remote_ip_prefix": None}
    for direction in ("ingress", "egress") for ether in ("IPv4", "IPv6")]


def _member_prefixes(s: Session, group_id: str, ether: str) -> list[str]:
    version = 4 if ether == "IPv4" else 6
    out: list[str] = []
    members = s.scalars(select(m.Port).join(
        m.PortSecurityGroup, m.PortSecurityGroup.port_id == m.Port.id).where(
        m.PortSecurityGroup.security_group_id == group_id).order_by(m.Port.id))
    for member in members:
        addresses = [a.ip_address for a in member.fixed_ips] + [
            pair["ip_address"] for pair in member.allowed_address_pairs or []]
        for address in addresses:
            net = ipaddress.ip_network(address, strict=False)
            if net.version == version and str(net) not in out:
                out.append(str(net))
    return out


def _canonical_protocol(rule: m.SecurityGroupRule) -> str | None:
    """A name the firewall knows ("tcp", "ipv6-icmp") or the number as a string."""
    number = rules.protocol_number(rule.protocol)
    if number is None:
        return None
    if number == 58 or (number == 1 and rule.ethertype == "IPv6"):
        return "ipv6-icmp"
    names = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 132: "sctp", 136: "udplite"}
    return names.get(number, str(number))


def rules_for_port(s: Session, port: m.Port) -> list[dict[str, Any]]:
    """The rules that filter ``port``'s traffic, remote groups expanded into prefixes.

    Each rule: ``{direction: "ingress"|"egress", ethertype: "IPv4"|"IPv6", protocol:
    None (any) | "tcp" | "udp" | "icmp" | "ipv6-icmp" | … | "<number>", port_range_min,
    port_range_max (ICMP: type and code), remote_ip_prefix: None (anywhere) | CIDR}``:
    traffic matching any rule is allowed, all else dropped (a port in no group
    allows nothing). A rule with a remote group becomes one rule per member address
    (none if the group has no members). Port security off: ``NO_FILTERING``.
    """
    if not port.port_security_enabled:
        return [dict(r) for r in NO_FILTERING]
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for group in port.security_groups:
        for rule in group.rules:
            base = {"direction": rule.direction, "ethertype": rule.ethertype,
                    "protocol": _canonical_protocol(rule),
                    "port_range_min": rule.port_range_min,
                    "port_range_max": rule.port_range_max}
            if rule.remote_group_id:
                prefixes: list[str | None] = list(
                    _member_prefixes(s, rule.remote_group_id, rule.ethertype))
            else:
                cidr = rules.normalized_cidr(rule.remote_ip_prefix)
                prefixes = [None if cidr in rules.ANY_PREFIX else cidr]
            for prefix in prefixes:
                item = {**base, "remote_ip_prefix": prefix}
                key = tuple(item.values())
                if key not in seen:
                    seen.add(key)
                    out.append(item)
    return out


# -- for Compute ------------------------------------------------------------------------

def find_for_project(s: Session, project_id: str, name_or_id: str) -> m.SecurityGroup:
    """A group of the project by id or name, as Nova finds one (the default group is
    made if it is what is asked for); Nova's 404 and 409."""
    if name_or_id == DEFAULT_NAME:
        return s.get_one(m.SecurityGroup, ensure_default(s, project_id))
    group = s.get(m.SecurityGroup, name_or_id) if isinstance(name_or_id, str) else None
    if group is not None and group.project_id == project_id:
        return group
    found = list(s.scalars(select(m.SecurityGroup).where(
        m.SecurityGroup.project_id == project_id, m.SecurityGroup.name == name_or_id)))
    if len(found) > 1:
        raise Conflict(f"Multiple security groups found matching '{name_or_id}'. Use an ID "
                       "to be more specific.", nova_type="NoUniqueMatch")
    if not found:
        raise NotFound(f"Security group {name_or_id} not found.",
                       nova_type="SecurityGroupNotFound")
    return found[0]


def check_for_server(s: Session, project_id: str, names: list[str]) -> None:
    """A server create's ``security_groups``: each must name (or be the id of) one of the
    project's groups; Nova's 400 otherwise."""
    for name in names:
        try:
            find_for_project(s, project_id, name)
        except NotFound as exc:
            raise InvalidInput(exc.message, nova_type="SecurityGroupNotFound") from None


def ids_for_new_ports(s: Session, project_id: str, names: list[str] | None
                      ) -> list[str] | None:
    """The group ids for the ports Compute creates; None (the networking default)
    when only ``default`` is asked for, as Nova leaves it to Neutron."""
    if not names or list(names) == [DEFAULT_NAME]:
        return None
    return list(dict.fromkeys(find_for_project(s, project_id, n).id for n in names))


def instance_ports(s: Session, instance_id: str) -> list[m.Port]:
    return list(s.scalars(select(m.Port).where(m.Port.device_id == instance_id)
                          .order_by(m.Port.created_at, m.Port.id)))


def instance_groups(s: Session, instance_id: str) -> list[m.SecurityGroup]:
    """The groups of an instance's ports, each once, in the order the ports have them."""
    out: dict[str, m.SecurityGroup] = {}
    for port in instance_ports(s, instance_id):
        for group in port.security_groups:
            out.setdefault(group.id, group)
    return list(out.values())


def add_to_instance(s: Session, project_id: str, instance_id: str, name_or_id: str
                    ) -> m.SecurityGroup:
    """Nova's addSecurityGroup: the group joins every port of the instance."""
    group = find_for_project(s, project_id, name_or_id)
    ports = instance_ports(s, instance_id)
    if not ports:
        raise NotFound(f"instance_id {instance_id} could not be found as device id on any "
                       "ports", nova_type="SecurityGroupNotFound")
    for port in ports:
        if not port.port_security_enabled or not port.fixed_ips:
            raise InvalidInput("Network requires port_security_enabled and subnet associated "
                               "in order to apply security groups.",
                               nova_type="SecurityGroupCannotBeApplied")
    for port in ports:
        _one_statefulness([*port.security_groups, group])  # Neutron's 409 to the update
    for port in ports:
        if group not in port.security_groups:
            port.security_groups.append(group)
            resources.touch(port)
    s.flush()
    return group


def remove_from_instance(s: Session, project_id: str, instance_id: str, name_or_id: str
                         ) -> m.SecurityGroup:
    """Nova's removeSecurityGroup: the group leaves every port of the instance it is on."""
    group = find_for_project(s, project_id, name_or_id)
    ports = [p for p in instance_ports(s, instance_id) if group in p.security_groups]
    if not ports:
        raise NotFound(f"Security group {name_or_id} not associated with the instance "
                       f"{instance_id}", nova_type="SecurityGroupNotFound")
    for port in ports:
        port.security_groups.remove(group)
        resources.touch(port)
    s.flush()
    return group
