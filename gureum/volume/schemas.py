"""Request body checks for the Block Storage API: each bad value is a 400 that
names its field, worded as Cinder words it where clients show the message."""

from __future__ import annotations

import re
from typing import Any

from gureum.volume import errors as e

MAX_NAME = 255
_UINT = re.compile(r"[0-9]+")


def is_uint(text: str | None) -> bool:
    """A decimal integer >= 0 in ASCII digits (str.isdigit also takes "²", which int()
    refuses)."""
    return text is not None and _UINT.fullmatch(text) is not None


def body_of(body: Any, key: str) -> dict[str, Any]:
    """The object under ``key`` of a request body ({"volume": {...}})."""
    if not isinstance(body, dict) or key not in body:
        raise e.bad_request(f"Missing required element '{key}' in request body.", key)
    inner = body[key]
    if not isinstance(inner, dict):
        raise e.bad_request(f"Invalid input for field/attribute {key}. Value: {inner}. "
                            f"{inner!r} is not of type 'object'", key)
    return inner


def text(value: Any, field: str, max_len: int = MAX_NAME, allow_none: bool = True
         ) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise e.bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                            f"{value!r} is not of type 'string'", field)
    if len(value) > max_len:
        raise e.bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                            f"is too long (at most {max_len} characters)", field)
    return value


def size(value: Any, field: str = "size", allow_none: bool = False) -> int | None:
    """A volume size in GiB: a positive integer (or its decimal string)."""
    if value is None and allow_none:
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and is_uint(value.strip()):
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or number <= 0 or number > 2**31 - 1:
        raise e.bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                            f"{field} must be an integer and greater than 0", field)
    return number


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (
            "true", "1", "yes", "y", "on", "t", "false", "0", "no", "n", "off", "f"):
        return value.strip().lower() in ("true", "1", "yes", "y", "on", "t")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise e.bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                        f"{value!r} is not a valid boolean", field)


def metadata(value: Any, field: str = "metadata") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise e.bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                            f"{value!r} is not of type 'object'", field)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or len(k) > 255:
            raise e.bad_request(f"Invalid input for field/attribute {field}. Metadata key "
                                f"{k!r} must be 1 to 255 characters.", field)
        if v is None:
            v = ""
        if not isinstance(v, str):
            if isinstance(v, (int, float, bool)):
                v = str(v)
            else:
                raise e.bad_request(f"Invalid input for field/attribute {field}. Value of "
                                    f"metadata key {k} must be a string.", field)
        if len(v) > 255:
            raise e.bad_request(f"Invalid input for field/attribute {field}. Value of "
                                f"metadata key {k} is longer than 255 characters.", field)
        out[k] = v
    return out


def one_of(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise e.bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                            f"{value!r} is not one of {list(choices)}", field)
    return str(value)
