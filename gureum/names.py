"""Which characters a name may hold, as Nova's API schemas define them.

Nova refuses a name (of a server, flavor, key pair, aggregate, server group,
availability zone, snapshot) unless every character is printable: no control,
format, private-use or unassigned character, no line or paragraph separator,
and nothing beyond U+FFFF (Nova builds its character class from the Basic
Multilingual Plane only). Most names also may not start or end with a space;
a few (an aggregate's new name) may, as long as one character is not a space.
A description must be printable too, spaces anywhere.

The rules are JSON-schema formats (``"format": "name"``) so a schema says what
it wants and the validator names the field; ``register_formats`` adds them to a
format checker. They live here, outside any API package, because services
validate with them too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import lru_cache

from jsonschema import FormatChecker

_NAME_REASON = "printable characters. Can not start or end with whitespace."
_NAME_SPACES_REASON = "printable characters with at least one non space character"
_AZ_REASON = "printable characters except :. Can not start or end with whitespace."
_AZ_SPACES_REASON = "printable characters except :, with at least one non space character"


class InvalidText(ValueError):
    """Text outside its character set; the message says what it must be."""


class InvalidName(InvalidText):
    """A name outside its character set."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"An invalid 'name' value was provided. The name must be: {reason}")


@lru_cache(maxsize=4096)
def printable(char: str) -> bool:
    """Nova's printable: not a C* category, no Z* but Zs, inside the BMP."""
    if ord(char) > 0xFFFF:
        return False
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _is_space(char: str) -> bool:
    return unicodedata.category(char) == "Zs"


def _all_printable(text: str, exclude: str) -> bool:
    return all(printable(c) and c not in exclude for c in text)


def is_name(text: str, exclude: str = "") -> bool:
    """Printable, no leading or trailing space (the empty string passes: minLength decides)."""
    if not _all_printable(text, exclude):
        return False
    return not text or not (_is_space(text[0]) or _is_space(text[-1]))


def is_name_with_spaces(text: str, exclude: str = "") -> bool:
    """Printable, spaces anywhere, at least one character that is not a space."""
    return _all_printable(text, exclude) and any(not _is_space(c) for c in text)


def is_description(text: str) -> bool:
    return _all_printable(text, "")


def _format(check: Callable[[str], bool], reason: str) -> Callable[[object], bool]:
    def checker(instance: object) -> bool:
        if not isinstance(instance, str):
            return True  # "type" judges other types
        if not check(instance):
            raise InvalidName(reason)
        return True
    return checker


def _description(instance: object) -> bool:
    if isinstance(instance, str) and not is_description(instance):
        raise InvalidText("The description must be printable characters.")
    return True


FORMATS: dict[str, Callable[[object], bool]] = {
    "name": _format(is_name, _NAME_REASON),
    "name_with_leading_trailing_spaces": _format(is_name_with_spaces, _NAME_SPACES_REASON),
    "az_name": _format(lambda t: is_name(t, exclude=":"), _AZ_REASON),
    "az_name_with_leading_trailing_spaces": _format(
        lambda t: is_name_with_spaces(t, exclude=":"), _AZ_SPACES_REASON),
    "printable": _description,
}


def register_formats(checker: FormatChecker) -> FormatChecker:
    """Add the name formats to ``checker``; a failed check carries its reason as cause."""
    for name, check in FORMATS.items():
        checker.checks(name, raises=InvalidText)(check)
    return checker
