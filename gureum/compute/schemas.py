"""JSON schemas of compute request bodies, with Nova's parameter types.

The types below are Nova's (nova/api/validation/parameter_types.py), written
again: a name is printable with no leading or trailing space (``gureum.names``),
a boolean is one of Nova's spellings, metadata keys come from a small character
set, a hostname is an RFC 1123 label (2.90) or an FQDN (2.94). Where a field
changes with the microversion, a function returns the schema for the request's
version; each variant is built once, because validators are cached per schema.
"""

from __future__ import annotations

import copy
from typing import Any

from gureum.query import parse_bool

Version = tuple[int, int]

name: dict[str, Any] = {"type": "string", "format": "name", "minLength": 1, "maxLength": 255}
name_with_spaces: dict[str, Any] = {"type": "string",
                                    "format": "name_with_leading_trailing_spaces",
                                    "minLength": 1, "maxLength": 255}
az_name: dict[str, Any] = {"type": "string", "format": "az_name", "minLength": 1,
                           "maxLength": 255}
description: dict[str, Any] = {"type": ["string", "null"], "format": "printable",
                               "maxLength": 255}
boolean: dict[str, Any] = {
    "type": ["boolean", "string"],
    "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
             False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"]}
# 2.90: one RFC 1123 label; 2.94: a fully qualified name (underscores allowed, as Nova).
hostname: dict[str, Any] = {"type": "string", "minLength": 2, "maxLength": 63,
                            "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"}
fqdn: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": "^[a-zA-Z0-9-._]*$"}
metadata: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}}
non_negative_integer: dict[str, Any] = {"type": ["integer", "string"], "pattern": "^[0-9]*$",
                                        "minimum": 0, "minLength": 1}
_uuidish = {"type": "string", "minLength": 1, "maxLength": 255}
_boolean = boolean
_count = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1}
_tag = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}

# Key pair names: Nova's name, and only these characters (2.92 adds "@" and ".").
keypair_name: dict[str, Any] = {"allOf": [name, {"type": "string",
                                                 "pattern": r"^[_\- a-zA-Z0-9]+$"}]}
keypair_name_v292: dict[str, Any] = {"allOf": [name, {"type": "string",
                                                      "pattern": r"^[_\-\@\. a-zA-Z0-9]+$"}]}

_network = {"type": "object", "properties": {
    "uuid": _uuidish, "port": {"type": ["string", "null"]},
    "fixed_ip": {"type": "string"}, "tag": _tag,
}, "additionalProperties": False}

_bdm_v2 = {"type": "object", "properties": {
    "virtual_name": {"type": "string", "maxLength": 255},
    "volume_id": {"type": "string"}, "snapshot_id": {"type": "string"},
    "volume_size": {"type": ["integer", "string"]},
    "device_name": {"type": "string", "minLength": 1, "maxLength": 255,
                    "pattern": "^[a-zA-Z0-9._/-]*$"},
    "delete_on_termination": _boolean, "no_device": {},
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[a-zA-Z0-9._-]*$"},
    "image_id": {"type": "string"},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "guest_format": {"type": "string", "maxLength": 255},
    "device_type": {"type": "string", "maxLength": 255},
    "disk_bus": {"type": "string", "maxLength": 255},
    "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
    "tag": _tag, "volume_type": {"type": ["string", "null"]},
}, "additionalProperties": False}

_hints = {"type": "object", "properties": {
    "group": {"oneOf": [{"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string"}, "maxItems": 1}]},
    "same_host": {"type": ["string", "array"], "items": {"type": "string"}},
    "different_host": {"type": ["string", "array"], "items": {"type": "string"}},
    "query": {"type": ["string", "object"]},
    "build_near_host_ip": {"type": "string"}, "cidr": {"type": "string"},
}, "additionalProperties": True}

server_create = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": name,
                "imageRef": {"type": "string", "maxLength": 255},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": metadata,
                "networks": {"oneOf": [
                    {"type": "array", "items": _network},
                    {"type": "string", "enum": ["auto", "none"]}]},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "key_name": name,
                "user_data": {"type": "string"},
                "availability_zone": name,
                "block_device_mapping_v2": {"type": "array", "items": _bdm_v2},
                "block_device_mapping": {"type": "array"},
                "min_count": _count, "max_count": _count,
                "return_reservation_id": _boolean,
                "security_groups": {"type": "array", "items": {
                    "type": "object", "properties": {"name": name},
                    "additionalProperties": False}},
                "config_drive": _boolean,
                "description": description,
                "tags": {"type": "array", "items": _tag, "maxItems": 50},
                "trusted_image_certificates": {"type": ["array", "null"]},
                "host": {"type": "string", "minLength": 1, "maxLength": 255},
                "hypervisor_hostname": {"type": "string", "minLength": 1, "maxLength": 255},
                "hostname": hostname,
                "personality": {"type": "array"},
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": _hints,
        "OS-SCH-HNT:scheduler_hints": _hints,
    },
    "required": ["server"],
    "additionalProperties": False,
}

server_update = {
    "type": "object",
    "properties": {"server": {
        "type": "object",
        "properties": {
            "name": name,
            "description": description,
            "accessIPv4": {"type": "string", "format": "ipv4"},
            "accessIPv6": {"type": "string", "format": "ipv6"},
            "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            "hostname": hostname,
        },
        "additionalProperties": False,
    }},
    "required": ["server"],
    "additionalProperties": False,
}


server_rebuild = {
    "type": "object", "required": ["imageRef"], "additionalProperties": False,
    "properties": {"imageRef": {"type": "string", "minLength": 1},
                   "name": name,
                   "adminPass": {"type": "string"},
                   "metadata": metadata,
                   "preserve_ephemeral": boolean,
                   "description": description,
                   "key_name": {"type": ["string", "null"]},
                   "user_data": {"type": ["string", "null"]},
                   "OS-DCF:diskConfig": {"type": "string"},
                   "accessIPv4": {"type": "string"},
                   "accessIPv6": {"type": "string"},
                   "hostname": hostname,
                   "trusted_image_certificates": {"type": ["array", "null"]}}}

create_image = {"type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {"name": name, "metadata": metadata}}
create_backup = {"type": "object", "required": ["name", "backup_type", "rotation"],
                 "additionalProperties": False,
                 "properties": {"name": name, "backup_type": {"type": "string"},
                                "rotation": non_negative_integer, "metadata": metadata}}


# Fields of a server create or rebuild body and the microversion that brought them.
CREATE_SINCE = {"description": "2.19", "tags": "2.52", "trusted_image_certificates": "2.63",
                "host": "2.74", "hypervisor_hostname": "2.74", "hostname": "2.90"}
REBUILD_SINCE = {"description": "2.19", "key_name": "2.54", "user_data": "2.57",
                 "trusted_image_certificates": "2.63", "hostname": "2.90"}


def _with_fqdn(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    props = out
    for key in path:
        props = props["properties"][key]
    props["properties"]["hostname"] = fqdn
    return out


_create_v294 = _with_fqdn(server_create, "server")
_update_v294 = _with_fqdn(server_update, "server")
_rebuild_v294 = _with_fqdn(server_rebuild)


def server_create_for(version: Version) -> dict[str, Any]:
    return _create_v294 if version >= (2, 94) else server_create


def server_update_for(version: Version) -> dict[str, Any]:
    return _update_v294 if version >= (2, 94) else server_update


def server_rebuild_for(version: Version) -> dict[str, Any]:
    return _rebuild_v294 if version >= (2, 94) else server_rebuild


def keypair_name_for(version: Version) -> dict[str, Any]:
    return keypair_name_v292 if version >= (2, 92) else keypair_name


def to_bool(value: Any) -> bool:
    """A body boolean the schema has accepted (one of Nova's spellings)."""
    return bool(parse_bool(value))
