"""JSON schemas of the metadata definitions API (/v2/schemas/metadefs/*).

Served to clients and used to validate request bodies, with the shapes Glance
gives them (glance/api/v2/metadef_*.py get_schema, glance/schema.py).
"""

from __future__ import annotations

import copy
from typing import Any

_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]


def _time(what: str) -> dict[str, Any]:
    return {"type": "string", "readOnly": True, "description": what, "format": "date-time"}


def _property_attributes() -> dict[str, Any]:
    """What describes one property (a JSON-schema subset)."""
    return {
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": _TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {"type": "object",
                  "properties": {"type": {"type": "string", "enum": _TYPES},
                                 "enum": {"type": "array"}}},
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _definitions(with_property: bool = True, min_items: bool = False) -> dict[str, Any]:
    string_array: dict[str, Any] = {"type": "array", "items": {"type": "string"},
                                    "uniqueItems": True}
    if min_items:
        string_array["minItems"] = 1
    out: dict[str, Any] = {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"},
                                              {"default": 0}]},
        "stringArray": string_array,
    }
    if with_property:
        out["property"] = {"type": "object", "additionalProperties": {
            "type": "object", "required": ["title", "type"],
            "properties": _property_attributes()}}
    return out


def _schema(name: str, properties: dict[str, Any], required: list[str] | None,
            definitions: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "properties": properties,
                           "additionalProperties": False}
    if definitions:
        out["definitions"] = definitions
    if required:
        out["required"] = required
    return out


def _collection(name: str, item: dict[str, Any], as_dict: bool = False) -> dict[str, Any]:
    item = copy.deepcopy(item)
    definitions = item.pop("definitions", None)
    container = ({"type": "object", "additionalProperties": item} if as_dict else
                 {"type": "array", "items": item})
    out: dict[str, Any] = {
        "name": name,
        "properties": {name: container, "first": {"type": "string"},
                       "next": {"type": "string"}, "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }
    if definitions:
        out["definitions"] = definitions
    return out


def _association_properties() -> dict[str, Any]:
    return {
        "name": {"type": "string", "maxLength": 80,
                 "description": "Resource type names should be aligned with Heat resource "
                                "types whenever possible: https://docs.openstack.org/heat/"
                                "latest/template_guide/openstack.html"},
        "prefix": {"type": "string", "maxLength": 80,
                   "description": "Specifies the prefix to use for the given resource type. "
                                  "Any properties in the namespace should be prefixed with "
                                  "this prefix when being applied to the specified resource "
                                  "type. Must include prefix separator (e.g. a colon :)."},
        "properties_target": {"type": "string", "maxLength": 80,
                              "description": "Some resource types allow more than one key / "
                                             "value pair per instance."},
        "created_at": _time("Date and time of resource type association"),
        "updated_at": _time("Date and time of the last resource type association "
                            "modification"),
    }


def namespace_schema() -> dict[str, Any]:
    properties = {
        "namespace": {"type": "string", "maxLength": 80,
                      "description": "The unique namespace text."},
        "display_name": {"type": "string", "maxLength": 80,
                         "description": "The user friendly name for the namespace. Used by "
                                        "UI if available."},
        "description": {"type": "string", "maxLength": 500,
                        "description": "Provides a user friendly description of the "
                                       "namespace."},
        "visibility": {"type": "string", "enum": ["public", "private"],
                       "description": "Scope of namespace accessibility."},
        "protected": {"type": "boolean",
                      "description": "If true, namespace will not be deletable."},
        "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
        "created_at": _time("Date and time of namespace creation"),
        "updated_at": _time("Date and time of the last namespace modification"),
        "schema": {"readOnly": True, "type": "string"},
        "self": {"readOnly": True, "type": "string"},
        "resource_type_associations": {
            "type": "array",
            "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "prefix": {"type": "string"},
                "properties_target": {"type": "string"}}}},
        "properties": {"$ref": "#/definitions/property"},
        "objects": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"}}}},
        "tags": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}}}},
    }
    return _schema("namespace", properties, ["namespace"], _definitions())


def object_schema() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": 80},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": {"readOnly": True, "type": "string"},
        "self": {"readOnly": True, "type": "string"},
        "created_at": _time("Date and time of object creation"),
        "updated_at": _time("Date and time of the last object modification"),
    }
    return _schema("object", properties, ["name"], _definitions())


def property_schema(require_name: bool = True) -> dict[str, Any]:
    required = ["type", "title", "name"] if require_name else ["type", "title"]
    return _schema("property", _property_attributes(), required,
                   _definitions(with_property=False, min_items=True))


def association_schema() -> dict[str, Any]:
    return _schema("resource_type_association", _association_properties(), ["name"], None)


def tag_schema() -> dict[str, Any]:
    properties = {"name": {"type": "string", "maxLength": 255},
                  "created_at": _time("Date and time of tag creation"),
                  "updated_at": _time("Date and time of the last tag modification")}
    return _schema("tag", properties, ["name"], None)


def tags_body_schema() -> dict[str, Any]:
    """The body of POST /namespaces/{ns}/tags."""
    return {"type": "object", "additionalProperties": False, "properties": {"tags": {
        "type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string", "maxLength": 255}},
            "required": ["name"], "additionalProperties": False}}}}


SERVED = {
    "namespace": namespace_schema,
    "namespaces": lambda: _collection("namespaces", namespace_schema()),
    "object": object_schema,
    "objects": lambda: _collection("objects", object_schema()),
    "property": property_schema,
    "properties": lambda: _collection("properties", property_schema(require_name=False),
                                      as_dict=True),
    "resource_type": association_schema,
    "resource_types": lambda: _collection("resource_type_associations", association_schema()),
    "tag": tag_schema,
    "tags": lambda: _collection("tags", tag_schema()),
}


def _for_validation(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out.pop("name", None)
    out.pop("links", None)
    return out


# Compiled once by gureum.validation (it caches by identity).
NAMESPACE = _for_validation(namespace_schema())
OBJECT = _for_validation(object_schema())
PROPERTY = _for_validation(property_schema())
PROPERTY_UNNAMED = _for_validation(property_schema(require_name=False))
ASSOCIATION = _for_validation(association_schema())
TAG = _for_validation(tag_schema())
TAGS = tags_body_schema()
