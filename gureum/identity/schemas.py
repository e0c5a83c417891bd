"""JSON schemas of identity request bodies (after Keystone's own schemas)."""

from __future__ import annotations

from typing import Any

# Printable text: no NUL or other control characters (Keystone's names only ask for
# one non-blank character; a NUL in a name breaks clients, logs and other databases).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _name(max_length: int = 255) -> dict[str, Any]:
    """A name: printable, at least one non-blank character."""
    return {"type": "string", "minLength": 1, "maxLength": max_length,
            "pattern": r"^(?=.*\S)[^\x00-\x1f\x7f]+$"}


def _text(max_length: int = 255, min_length: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length,
            "pattern": PRINTABLE}


_id = {"type": "string", "minLength": 1, "maxLength": 64}
_nullable_id = {"type": ["string", "null"], "minLength": 1, "maxLength": 64}
_description = {"type": ["string", "null"]}
_enabled = {"type": "boolean"}
_tag = {"type": "string", "minLength": 1, "maxLength": 255,
        "pattern": r"^[^,/\x00-\x1f\x7f]*$"}
_tags = {"type": "array", "items": _tag, "maxItems": 80, "uniqueItems": True}
tag = _tag
project_tags_replace = {"type": "object", "required": ["tags"], "additionalProperties": False,
                        "properties": {"tags": {**_tags, "uniqueItems": False}}}
_nullable_bool = {"type": ["boolean", "null"]}
# Resource options as Keystone registers them: known names only, each nullable
# (null removes the option).
_options = {"type": "object", "properties": {"immutable": _nullable_bool},
            "additionalProperties": False}
_mfa_rules = {"type": ["array", "null"], "uniqueItems": True, "items": {
    "type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}}}
_user_options = {"type": "object", "additionalProperties": False, "properties": {
    "ignore_change_password_upon_first_use": _nullable_bool,
    "ignore_password_expiry": _nullable_bool,
    "ignore_lockout_failure_attempts": _nullable_bool,
    "lock_password": _nullable_bool,
    "ignore_user_inactivity": _nullable_bool,
    "multi_factor_auth_rules": _mfa_rules,
    "multi_factor_auth_enabled": _nullable_bool,
}}


def wrapped(key: str, body: dict[str, Any], required: list[str] | None = None
            ) -> dict[str, Any]:
    inner = dict(body)
    if required:
        inner["required"] = required
    return {"type": "object", "properties": {key: inner}, "required": [key]}


def _obj(props: dict[str, Any], additional: bool = True) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": additional}


_domain_props = {"name": _name(64), "description": _description, "enabled": _enabled,
                 "tags": _tags, "options": _options}
domain_create = wrapped("domain", _obj(_domain_props), ["name"])
domain_update = wrapped("domain", {**_obj(_domain_props), "minProperties": 1})

_project_props = {"name": _name(64), "description": _description, "enabled": _enabled,
                  "domain_id": _nullable_id, "parent_id": _nullable_id,
                  "is_domain": _enabled, "tags": _tags, "options": _options}
project_create = wrapped("project", _obj(_project_props), ["name"])
project_update = wrapped("project", {**_obj({
    k: v for k, v in _project_props.items() if k not in ("domain_id", "parent_id")}),
    "minProperties": 1})

_password = {"type": ["string", "null"], "maxLength": 4096}
_user_props = {"name": _name(255), "domain_id": _id, "enabled": _enabled,
               "password": _password, "default_project_id": _nullable_id,
               "description": _description, "email": {"type": ["string", "null"]},
               "options": _user_options}
user_create = wrapped("user", _obj(_user_props), ["name"])
user_update = wrapped("user", {**_obj(_user_props), "minProperties": 1})
password_change = wrapped("user", _obj({
    "password": {"type": "string", "minLength": 1, "maxLength": 4096},
    "original_password": {"type": "string", "maxLength": 4096},
}, additional=False), ["password", "original_password"])

_group_props = {"name": _name(64), "domain_id": _id, "description": _description}
group_create = wrapped("group", _obj(_group_props), ["name"])
group_update = wrapped("group", {**_obj(_group_props), "minProperties": 1})

_role_props = {"name": _name(255), "domain_id": _nullable_id, "description": _description,
               "options": _options}
role_create = wrapped("role", _obj(_role_props), ["name"])
role_update = wrapped("role", {**_obj(_role_props), "minProperties": 1})

region_id = _text(255, 1)
_region_props = {"id": region_id,
                 "description": _description, "parent_region_id": _nullable_id}
region_create = wrapped("region", _obj(_region_props))
region_update = wrapped("region", {**_obj(_region_props), "minProperties": 1})

_service_props = {"type": _name(255), "name": _text(255),
                  "description": _description, "enabled": _enabled}
service_create = wrapped("service", _obj(_service_props), ["type"])
service_update = wrapped("service", {**_obj(_service_props), "minProperties": 1})

_interface = {"type": "string", "enum": ["public", "internal", "admin"]}
_url = {"type": "string", "minLength": 1, "maxLength": 2048,
        "pattern": r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$"}
_endpoint_props = {"service_id": _id, "interface": _interface, "url": _url,
                   "region_id": _nullable_id, "region": _nullable_id, "enabled": _enabled}
endpoint_create = wrapped("endpoint", _obj(_endpoint_props), ["service_id", "interface", "url"])
endpoint_update = wrapped("endpoint", {**_obj(_endpoint_props), "minProperties": 1})

# An access rule names an existing rule by id, or gives service, path and method.
_access_rule = {
    "type": "object",
    "properties": {
        "id": _id,
        "service": {"type": "string", "minLength": 1, "maxLength": 64,
                    "pattern": "^[a-zA-Z0-9_-]+$"},
        "path": {"type": "string", "maxLength": 225, "pattern": "^/"},
        "method": {"type": "string",
                   "enum": ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]},
    },
    "anyOf": [{"required": ["id"]}, {"required": ["service", "path", "method"]}],
}
_role_ref = {"type": "object", "properties": {"id": _id, "name": _name(255)},
             "minProperties": 1}
app_cred_create = wrapped("application_credential", _obj({
    "name": _name(255), "description": _description,
    "secret": {"type": ["string", "null"], "minLength": 1, "maxLength": 4096},
    "expires_at": {"type": ["string", "null"]},
    "roles": {"type": "array", "items": _role_ref},
    "unrestricted": {"type": ["boolean", "null"]},
    "access_rules": {"type": "array", "items": _access_rule},
}), ["name"])

_user_ref = {
    "type": "object",
    "properties": {
        "id": _id, "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "domain": {"type": "object", "properties": {"id": _id, "name": _name(64)},
                   "minProperties": 1},
        "password": {"type": "string", "maxLength": 4096},
    },
    "anyOf": [{"required": ["id"]}, {"required": ["name", "domain"]}],
}
_scope_ref = {"type": "object", "properties": {
    "id": _id, "name": _name(64),
    "domain": {"type": "object", "properties": {"id": _id, "name": _name(64)},
               "minProperties": 1},
}, "minProperties": 1}

auth = {
    "type": "object",
    "required": ["auth"],
    "properties": {"auth": {
        "type": "object",
        "required": ["identity"],
        "properties": {
            "identity": {
                "type": "object",
                "required": ["methods"],
                "properties": {
                    "methods": {"type": "array", "minItems": 1,
                                "items": {"type": "string"}},
                    "password": {"type": "object", "required": ["user"],
                                 "properties": {"user": {**_user_ref,
                                                         "required": ["password"]}}},
                    "token": {"type": "object", "required": ["id"],
                              "properties": {"id": {"type": "string", "minLength": 1}}},
                    "application_credential": {
                        "type": "object", "required": ["secret"],
                        "properties": {"id": _id, "name": _name(255), "user": _user_ref,
                                       "secret": {"type": "string", "maxLength": 4096}},
                        "anyOf": [{"required": ["id"]}, {"required": ["name", "user"]}],
                    },
                },
            },
            "scope": {"anyOf": [
                {"type": "string", "enum": ["unscoped"]},
                {"type": "object", "properties": {
                    "project": _scope_ref,
                    "domain": {"type": "object", "properties": {"id": _id, "name": _name(64)},
                               "minProperties": 1},
                    "system": {"type": "object",
                               "properties": {"all": {"type": "boolean", "enum": [True]}},
                               "required": ["all"]},
                    "OS-TRUST:trust": {"type": "object"},
                }, "minProperties": 1, "maxProperties": 1},
            ]},
        },
    }},
}

# -- unified limits (keystone/limit/schema.py) ------------------------------------------

_limit_int = {"type": "integer", "minimum": -1, "maximum": 0x7FFFFFFF}
_region_ref = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_registered_limit_props = {"service_id": _id, "region_id": _region_ref,
                           "resource_name": _name(255), "default_limit": _limit_int,
                           "description": _description}
registered_limits_create = {
    "type": "object", "required": ["registered_limits"], "additionalProperties": False,
    "properties": {"registered_limits": {"type": "array", "minItems": 1, "items": {
        **_obj(_registered_limit_props, additional=False),
        "required": ["service_id", "resource_name", "default_limit"]}}},
}
registered_limit_update = wrapped("registered_limit", _obj(_registered_limit_props,
                                                           additional=False))
limits_create = {
    "type": "object", "required": ["limits"], "additionalProperties": False,
    "properties": {"limits": {"type": "array", "minItems": 1, "items": {
        **_obj({"project_id": _nullable_id, "domain_id": _nullable_id,
                "service_id": _id, "region_id": _region_ref, "resource_name": _name(255),
                "resource_limit": _limit_int, "description": _description},
               additional=False),
        "required": ["service_id", "resource_name", "resource_limit"]}}},
}
limit_update = wrapped("limit", _obj({"resource_limit": _limit_int,
                                      "description": _description}, additional=False))

# -- endpoint groups (OS-EP-FILTER) -------------------------------------------------------

_endpoint_group_filters = _obj({"service_id": _id, "region_id": _region_ref,
                                "interface": _interface}, additional=False)
_endpoint_group_props = {"name": _name(255), "description": _description,
                         "filters": _endpoint_group_filters}
endpoint_group_create = wrapped("endpoint_group", _obj(_endpoint_group_props),
                                ["name", "filters"])
endpoint_group_update = wrapped("endpoint_group", {**_obj(_endpoint_group_props),
                                                   "minProperties": 1})

# -- credentials (keystone/credential/schema.py) ------------------------------------------

_credential_props = {"blob": {"type": "string"}, "project_id": _nullable_id,
                     "type": {"type": "string", "minLength": 1, "maxLength": 255},
                     "user_id": _id}
credential_create = wrapped("credential", {
    **_obj({**_credential_props, "id": {"type": "string"}}),
    "if": {"properties": {"type": {"const": "ec2"}}},
    "then": {"required": ["blob", "type", "user_id", "project_id"],
             "properties": {"project_id": _id}},
}, ["blob", "type", "user_id"])
credential_update = wrapped("credential", {**_obj(_credential_props), "minProperties": 1})
ec2_credential_create = {"type": "object", "required": ["tenant_id"],
                         "properties": {"tenant_id": _id}}

# -- registries: policies (keystone/policy/schema.py), OAuth1 consumers ----------------------

_policy_props = {"blob": {"type": "string"}, "type": _text(255)}
policy_create = wrapped("policy", _obj(_policy_props), ["blob", "type"])
policy_update = wrapped("policy", {**_obj(_policy_props), "minProperties": 1})
consumer_create = wrapped("consumer", _obj({"description": _description}))
consumer_update = wrapped("consumer", {**_obj({"description": _description}),
                                       "not": {"required": ["secret"]}, "minProperties": 1})
