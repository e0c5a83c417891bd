"""Names and booleans in Glance and Neutron: refuse what they refuse, accept what they accept.

Glance refuses characters beyond U+FFFF (4-byte UTF-8) in every value it
writes, and names longer than 255; it does not refuse control characters.
Neutron refuses names longer than 255 and no character at all. Neither can
store a NUL on every database, so gureum refuses NUL in both (a documented
difference). Booleans: Glance's list filters take exactly true/false; Neutron
converts oslo's words (t, yes, 0, …) and refuses anything else.
"""

from __future__ import annotations

from typing import Any

from tests.functional.image_helpers import IMAGES, names, patch, raw_image
from tests.functional.network_helpers import N, create, error, get, listing
from tests.harness import Api

EMOJI = "\U0001f600"


def image_error(r: Any, status: int = 400) -> str:
    assert r.status_code == status, r.text
    return str(r.json()["message"])


# -- Glance ---------------------------------------------------------------------------------

def test_image_name_with_a_4_byte_character_is_400_and_not_stored(api: Api,
                                                                 demo_token: str) -> None:
    r = api.request("POST", IMAGES, demo_token, json={"name": f"img{EMOJI}"})
    assert image_error(r) == "Name can't contain 4 byte unicode characters."
    assert f"img{EMOJI}" not in names(api, demo_token)


def test_image_properties_and_tags_with_4_byte_characters_are_400(api: Api,
                                                                  demo_token: str) -> None:
    r = api.request("POST", IMAGES, demo_token, json={"name": "p4", "os_distro": EMOJI})
    assert image_error(r) == "Os_Distro can't contain 4 byte unicode characters."
    r = api.request("POST", IMAGES, demo_token, json={"name": "p4", f"k{EMOJI}": "v"})
    assert image_error(r) == "Property names can't contain 4 byte unicode."
    r = api.request("POST", IMAGES, demo_token, json={"name": "p4", "tags": [EMOJI]})
    assert image_error(r) == "Param values can't contain 4 byte unicode."
    assert "p4" not in names(api, demo_token)
    image = raw_image(api, demo_token, name="four-bytes")
    r = api.request("PUT", f"{IMAGES}/{image['id']}/tags/{EMOJI}", demo_token)
    assert image_error(r) == "Param values can't contain 4 byte unicode."
    r = patch(api, demo_token, image["id"], [{"op": "replace", "path": "/name",
                                              "value": f"renamed{EMOJI}"}])
    assert image_error(r) == "Name can't contain 4 byte unicode characters."
    shown = api.request("GET", f"{IMAGES}/{image['id']}", demo_token).json()
    assert shown["name"] == "four-bytes" and shown["tags"] == []


def test_image_names_glance_accepts_and_refuses(api: Api, demo_token: str) -> None:
    # Glance's name is any string up to 255: control characters (but NUL) are kept.
    made = raw_image(api, demo_token, name="bell\x07 tab\t ok")
    assert made["name"] == "bell\x07 tab\t ok"
    assert raw_image(api, demo_token, name="n" * 255)["name"] == "n" * 255
    r = api.request("POST", IMAGES, demo_token, json={"name": "n" * 256})
    assert "name" in image_error(r)
    r = api.request("POST", IMAGES, demo_token, json={"name": "nul\x00"})
    assert "NUL" in image_error(r)


def test_glance_boolean_filters_take_exactly_true_or_false(api: Api, demo_token: str) -> None:
    for value in ("maybe", "True", "1"):
        r = api.request("GET", f"{IMAGES}?protected={value}", demo_token)
        assert image_error(r) == (f"Invalid value '{value}' for 'protected' filter. Valid "
                                  "values are 'true' or 'false'.")
    assert api.request("GET", f"{IMAGES}?protected=false", demo_token).status_code == 200
    # os_hidden is lower-cased first (openstacksdk sends "True").
    assert api.request("GET", f"{IMAGES}?os_hidden=True", demo_token).status_code == 200


# -- Neutron --------------------------------------------------------------------------------

def test_network_names_neutron_accepts_and_refuses(api: Api, demo_token: str) -> None:
    made = create(api, demo_token, "network", name="bell\x07 net")
    assert get(api, demo_token, "network", made["id"])["name"] == "bell\x07 net"
    r = api.request("POST", f"{N}/networks", demo_token, json={"network": {"name": "n" * 256}})
    assert "name" in error(r, 400)["message"]
    r = api.request("POST", f"{N}/networks", demo_token, json={"network": {"name": "nul\x00"}})
    assert "NUL" in error(r, 400)["message"]
    assert not [n for n in listing(api, demo_token, "network") if n["name"] == "n" * 256]


def test_neutron_booleans_are_oslos_words(api: Api, demo_token: str) -> None:
    down = create(api, demo_token, "network", name="words", admin_state_up="f")
    assert down["admin_state_up"] is False
    up = create(api, demo_token, "network", name="words-1", admin_state_up=1)
    assert up["admin_state_up"] is True
    r = api.request("POST", f"{N}/networks", demo_token,
                    json={"network": {"name": "words-x", "admin_state_up": "maybe"}})
    assert "admin_state_up" in error(r, 400)["message"]
    found = listing(api, demo_token, "network", "admin_state_up=n&name=words")
    assert [n["id"] for n in found] == [down["id"]]
    r = api.request("GET", f"{N}/networks?shared=maybe", demo_token)
    assert "'maybe' cannot be converted to boolean" in error(r, 400)["message"]


def test_page_reverse_is_true_or_not_as_neutron_reads_it(api: Api, demo_token: str) -> None:
    forward = listing(api, demo_token, "network", "page_reverse=maybe")
    assert forward == listing(api, demo_token, "network")
