"""The Image v2 JSON schemas: served at /v2/schemas/*, and used to validate bodies.

The documents have the shape Glance serves (glance/api/v2/images.py and
glance/schema.py): the core image properties, the custom properties Glance
ships in etc/schema-image.json, and ``additionalProperties: {"type": "string"}``
because every other property is a free-form string.
"""

from __future__ import annotations

import copy
from typing import Any

DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){12}$")

# The image statuses Glance's schema lists (we use a subset of them).
_STATUS_ENUM = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                "pending_delete", "deactivated"]


def _base_properties() -> dict[str, Any]:
    return {
        "id": {"type": "string", "description": "An identifier for the image",
               "pattern": UUID_PATTERN},
        "name": {"type": ["null", "string"], "description": "Descriptive name for the image",
                 "maxLength": 255},
        "status": {"type": "string", "readOnly": True, "description": "Status of the image",
                   "enum": _STATUS_ENUM},
        "visibility": {"type": "string", "description": "Scope of image accessibility",
                       "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean",
                      "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean",
                      "description": "If true, image will not appear in default image list "
                                     "response."},
        "checksum": {"type": ["null", "string"], "readOnly": True,
                     "description": "md5 hash of image contents.", "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True,
                         "description": "Algorithm to calculate the os_hash_value",
                         "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True,
                          "description": "Hexdigest of the image contents using the algorithm "
                                         "specified by the os_hash_algo",
                          "maxLength": 128},
        "owner": {"type": ["null", "string"], "description": "Owner of the image",
                  "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True,
                 "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                         "description": "Virtual size of image in bytes"},
        "container_format": {"type": ["null", "string"],
                             "description": "Format of the container",
                             "enum": [None, *CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
                        "enum": [None, *DISK_FORMATS]},
        "created_at": {"type": "string", "readOnly": True,
                       "description": "Date and time of image registration"},
        "updated_at": {"type": "string", "readOnly": True,
                       "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "description": "List of strings related to the image",
                 "items": {"type": "string", "maxLength": 255}},
        "direct_url": {"type": "string", "readOnly": True,
                       "description": "URL to access the image file kept in external store"},
        "min_ram": {"type": "integer",
                    "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer",
                     "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {"type": "string", "readOnly": True,
                   "description": "Store in which image data resides.  Only present when the "
                                  "operator has enabled multiple stores.  May be a "
                                  "comma-separated list of store identifiers."},
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {
            "type": "array",
            "items": {"type": "object",
                      "properties": {"url": {"type": "string", "maxLength": 255},
                                     "metadata": {"type": "object"}},
                      "required": ["url", "metadata"]},
            "description": "A set of URLs to access the image file kept in external store"},
    }


def _custom_properties() -> dict[str, Any]:
    """The properties Glance ships in etc/schema-image.json."""
    return {
        "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
                      "description": "ID of image stored in Glance that should be used as "
                                     "the kernel when booting an AMI-style image.",
                      "is_base": False},
        "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
                       "description": "ID of image stored in Glance that should be used as "
                                      "the ramdisk when booting an AMI-style image.",
                       "is_base": False},
        "instance_uuid": {"type": "string",
                          "description": "Metadata which can be used to record which instance "
                                         "this image is associated with. (Informational only, "
                                         "does not create an instance snapshot.)",
                          "is_base": False},
        "architecture": {"type": "string", "is_base": False,
                         "description": "Operating system architecture as specified in "
                                        "https://docs.openstack.org/python-glanceclient/"
                                        "latest/cli/property-keys.html"},
        "os_distro": {"type": "string", "is_base": False,
                      "description": "Common name of operating system distribution as "
                                     "specified in https://docs.openstack.org/"
                                     "python-glanceclient/latest/cli/property-keys.html"},
        "os_version": {"type": "string", "is_base": False,
                       "description": "Operating system version as specified by the "
                                      "distributor."},
        "description": {"type": "string", "is_base": False,
                        "description": "A human-readable string describing this image."},
        "cinder_encryption_key_id": {
            "type": "string", "is_base": False,
            "description": "Identifier in the OpenStack Key Management Service for the "
                           "encryption key for the Block Storage Service to use when mounting "
                           "a volume created from this image"},
        "cinder_encryption_key_deletion_policy": {
            "type": "string", "enum": ["on_image_deletion", "do_not_delete"],
            "is_base": False,
            "description": "States the condition under which the Image Service will delete "
                           "the object associated with the 'cinder_encryption_key_id' image "
                           "property.  If this property is missing, the Image Service will "
                           "take no action"},
    }


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": {**_base_properties(), **_custom_properties()},
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"},
                  {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {"images": {"type": "array", "items": image_schema()},
                       "first": {"type": "string"}, "next": {"type": "string"},
                       "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"},
                  {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "member_id": {"type": "string",
                          "description": "An identifier for the image member (tenantId)"},
            "image_id": {"type": "string", "description": "An identifier for the image",
                         "pattern": UUID_PATTERN},
            "created_at": {"type": "string",
                           "description": "Date and time of image member creation"},
            "updated_at": {"type": "string",
                           "description": "Date and time of last modification of image "
                                          "member"},
            "status": {"type": "string", "description": "The status of this image member",
                       "enum": ["pending", "accepted", "rejected"]},
            "schema": {"readOnly": True, "type": "string"},
        },
        "additionalProperties": False,
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()},
                       "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


def _validation_schema() -> dict[str, Any]:
    """The image schema without the keywords jsonschema does not know."""
    schema = copy.deepcopy(image_schema())
    schema.pop("links")
    schema.pop("name")
    for prop in schema["properties"].values():
        prop.pop("is_base", None)
        prop.pop("readOnly", None)
    return schema


# Used by validate(); module-level so the compiled validator is cached.
IMAGE = _validation_schema()

MEMBER_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["member"],
}

MEMBER_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["pending", "accepted", "rejected"]}},
    "required": ["status"],
}

IMPORT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "method": {"type": "object",
                   "properties": {"name": {"type": "string"}, "uri": {"type": "string"}},
                   "required": ["name"]},
        "stores": {"type": "array", "items": {"type": "string"}},
        "all_stores": {"type": "boolean"},
        "all_stores_must_succeed": {"type": "boolean"},
    },
    "required": ["method"],
}


def task_schema(partial: bool = False) -> dict[str, Any]:
    """Glance's task schema (the tasks API is deprecated and admin-only there)."""
    uuid = {"description": "An identifier for the task", "pattern": UUID_PATTERN,
            "type": "string"}
    props: dict[str, Any] = {
        "id": uuid,
        "type": {"description": "The type of task represented by this content",
                 "enum": ["import", "api_image_import", "location_import"], "type": "string"},
        "status": {"description": "The current status of this task",
                   "enum": ["pending", "processing", "success", "failure"], "type": "string"},
        "input": {"description": "The parameters required by task, JSON blob",
                  "type": ["null", "object"]},
        "result": {"description": "The result of current task, JSON blob",
                   "type": ["null", "object"]},
        "owner": {"description": "An identifier for the owner of this task", "type": "string"},
        "message": {"description": "Human-readable informative message only included when "
                                   "appropriate (usually on failure)", "type": "string"},
        "image_id": {"description": "Image associated with the task", "type": "string"},
        "request_id": {"description": "Human-readable informative request-id",
                       "type": "string"},
        "user_id": {"description": "User associated with the task", "type": "string"},
        "expires_at": {"description": "Datetime when this resource would be subject to "
                                      "removal", "type": ["null", "string"]},
        "created_at": {"description": "Datetime when this resource was created",
                       "type": "string"},
        "updated_at": {"description": "Datetime when this resource was updated",
                       "type": "string"},
        "self": {"readOnly": True, "type": "string"},
        "schema": {"readOnly": True, "type": "string"},
    }
    if partial:
        for key in ("input", "result", "message"):
            del props[key]
    return {"name": "task", "properties": props, "additionalProperties": False}


def tasks_schema() -> dict[str, Any]:
    return {
        "name": "tasks",
        "properties": {"tasks": {"type": "array", "items": task_schema(partial=True)},
                       "first": {"type": "string"}, "next": {"type": "string"},
                       "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"},
                  {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }
