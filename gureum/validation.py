"""JSON-schema validation of request bodies, with errors that name the field."""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import best_match

from gureum.errors import InvalidInput
from gureum.names import InvalidText, register_formats

# Draft 7's formats (ipv4, ipv6, …) and the OpenStack name formats.
_checker = FormatChecker(formats=())
_checker.checkers.update(Draft7Validator.FORMAT_CHECKER.checkers)
register_formats(_checker)


@_checker.checks("uuid")
def _uuid_like(instance: object) -> bool:
    """Nova's "uuid" format (oslo's is_uuid_like): any spelling uuid.UUID reads back
    the same hex, dashes and case aside. Draft 7 has no uuid format, so without this
    the schemas that ask for one took any string."""
    if not isinstance(instance, str):
        return True  # "type" judges other types
    try:
        parsed = uuid.UUID(instance)
    except ValueError:
        return False
    spelled = (instance.replace("urn:", "").replace("uuid:", "").strip("{}")
               .replace("-", "").lower())
    return parsed.hex == spelled


_by_identity: dict[int, Draft7Validator] = {}


def validator_for(schema: dict[str, Any]) -> Draft7Validator:
    key = id(schema)
    v = _by_identity.get(key)
    if v is None:
        Draft7Validator.check_schema(schema)
        v = Draft7Validator(schema, format_checker=_checker)
        _by_identity[key] = v
    return v


def field_of(error: jsonschema.ValidationError) -> str:
    """The dotted path of the offending field, e.g. 'user.name'."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            parts.append(missing[0])
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            parts.append(str(extra[0]))
    return ".".join(parts)


def validate(schema: dict[str, Any], body: Any) -> Any:
    """Return body when it matches schema; raise InvalidInput naming the field otherwise."""
    v = validator_for(schema)
    errors = list(v.iter_errors(body))
    if not errors:
        return body
    error = best_match(errors)
    if error is None:  # pragma: no cover - errors is non-empty
        raise InvalidInput("Invalid input.")
    field = field_of(error)
    where = f"field '{field}'" if field else "the request body"
    # A format check that failed with a reason says why, not just "is not a 'name'".
    message = str(error.cause) if isinstance(error.cause, InvalidText) else error.message
    raise InvalidInput(f"Invalid input for {where}: {message}", field=field or None)
