"""Request bodies of the Networking API: JSON schemas and Neutron-style 400s.

Neutron answers a bad attribute with "Invalid input for <attr>. Reason: …" and
an unknown one with "Unrecognized attribute(s) '<attr>'"; ``body_items`` does
the same from the schemas below, for single and bulk (``{"ports": [...]}``)
requests alike.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema.exceptions import best_match

from gureum.network import errors as e
from gureum.query import parse_bool
from gureum.validation import validator_for

_NO_NUL = "^[^\x00]*$"
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed",
              "accelerator-direct", "accelerator-direct-physical")
NETWORK_TYPES = ("vxlan", "geneve", "gre", "vlan", "flat", "local")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")


def _str(max_length: int = 255, min_length: int = 0, nullable: bool = False
         ) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "maxLength": max_length,
            "minLength": min_length, "pattern": _NO_NUL}


_bool = {"type": "boolean"}
_project = _str(64, 1)
_uuid_ish = _str(64, 1)
_tags = {"type": "array", "maxItems": 100, "uniqueItems": True,
         "items": _str(255, 1)}
_ip = _str(64, 1)
_any: dict[str, Any] = {}


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


# -- networks -------------------------------------------------------------------------

_network_common = {
    "name": _str(), "description": _str(), "admin_state_up": _bool, "shared": _bool,
    "router:external": _bool, "mtu": {"type": "integer", "minimum": 68, "maximum": 65535},
    "port_security_enabled": _bool,
    "provider:network_type": {"type": "string", "enum": list(NETWORK_TYPES)},
    "provider:physical_network": _str(64, 1, nullable=True),
    "provider:segmentation_id": {"type": ["integer", "null"], "minimum": 0,
                                 "maximum": 16777215},
    "is_default": _bool, "dns_domain": _str(255), "qos_policy_id": _str(64, nullable=True),
}
network_create = _obj({**_network_common, "project_id": _project, "tenant_id": _project,
                       "availability_zone_hints": {"type": "array", "maxItems": 10,
                                                   "items": _str(255, 1)},
                       "tags": _tags})
network_update = _obj({**_network_common, "project_id": _any, "tenant_id": _any,
                       "availability_zone_hints": _any, "id": _any})
NETWORK_READ_ONLY = ("project_id", "tenant_id", "availability_zone_hints", "id")

# -- subnets --------------------------------------------------------------------------

_pool = _obj({"start": _ip, "end": _ip}, ("start", "end"))
_route = _obj({"destination": _str(64, 1), "nexthop": _ip}, ("destination", "nexthop"))
_subnet_common = {
    "name": _str(), "description": _str(),
    "gateway_ip": _str(64, 1, nullable=True),
    "allocation_pools": {"type": "array", "maxItems": 64, "items": _pool},
    "dns_nameservers": {"type": "array", "maxItems": 64, "items": _ip},
    "host_routes": {"type": "array", "maxItems": 64, "items": _route},
    "enable_dhcp": _bool, "service_types": {"type": "array", "maxItems": 16,
                                            "items": _str(255, 1)},
    "dns_publish_fixed_ip": _bool, "segment_id": {"type": "null"},
}
subnet_create = _obj({
    **_subnet_common, "network_id": _uuid_ish, "ip_version": {"enum": [4, 6]},
    "cidr": _str(64, 1), "ipv6_ra_mode": {"enum": [*IPV6_MODES, None]},
    "ipv6_address_mode": {"enum": [*IPV6_MODES, None]},
    "subnetpool_id": _str(64, nullable=True), "use_default_subnetpool": _bool,
    "prefixlen": {"type": "integer", "minimum": 0, "maximum": 128},
    "project_id": _project, "tenant_id": _project, "tags": _tags,
}, ("network_id",))
subnet_update = _obj({**_subnet_common, **{k: _any for k in (
    "network_id", "ip_version", "cidr", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
    "project_id", "tenant_id", "id")}})
SUBNET_READ_ONLY = ("network_id", "ip_version", "cidr", "ipv6_ra_mode", "ipv6_address_mode",
                    "subnetpool_id", "project_id", "tenant_id", "id")

# -- ports ----------------------------------------------------------------------------

_fixed_ip = _obj({"subnet_id": _uuid_ish, "ip_address": _ip})
_pair = _obj({"ip_address": _str(64, 1), "mac_address": _str(32, 1)}, ("ip_address",))
_port_common = {
    "name": _str(), "description": _str(), "admin_state_up": _bool,
    "mac_address": _str(32, 1),
    "fixed_ips": {"type": "array", "maxItems": 64, "items": _fixed_ip},
    "device_id": _str(255), "device_owner": _str(255),
    "binding:host_id": _str(255, nullable=True),
    "binding:profile": {"type": ["object", "null"]},
    "binding:vnic_type": {"enum": list(VNIC_TYPES)},
    "port_security_enabled": _bool,
    "allowed_address_pairs": {"type": "array", "maxItems": 64, "items": _pair},
    "security_groups": {"type": "array", "maxItems": 64, "items": _uuid_ish},
    "dns_name": _str(255), "dns_domain": _str(255),
    "qos_policy_id": _str(64, nullable=True),
    "extra_dhcp_opts": {"type": "array", "maxItems": 64, "items": _obj({
        "opt_name": _str(255, 1), "opt_value": _str(255, nullable=True),
        "ip_version": {"enum": [4, 6, "4", "6"]}}, ("opt_name",))},
}
port_create = _obj({**_port_common, "network_id": _uuid_ish, "project_id": _project,
                    "tenant_id": _project, "tags": _tags}, ("network_id",))
port_update = _obj({**_port_common, **{k: _any for k in (
    "network_id", "project_id", "tenant_id", "id")}})
PORT_READ_ONLY = ("network_id", "project_id", "tenant_id", "id")

# -- tags and quotas ------------------------------------------------------------------

tags_body = {"type": "object", "properties": {"tags": _tags}, "required": ["tags"],
             "additionalProperties": False}
QUOTA_RESOURCES = ("network", "subnet", "port", "router", "floatingip", "security_group",
                   "security_group_rule", "rbac_policy", "subnetpool")
quota_body = {"type": "object", "required": ["quota"], "additionalProperties": False,
              "properties": {"quota": _obj({
                  **{r: {"type": "integer", "minimum": -1, "maximum": 2**31 - 1}
                     for r in QUOTA_RESOURCES},
                  "check_limit": _bool, "force": _bool})}}


# Neutron converts these from strings (the CLI sends `--mtu 1400` as "1400").
INT_ATTRS = ("mtu", "provider:segmentation_id", "ip_version", "prefixlen",
             "default_prefixlen", "min_prefixlen", "max_prefixlen", "default_quota")
BOOL_ATTRS = ("admin_state_up", "shared", "router:external", "port_security_enabled",
              "is_default", "enable_dhcp", "dns_publish_fixed_ip", "use_default_subnetpool",
              "stateful")
_INT = re.compile(r"^\s*[+-]?[0-9]{1,12}\s*$")


def coerce(item: dict[str, Any]) -> dict[str, Any]:
    """Integer and boolean attributes given as strings, converted as Neutron does."""
    out = dict(item)
    for key in INT_ATTRS:
        value = out.get(key)
        if isinstance(value, str) and _INT.match(value):
            out[key] = int(value)
    for key in BOOL_ATTRS:
        value = out.get(key)
        # Neutron's convert_to_boolean: oslo's words and 0/1; anything else stays as
        # it is for the schema to refuse.
        if isinstance(value, str | int) and not isinstance(value, bool):
            parsed = parse_bool(value)
            if parsed is not None:
                out[key] = parsed
    return out


def check(schema: dict[str, Any], body: Any, prefix: str = "") -> Any:
    """Validate ``body``; raise Neutron's 400 naming the offending attribute."""
    errors = list(validator_for(schema).iter_errors(body))
    if not errors:
        return body
    error = best_match(errors)
    assert error is not None
    path = [str(p) for p in error.absolute_path if not isinstance(p, int)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in allowed)
        names = ", ".join(f"'{x}'" for x in extra)
        if path:  # inside an attribute: name the attribute
            raise e.invalid_attribute(path[-1], f"Unrecognized attribute(s) {names}")
        raise e.bad_request(f"Unrecognized attribute(s) {names}", extra[0] if extra else None)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [n for n in error.validator_value if n not in error.instance]
        name = missing[0] if missing else (path[-1] if path else prefix)
        raise e.bad_request(f"Failed to parse request. Required attribute '{name}' not "
                            "specified", name)
    field = path[-1] if path else prefix or "the request body"
    value = error.instance
    if error.validator == "pattern":
        reason = "NUL characters are not allowed"
    elif error.validator in ("maxLength", "minLength"):
        reason = f"'{value}' is not a valid string ({error.message})"
    else:
        reason = error.message
    raise e.invalid_attribute(field, reason)


def body_items(body: Any, singular: str, plural: str, schema: dict[str, Any]
               ) -> tuple[list[dict[str, Any]], bool]:
    """The resource dicts of a create body and whether it was a bulk request."""
    if not isinstance(body, dict) or (singular not in body and plural not in body):
        raise e.bad_request(f"Resource body required: expected '{singular}' or '{plural}'.")
    if len(body) != 1:
        raise e.bad_request(f"Unrecognized attribute(s) "
                            f"{', '.join(repr(k) for k in body if k not in (singular, plural))}"
                            if any(k not in (singular, plural) for k in body) else
                            f"Use either '{singular}' or '{plural}', not both.")
    if singular in body:
        item = body[singular]
        if not isinstance(item, dict):
            raise e.bad_request(f"Invalid input for {singular}: an object is expected.")
        return [check(schema, coerce(item), singular)], False
    items = body[plural]
    if not isinstance(items, list) or not items or len(items) > 1000:
        raise e.bad_request(f"Invalid input for {plural}: a list of 1 to 1000 objects is "
                            "expected.")
    if not all(isinstance(item, dict) for item in items):
        raise e.bad_request(f"Invalid input for {plural}: an object is expected.")
    return [check(schema, coerce(item), singular) for item in items], True


def update_item(body: Any, singular: str, schema: dict[str, Any],
                read_only: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) != {singular} or \
            not isinstance(body[singular], dict):
        raise e.bad_request(f"Resource body required: expected an object '{singular}'.")
    item: dict[str, Any] = check(schema, coerce(body[singular]), singular)
    for key in read_only:
        if key in item:
            raise e.read_only(key)
    return item
