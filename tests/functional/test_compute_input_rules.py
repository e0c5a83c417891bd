"""Compute refuses what Nova refuses, over real HTTP, and writes nothing when it does.

Names (servers, flavors, key pairs, aggregates, server groups, zones) must be
printable; key pair names keep to Nova's character set; metadata at boot counts
against the quota; booleans take Nova's spellings only; from 2.75 an unknown
query parameter is a 400; a hostname is an RFC 1123 label (2.90) or an FQDN
(2.94); a zone that does not exist is refused at boot and at unshelve; a reader
may look but not read the console.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.compute_helpers import boot, image_id, wait_gone, wait_status
from tests.functional.compute_api_helpers import call, fault, module_cloud, reader_token
from tests.harness import Api, InProcessCloud

BAD_NAMES = ["nul\x00byte", "tab\tinside", "bell\x07", "del\x7f", "line\u2028break",
             "bidi\u202eoverride", "soft\u00adhyphen", "private\ue000use", " leading",
             "trailing ", "emoji\U0001f600"]
PUBKEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq6oVXv5ev3+ZsqXLdpsNIFUaRB3Mt6eP5xbe5ULGyx "
          "test")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    yield from module_cloud(tmp_path_factory, hosts=1, quota={"metadata_items": 3})


@pytest.fixture(scope="module")
def image(api: Api, demo_token: str) -> str:
    return image_id(api, demo_token)


def server_body(image: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"server": {"name": name, "flavorRef": "1", "imageRef": image, "networks": "none",
                       **extra}}


def server_names(api: Api, token: str) -> list[str]:
    r = call(api, "GET", "/servers", token, "2.1", status=200)
    return [s["name"] for s in r.json()["servers"]]


@pytest.fixture(scope="module")
def active(api: Api, demo_token: str) -> Iterator[dict[str, Any]]:
    made = boot(api, demo_token, "rules-active")
    yield wait_status(api, demo_token, made["id"], {"ACTIVE"})
    call(api, "DELETE", f"/servers/{made['id']}", demo_token)
    wait_gone(api, demo_token, made["id"])


# -- names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BAD_NAMES)
def test_server_name_outside_nova_printable_set_is_400(api: Api, demo_token: str,
                                                       name: str, image: str) -> None:
    r = call(api, "POST", "/servers", demo_token, "2.90", status=400,
             json=server_body(image, name))
    # A NUL is refused before the schema runs, in every family (gureum/api/web.py).
    why = "NUL characters" if "\x00" in name else "printable characters"
    assert "'server.name'" in fault(r) and why in fault(r)
    assert name not in server_names(api, demo_token)


@pytest.mark.parametrize("field,value", [
    ("key_name", "k\x00"), ("availability_zone", "nova\x00"), ("description", "d\x01"),
    ("security_groups", [{"name": "sg\x00"}]),
])
def test_other_server_fields_refuse_control_characters(api: Api, demo_token: str, field: str,
                                                       value: Any, image: str) -> None:
    r = call(api, "POST", "/servers", demo_token, "2.90", status=400,
             json=server_body(image, f"ctl-{field}", **{field: value}))
    assert f"'server.{field}" in fault(r)
    assert f"ctl-{field}" not in server_names(api, demo_token)


def test_printable_unicode_names_are_accepted(api: Api, demo_token: str, image: str) -> None:
    r = call(api, "POST", "/servers", demo_token, "2.90", status=202,
             json=server_body(image, "서버 één ünï"))
    server_id = r.json()["server"]["id"]
    call(api, "PUT", f"/servers/{server_id}", demo_token, "2.90", status=400,
         json={"server": {"name": "renamed\x00"}})
    call(api, "DELETE", f"/servers/{server_id}", demo_token, status=204)
    wait_gone(api, demo_token, server_id)


def test_flavor_aggregate_and_group_names_refuse_control_characters(
        api: Api, admin_token: str, demo_token: str) -> None:
    r = call(api, "POST", "/flavors", admin_token, "2.55", status=400, json={"flavor": {
        "name": "flv\x01", "ram": 64, "vcpus": 1, "disk": 1}})
    assert "'flavor.name'" in fault(r)
    r = call(api, "POST", "/flavors", admin_token, "2.55", status=400, json={"flavor": {
        "name": "flv-desc", "ram": 64, "vcpus": 1, "disk": 1, "description": "bad\x00"}})
    assert "'flavor.description'" in fault(r)
    r = call(api, "POST", "/os-aggregates", admin_token, status=400,
             json={"aggregate": {"name": "agg\x00"}})
    assert "'aggregate.name'" in fault(r)
    r = call(api, "POST", "/os-aggregates", admin_token, status=400,
             json={"aggregate": {"name": "agg-zone", "availability_zone": "zone:colon"}})
    assert "'aggregate.availability_zone'" in fault(r)
    r = call(api, "POST", "/os-server-groups", demo_token, "2.64", status=400,
             json={"server_group": {"name": "grp\x00", "policy": "affinity"}})
    assert "'server_group.name'" in fault(r)
    flavors = call(api, "GET", "/flavors?is_public=none", admin_token, status=200).json()
    assert not [f for f in flavors["flavors"] if f["name"].startswith("flv")]
    aggregates = call(api, "GET", "/os-aggregates", admin_token, status=200).json()
    assert not [a for a in aggregates["aggregates"] if a["name"].startswith("agg")]


# -- key pairs --------------------------------------------------------------------------

@pytest.mark.parametrize("mv,name", [
    ("2.1", "../../etc/x\x00"), ("2.1", "../../etc/x"), ("2.1", "dotted.name"),
    ("2.1", "at@sign"), ("2.10", "slash/name"), ("2.92", "../../etc/x"),
    ("2.92", "nul\x00"), ("2.92", " padded "),
])
def test_keypair_name_outside_nova_character_set_is_400(api: Api, demo_token: str, mv: str,
                                                        name: str) -> None:
    r = call(api, "POST", "/os-keypairs", demo_token, mv, status=400,
             json={"keypair": {"name": name, "public_key": PUBKEY}})
    assert "'keypair.name'" in fault(r)
    names = [k["keypair"]["name"] for k in call(api, "GET", "/os-keypairs", demo_token,
                                                status=200).json()["keypairs"]]
    assert name not in names


@pytest.mark.parametrize("mv,name", [("2.1", "my key-1_x"), ("2.92", "me@host.example")])
def test_keypair_with_a_valid_name_can_be_deleted(api: Api, demo_token: str, mv: str,
                                                  name: str) -> None:
    call(api, "POST", "/os-keypairs", demo_token, mv, status=201 if mv == "2.92" else 200,
         json={"keypair": {"name": name, "public_key": PUBKEY}})
    path = f"/os-keypairs/{quote(name)}"
    assert call(api, "GET", path, demo_token, mv, status=200).json()["keypair"]["name"] == name
    call(api, "DELETE", path, demo_token, mv, status=204 if mv == "2.92" else 202)
    call(api, "GET", path, demo_token, mv, status=404)


def test_keypair_public_key_is_required_from_2_92(api: Api, demo_token: str) -> None:
    r = call(api, "POST", "/os-keypairs", demo_token, "2.92", status=400,
             json={"keypair": {"name": "no-public-key"}})
    assert "public_key" in fault(r)


# -- metadata at boot and rebuild ---------------------------------------------------------

def test_boot_with_more_metadata_items_than_the_quota_is_403(api: Api, demo_token: str,
                                                             image: str) -> None:
    metadata = {f"k{i}": "v" for i in range(4)}
    r = call(api, "POST", "/servers", demo_token, "2.90", status=403,
             json=server_body(image, "too-much-meta", metadata=metadata))
    assert fault(r) == "Maximum number of metadata items exceeds 3"
    assert "too-much-meta" not in server_names(api, demo_token)


def test_metadata_keys_outside_nova_character_set_are_400(api: Api, demo_token: str,
                                                          image: str) -> None:
    r = call(api, "POST", "/servers", demo_token, "2.90", status=400,
             json=server_body(image, "bad-meta-key", metadata={"a/b": "v"}))
    assert "server.metadata" in fault(r)


def test_rebuild_with_more_metadata_items_than_the_quota_is_403(
        api: Api, demo_token: str, active: dict[str, Any], image: str) -> None:
    r = call(api, "POST", f"/servers/{active['id']}/action", demo_token, "2.90", status=403,
             json={"rebuild": {"imageRef": image,
                               "metadata": {f"k{i}": "v" for i in range(4)}}})
    assert fault(r) == "Maximum number of metadata items exceeds 3"
    shown = call(api, "GET", f"/servers/{active['id']}", demo_token, "2.90", status=200)
    assert shown.json()["server"]["status"] == "ACTIVE"
    assert shown.json()["server"]["metadata"] == {}


# -- booleans ------------------------------------------------------------------------------

def test_flavor_is_public_must_be_one_of_novas_booleans(api: Api, admin_token: str) -> None:
    body = {"flavor": {"name": "maybe-public", "ram": 64, "vcpus": 1, "disk": 1,
                       "os-flavor-access:is_public": "maybe"}}
    r = call(api, "POST", "/flavors", admin_token, status=400, json=body)
    assert "'flavor.os-flavor-access:is_public'" in fault(r)
    listed = call(api, "GET", "/flavors?is_public=none", admin_token, status=200).json()
    assert "maybe-public" not in [f["name"] for f in listed["flavors"]]
    for spelling, public in (("No", False), ("ON", True)):
        body["flavor"].update({"name": f"spelled-{spelling}",
                               "os-flavor-access:is_public": spelling})
        made = call(api, "POST", "/flavors", admin_token, status=200, json=body).json()
        assert made["flavor"]["os-flavor-access:is_public"] is public
        call(api, "DELETE", f"/flavors/{made['flavor']['id']}", admin_token, status=202)


def test_flavor_list_is_public_filter(api: Api, admin_token: str, demo_token: str) -> None:
    r = call(api, "GET", "/flavors?is_public=maybe", admin_token, status=400)
    assert fault(r) == "Invalid is_public filter [maybe]"
    # A member's is_public is ignored, as with Nova.
    call(api, "GET", "/flavors?is_public=maybe", demo_token, status=200)
    assert call(api, "GET", "/flavors?is_public=f", admin_token, status=200).json()[
        "flavors"] == []


# -- unknown list filters -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/servers", "/servers/detail", "/flavors",
                                  "/flavors/detail", "/os-keypairs"])
def test_unknown_query_parameter_is_400_from_2_75(api: Api, demo_token: str,
                                                  path: str) -> None:
    call(api, "GET", f"{path}?colour=red", demo_token, "2.74", status=200)
    r = call(api, "GET", f"{path}?colour=red", demo_token, "2.75", status=400)
    assert "colour" in fault(r) and "Additional properties are not allowed" in fault(r)


def test_known_server_filters_still_work_at_2_75(api: Api, demo_token: str) -> None:
    for query in ("name=x", "tags=a", "not-tags-any=b", "changes-before=2030-01-01T00:00:00Z",
                  "locked=false", "sort_key=display_name&sort_dir=asc", "limit=1"):
        call(api, "GET", f"/servers?{query}", demo_token, "2.75", status=200)


def test_internal_fields_are_never_filters(api: Api, demo_token: str) -> None:
    for name in ("metadata", "system_metadata", "_private"):
        r = call(api, "GET", f"/servers?{name}=x", demo_token, "2.1", status=400)
        assert fault(r) == f"Invalid filter field: {name}."


# -- hostname ------------------------------------------------------------------------------

@pytest.mark.parametrize("mv,hostname", [
    ("2.90", "h" * 64), ("2.90", "a"), ("2.90", "under_score"), ("2.90", "-dash"),
    ("2.90", "dots.in.name"), ("2.94", "h" * 256), ("2.94", "space name"),
])
def test_hostname_outside_novas_rules_is_400(api: Api, demo_token: str, mv: str,
                                             hostname: str, image: str) -> None:
    r = call(api, "POST", "/servers", demo_token, mv, status=400,
             json=server_body(image, f"host-{mv}-{len(hostname)}", hostname=hostname))
    assert "'server.hostname'" in fault(r)
    assert f"host-{mv}-{len(hostname)}" not in server_names(api, demo_token)


def test_hostname_rules_on_update_and_multiple_create(api: Api, demo_token: str,
                                                      active: dict[str, Any], image: str) -> None:
    path = f"/servers/{active['id']}"
    call(api, "PUT", path, demo_token, "2.90", status=400,
         json={"server": {"hostname": "h" * 64}})
    ok = call(api, "PUT", path, demo_token, "2.94", status=200,
              json={"server": {"hostname": "web-1.example.org"}})
    assert ok.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == "web-1.example.org"
    r = call(api, "POST", "/servers", demo_token, "2.90", status=400,
             json=server_body(image, "multi-host", hostname="same", min_count=2, max_count=2))
    assert fault(r) == "Unable to allocate a single hostname to multiple instances"


# -- availability zones ------------------------------------------------------------------

def test_unknown_availability_zone_is_400_at_boot(api: Api, demo_token: str, image: str) -> None:
    r = call(api, "POST", "/servers", demo_token, "2.90", status=400,
             json=server_body(image, "zone-nowhere", availability_zone="nowhere"))
    assert fault(r) == "The requested availability zone is not available"
    assert "zone-nowhere" not in server_names(api, demo_token)


def test_unknown_availability_zone_is_400_at_unshelve(api: Api, demo_token: str) -> None:
    made = boot(api, demo_token, "shelve-zone")
    sid = made["id"]
    wait_status(api, demo_token, sid, {"ACTIVE"})
    call(api, "POST", f"/servers/{sid}/action", demo_token, "2.77", status=202,
         json={"shelve": None})
    wait_status(api, demo_token, sid, {"SHELVED_OFFLOADED"})
    for zone in ("nowhere", "nova\x00"):
        r = call(api, "POST", f"/servers/{sid}/action", demo_token, "2.77", status=400,
                 json={"unshelve": {"availability_zone": zone}})
        assert "availability_zone" in fault(r) or "availability zone" in fault(r)
    assert wait_status(api, demo_token, sid, {"SHELVED_OFFLOADED"})["status"] == \
        "SHELVED_OFFLOADED"
    call(api, "DELETE", f"/servers/{sid}", demo_token, status=204)
    wait_gone(api, demo_token, sid)


# -- policy: readers read, members act ---------------------------------------------------------

def test_console_output_needs_a_member(api: Api, cloud: InProcessCloud, admin_token: str,
                                       demo_token: str, active: dict[str, Any]) -> None:
    reader = reader_token(api, cloud, admin_token, "console-reader")
    path = f"/servers/{active['id']}/action"
    call(api, "GET", f"/servers/{active['id']}", reader, status=200)
    r = call(api, "POST", path, reader, status=403, json={"os-getConsoleOutput": {}})
    assert "os-console-output" in fault(r)
    out = call(api, "POST", path, demo_token, status=200, json={"os-getConsoleOutput": {}})
    assert "output" in out.json()


@pytest.mark.parametrize("action", [
    {"os-stop": None}, {"reboot": {"type": "SOFT"}}, {"lock": None}, {"pause": None},
    {"createImage": {"name": "snap"}}, {"shelve": None}, {"rescue": None},
    {"resize": {"flavorRef": "2"}}, {"confirmResize": None}, {"revertResize": None},
    {"rebuild": {"imageRef": "x"}}, {"changePassword": {"adminPass": "x"}},
])
def test_readers_cannot_act_on_servers(api: Api, cloud: InProcessCloud, admin_token: str,
                                       active: dict[str, Any], action: dict[str, Any]) -> None:
    reader = reader_token(api, cloud, admin_token, "action-reader")
    call(api, "POST", f"/servers/{active['id']}/action", reader, "2.90", status=403,
         json=action)


# -- paging (one keyset paginator) ----------------------------------------------------------

def test_keypairs_page_by_name_with_an_encoded_next_link(api: Api, demo_token: str) -> None:
    for name in ("page a", "page b", "page c"):
        call(api, "POST", "/os-keypairs", demo_token, "2.35", status=201,
             json={"keypair": {"name": name, "public_key": PUBKEY}})
    first = call(api, "GET", "/os-keypairs?limit=2", demo_token, "2.35", status=200).json()
    assert [k["keypair"]["name"] for k in first["keypairs"]] == ["page a", "page b"]
    href = first["keypairs_links"][0]["href"]
    assert "marker=page+b" in href and " " not in href
    rest = call(api, "GET", "/os-keypairs?limit=2&marker=page b", demo_token, "2.35",
                status=200).json()
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["page c"]
    r = call(api, "GET", "/os-keypairs?marker=nope", demo_token, "2.35", status=400)
    assert fault(r) == "Marker nope could not be found."
    for name in ("page a", "page b", "page c"):
        call(api, "DELETE", f"/os-keypairs/{quote(name)}", demo_token, "2.35", status=204)


def test_flavors_page_in_any_sort_order(api: Api, admin_token: str) -> None:
    every = call(api, "GET", "/flavors/detail?sort_key=memory_mb&sort_dir=desc", admin_token,
                 status=200).json()["flavors"]
    seen: list[str] = []
    marker = ""
    while True:
        body = call(api, "GET", f"/flavors/detail?sort_key=memory_mb&sort_dir=desc&limit=2"
                    f"{marker}", admin_token, status=200).json()
        seen += [f["id"] for f in body["flavors"]]
        if "flavors_links" not in body:
            break
        marker = f"&marker={body['flavors'][-1]['id']}"
    assert seen == [f["id"] for f in every] and len(seen) == len(set(seen)) > 2
    r = call(api, "GET", "/flavors?marker=nope", admin_token, status=400)
    assert fault(r) == "marker [nope] not found"


def other_role_token(api: Api, cloud: InProcessCloud, admin: str) -> str:
    """A user whose only role on the demo project is neither reader, member nor admin."""
    demo = api.request("GET", "/identity/v3/projects?name=demo", admin).json()["projects"][0]
    r = api.request("POST", "/identity/v3/roles", admin, json={"role": {"name": "observer"}})
    assert r.status_code in (201, 409), r.text
    role = api.request("GET", "/identity/v3/roles?name=observer", admin).json()["roles"][0]
    r = api.request("POST", "/identity/v3/users", admin,
                    json={"user": {"name": "observer1", "password": "observer-pw-1"}})
    assert r.status_code in (201, 409), r.text
    user = api.request("GET", "/identity/v3/users?name=observer1", admin).json()["users"][0]
    api.request("PUT", f"/identity/v3/projects/{demo['id']}/users/{user['id']}/roles/"
                f"{role['id']}", admin)
    return api.token("observer1", "observer-pw-1", "demo")


def test_a_role_that_does_not_read_cannot_read_servers(api: Api, cloud: InProcessCloud,
                                                       admin_token: str,
                                                       active: dict[str, Any]) -> None:
    token = other_role_token(api, cloud, admin_token)
    sid = active["id"]
    for path in ("/servers", "/servers/detail", f"/servers/{sid}", f"/servers/{sid}/metadata",
                 f"/servers/{sid}/ips", f"/servers/{sid}/os-instance-actions",
                 "/os-server-groups"):
        r = call(api, "GET", path, token, status=403)
        assert "Policy doesn't allow" in fault(r), path
    # What Nova lets any authenticated caller read stays open.
    demo = active["tenant_id"]
    for path in ("/flavors", "/os-keypairs", "/limits", f"/os-quota-sets/{demo}/defaults",
                 "/os-availability-zone"):
        call(api, "GET", path, token, status=200)


def test_rebuild_fields_newer_than_the_microversion_are_400(
        api: Api, demo_token: str, active: dict[str, Any], image: str) -> None:
    path = f"/servers/{active['id']}/action"
    for mv, field, value in (("2.18", "description", "d"), ("2.53", "key_name", None),
                             ("2.56", "user_data", None), ("2.89", "hostname", "h1")):
        r = call(api, "POST", path, demo_token, mv, status=400,
                 json={"rebuild": {"imageRef": image, field: value}})
        assert f"'{field}' was unexpected" in fault(r)
    r = call(api, "POST", path, demo_token, "2.90", status=400,
             json={"rebuild": {"imageRef": image, "hostname": "bad_name"}})
    assert "'hostname'" in fault(r)
    shown = call(api, "GET", f"/servers/{active['id']}", demo_token, "2.90", status=200)
    assert shown.json()["server"]["status"] == "ACTIVE"
