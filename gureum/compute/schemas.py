"""JSON schemas of compute request bodies (after Nova's own schemas)."""

from __future__ import annotations

from typing import Any

_name = {"type": "string", "minLength": 1, "maxLength": 255,
         "pattern": r"^(?! )[\s\S]*(?<! )$"}
_uuidish = {"type": "string", "minLength": 1, "maxLength": 255}
_boolean: dict[str, Any] = {"type": ["boolean", "string"],
                            "enum": [True, False, "True", "False", "true", "false", "1",
                                     "0", "yes", "no", "on", "off", "t", "f", "y", "n"]}
_count = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1}
_metadata = {"type": "object",
             "patternProperties": {"^.{1,255}$": {"type": "string", "maxLength": 255}},
             "additionalProperties": False}
_tag = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}

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
                "name": _name,
                "imageRef": {"type": "string", "maxLength": 255},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": _metadata,
                "networks": {"oneOf": [
                    {"type": "array", "items": _network},
                    {"type": "string", "enum": ["auto", "none"]}]},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "key_name": {"type": "string", "minLength": 1, "maxLength": 255},
                "user_data": {"type": "string"},
                "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
                "block_device_mapping_v2": {"type": "array", "items": _bdm_v2},
                "block_device_mapping": {"type": "array"},
                "min_count": _count, "max_count": _count,
                "return_reservation_id": _boolean,
                "security_groups": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}},
                    "additionalProperties": False}},
                "config_drive": _boolean,
                "description": {"type": ["string", "null"], "maxLength": 255},
                "tags": {"type": "array", "items": _tag, "maxItems": 50},
                "trusted_image_certificates": {"type": ["array", "null"]},
                "host": {"type": "string", "minLength": 1, "maxLength": 255},
                "hypervisor_hostname": {"type": "string", "minLength": 1, "maxLength": 255},
                "hostname": {"type": "string", "minLength": 1, "maxLength": 255},
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
            "name": _name,
            "description": {"type": ["string", "null"], "maxLength": 255},
            "accessIPv4": {"type": "string", "format": "ipv4"},
            "accessIPv6": {"type": "string", "format": "ipv6"},
            "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            "hostname": {"type": "string", "minLength": 1, "maxLength": 255},
        },
        "additionalProperties": False,
    }},
    "required": ["server"],
    "additionalProperties": False,
}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "t", "yes", "y", "on")
