"""Boolean words in query strings and request bodies, read as each OpenStack service reads them.

There is one parser; what differs between the API families is the vocabulary,
and that is a fact about upstream, not a choice:

- ``OSLO``: oslo.utils' ``bool_from_string``, which Nova uses for its query flags
  and body booleans and Neutron for ``convert_to_boolean``: trimmed and compared
  without case; true is 1 t true on y yes, false is 0 f false off n no.
- ``GLANCE``: Glance's list filters (``protected``, ``os_hidden``) take exactly
  ``true`` or ``false``.

``parse_bool`` answers None for a word outside the vocabulary; the caller raises
its own family's error (Nova's "Invalid input for query parameters …", Glance's
"Invalid value … for … filter", Neutron's "… cannot be converted to boolean").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Words:
    """The spellings of true and false one service accepts."""

    true: frozenset[str]
    false: frozenset[str]
    fold: bool = True  # strip and lower-case before comparing


OSLO = Words(frozenset({"1", "t", "true", "on", "y", "yes"}),
             frozenset({"0", "f", "false", "off", "n", "no"}))
GLANCE = Words(frozenset({"true"}), frozenset({"false"}), fold=False)


def parse_bool(value: object, words: Words = OSLO) -> bool | None:
    """True or False when ``value`` is a bool or one of ``words``; None otherwise.

    Other types are read as their text, as oslo does (1 and 0 are booleans there).
    """
    if isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else str(value)
    if words.fold:
        text = text.strip().lower()
    if text in words.true:
        return True
    if text in words.false:
        return False
    return None
