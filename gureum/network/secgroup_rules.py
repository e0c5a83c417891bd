"""Security group rules: what a valid rule is, when two rules are the same, their wire shape.

Neutron's checks, with its error types: a protocol is one of its names or a
number 0-255 (kept as given, a number as a string); ports need a protocol, and
only TCP, UDP, UDP-Lite, SCTP and DCCP have port ranges (min <= max, never 0);
for ICMP the range is the type and code (0-255, no code without a type); the
remote side is a prefix or a group, never both, and a prefix must be of the
rule's ethertype. A rule equal to one the group has (same direction,
ethertype, protocol by number, ports, normalized prefix, remote group) is a
409 naming the existing one.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gureum.netagent.state import ICMP_PROTOCOLS, IP_PROTOCOLS, PORT_PROTOCOLS
from gureum.network import errors as e
from gureum.network import models as m
from gureum.network import views

# neutron_lib.constants.IP_PROTOCOL_MAP, shared with the data planes
PROTOCOLS = IP_PROTOCOLS
ANY_PREFIX = {"0.0.0.0/0", "::/0"}
DIRECTIONS = ("ingress", "egress")

_str = {"type": "string", "maxLength": 255, "pattern": "^[^\x00]*$"}
_id = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^\x00]*$"}
_port = {"type": ["integer", "string", "null"]}
rule_create: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["security_group_id", "direction"],
    "properties": {
        "security_group_id": _id, "direction": {"enum": list(DIRECTIONS)},
        "ethertype": {"type": "string"}, "protocol": {"type": ["string", "integer", "null"]},
        "port_range_min": _port, "port_range_max": _port,
        "remote_ip_prefix": {"type": ["string", "null"], "maxLength": 64},
        "remote_group_id": {"type": ["string", "null"], "maxLength": 64},
        "description": _str, "project_id": _id, "tenant_id": _id,
    },
}
RULE_READ_ONLY = ("security_group_id", "direction", "ethertype", "protocol",
                  "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
                  "project_id", "tenant_id", "id")
rule_update: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"description": _str, **{k: {} for k in RULE_READ_ONLY}},
}


def ethertype(value: Any) -> str:
    for known in ("IPv4", "IPv6"):
        if isinstance(value, str) and value.lower() == known.lower():
            return known
    raise e.typed_bad_request("SecurityGroupRuleInvalidEtherType", f"Security group rule "
                              f"for ethertype '{value}' not supported. Allowed values are "
                              "['IPv4', 'IPv6'].", "ethertype")


def protocol(value: Any) -> str | None:
    """The protocol as Neutron stores it: None (any), a lower-case name, or "0".."255"."""
    if value is None or value == "any" or value == "":
        return None
    text = str(value).strip().lower()
    if text in PROTOCOLS:
        return text
    try:
        number = int(text)
    except ValueError:
        number = -1
    if 0 <= number <= 255:
        return str(number)
    raise e.typed_bad_request(
        "SecurityGroupRuleInvalidProtocol", f"Security group rule protocol {value} not "
        f"supported. Only protocol values {[None, *sorted(PROTOCOLS)]} and integer "
        "representations [0 to 255] are supported.", "protocol")


def protocol_number(value: str | None) -> int | None:
    if value is None:
        return None
    return PROTOCOLS[value] if value in PROTOCOLS else int(value)


def _port_value(value: Any, field: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 0 <= number <= 65535:
        raise e.typed_bad_request("SecurityGroupInvalidPortValue",
                                  f"Invalid value for port {value}", field)
    return number


def _prefix(value: Any, ether: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise e.invalid_attribute("remote_ip_prefix",
                                  f"'{value}' is not a valid IP subnet") from None
    if f"IPv{iface.version}" != ether:
        raise e.typed_bad_request("SecurityGroupRuleParameterConflict", "Conflicting value "
                                  f"ethertype {ether} for CIDR {value}", "remote_ip_prefix")
    return f"{iface.ip}/{iface.network.prefixlen}"


def normalized_cidr(prefix: str | None) -> str | None:
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


def _check_ports(proto: str | None, low: int | None, high: int | None) -> None:
    if low is None and high is None:
        return
    number = protocol_number(proto)
    if number is None:
        raise e.typed_bad_request("SecurityGroupProtocolRequiredWithPorts", "Must also "
                                  "specify protocol if port range is given.", "protocol")
    if number in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise e.typed_bad_request("SecurityGroupInvalidPortValue",
                                      "Invalid value for port 0", "port_range_min")
        if low is None or high is None or low > high:
            raise e.typed_bad_request("SecurityGroupInvalidPortRange", "For TCP/UDP "
                                      "protocols, port_range_min must be <= port_range_max",
                                      "port_range_min")
        return
    if number in ICMP_PROTOCOLS:
        for value, field, attr in ((low, "type", "port_range_min"),
                                   (high, "code", "port_range_max")):
            if value is not None and not 0 <= value <= 255:
                raise e.typed_bad_request("SecurityGroupInvalidIcmpValue", f"Invalid value "
                                          f"for ICMP {field} ({attr}) {value}. It must be 0 "
                                          "to 255.", attr)
        if low is None:
            raise e.typed_bad_request("SecurityGroupMissingIcmpType", f"ICMP code "
                                      f"(port-range-max) {high} is provided but ICMP type "
                                      "(port-range-min) is missing.", "port_range_min")
        return
    raise e.typed_bad_request("SecurityGroupInvalidProtocolForPort", f"Invalid protocol "
                              f"{proto} for port range, only supported for TCP, UDP, "
                              "UDPLITE, SCTP and DCCP.", "protocol")


def validated(body: dict[str, Any]) -> dict[str, Any]:
    """The rule's attributes, checked and converted (the remote group is not looked up)."""
    ether = ethertype(body.get("ethertype") or "IPv4")
    proto = protocol(body.get("protocol"))
    if ether == "IPv6" and proto in ("icmp", "icmpv6"):
        proto = "ipv6-icmp"  # Neutron's canonical name for ICMP over IPv6
    number = protocol_number(proto)
    if ether == "IPv4" and number == 58:
        raise e.typed_bad_request("SecurityGroupEthertypeConflictWithProtocol", "Invalid "
                                  f"ethertype {ether} for protocol {proto}.", "ethertype")
    low = _port_value(body.get("port_range_min"), "port_range_min")
    high = _port_value(body.get("port_range_max"), "port_range_max")
    _check_ports(proto, low, high)
    prefix = _prefix(body.get("remote_ip_prefix"), ether)
    if prefix is not None and body.get("remote_group_id"):
        raise e.typed_bad_request("SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only "
                                  "remote_ip_prefix or remote_group_id may be provided.",
                                  "remote_group_id")
    return {"direction": body["direction"], "ethertype": ether, "protocol": proto,
            "port_range_min": low, "port_range_max": high, "remote_ip_prefix": prefix,
            "remote_group_id": body.get("remote_group_id") or None,
            "description": body.get("description") or ""}


def same_key(rule: m.SecurityGroupRule | m.DefaultSecurityGroupRule | dict[str, Any]
             ) -> tuple[Any, ...]:
    """What makes two rules of a group the same rule (Neutron's duplicate check)."""
    def get(name: str) -> Any:
        return rule[name] if isinstance(rule, dict) else getattr(rule, name)
    ether = get("ethertype")
    number = protocol_number(get("protocol"))
    cidr = normalized_cidr(get("remote_ip_prefix"))
    return (get("direction"), ether, number, get("port_range_min"), get("port_range_max"),
            None if cidr in ANY_PREFIX else cidr, get("remote_group_id"))


def view(r: m.SecurityGroupRule, default_group: bool = False) -> dict[str, Any]:
    return {
        "id": r.id, "security_group_id": r.security_group_id, "direction": r.direction,
        "ethertype": r.ethertype, "protocol": r.protocol,
        "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "normalized_cidr": normalized_cidr(r.remote_ip_prefix),
        "remote_group_id": r.remote_group_id, "remote_address_group_id": None,
        "belongs_to_default_sg": default_group, "description": r.description,
        "tenant_id": r.project_id, "project_id": r.project_id,
        "revision_number": r.revision_number, "created_at": views.iso(r.created_at),
        "updated_at": views.iso(r.updated_at),
    }
