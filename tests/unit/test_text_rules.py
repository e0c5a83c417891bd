"""The boolean words each family accepts, and Nova's printable names."""

from __future__ import annotations

import pytest

from gureum import names
from gureum.query import GLANCE, OSLO, parse_bool


@pytest.mark.parametrize("value,result", [
    ("1", True), ("t", True), ("True", True), (" yes ", True), ("ON", True), ("y", True),
    ("0", False), ("f", False), ("FALSE", False), ("no", False), ("off", False), ("n", False),
    (True, True), (False, False), (1, True), (0, False),
    ("maybe", None), ("", None), ("2", None), (2, None), ("tru", None),
])
def test_oslo_words_as_nova_and_neutron_read_them(value: object, result: bool | None) -> None:
    assert parse_bool(value, OSLO) is result


@pytest.mark.parametrize("value,result", [
    ("true", True), ("false", False), ("True", None), ("1", None), ("yes", None),
    (" true", None),
])
def test_glance_takes_exactly_true_or_false(value: str, result: bool | None) -> None:
    assert parse_bool(value, GLANCE) is result


@pytest.mark.parametrize("text,ok", [
    ("web-1", True), ("서버 이름", True), ("a b", True), ("x", True), ("", True),
    (" lead", False), ("trail ", False), ("\u00a0nbsp", False), ("nul\x00", False),
    ("tab\t", False), ("esc\x1b[0m", False), ("del\x7f", False), ("c1\x85", False),
    ("zwj\u200dx", False), ("bidi\u202e", False), ("ls\u2028", False), ("ps\u2029", False),
    ("pua\ue000", False), ("unassigned\u0378", False), ("astral\U0001f600", False),
])
def test_nova_name(text: str, ok: bool) -> None:
    assert names.is_name(text) is ok


def test_name_with_spaces_needs_one_character_that_is_not_a_space() -> None:
    assert names.is_name_with_spaces(" padded ")
    assert not names.is_name_with_spaces("   ")
    assert not names.is_name_with_spaces(" nul\x00 ")


def test_zone_names_refuse_a_colon_and_descriptions_take_spaces() -> None:
    assert names.is_name("zone:host") and not names.is_name("zone:host", exclude=":")
    assert names.is_description("  spaced  out  ") and not names.is_description("bell\x07")


def test_the_format_raises_its_reason() -> None:
    with pytest.raises(names.InvalidName, match="printable characters"):
        names.FORMATS["name"]("nul\x00")
    assert names.FORMATS["name"](42)  # other types are the schema's "type" to judge
