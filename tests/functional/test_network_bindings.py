"""A port's bindings per host (``binding-extended``): /v2.0/ports/{id}/bindings (S5)."""

from __future__ import annotations

from typing import Any

from tests.functional.network_helpers import N, create, error, get, listing
from tests.harness import Api


def bindings_url(port_id: str, *rest: str) -> str:
    return "/".join([f"{N}/ports/{port_id}/bindings", *rest])


def call(api: Api, token: str, method: str, url: str, status: int,
         body: dict[str, Any] | None = None) -> Any:
    r = api.request(method, url, token, json=body)
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def private_port(api: Api, token: str, **body: Any) -> dict[str, Any]:
    net = next(n for n in listing(api, token, "network") if n["name"] == "private")
    return create(api, token, "port", network_id=net["id"], **body)


def test_extension_is_listed(api: Api, demo_token: str) -> None:
    r = api.request("GET", f"{N}/extensions/binding-extended", demo_token)
    assert r.status_code == 200 and r.json()["extension"]["name"] == "Port Bindings Extended"


def test_inactive_binding_then_activate_then_delete_the_old(api: Api, admin_token: str
                                                            ) -> None:
    port = private_port(api, admin_token, **{"binding:host_id": "c01"})
    pid = port["id"]
    listed = call(api, admin_token, "GET", bindings_url(pid), 200)["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [("c01", "ACTIVE")]
    # A second binding for c02 is INACTIVE and computed for c02.
    made = call(api, admin_token, "POST", bindings_url(pid), 201,
                {"binding": {"host": "c02", "profile": {"migrating_to": "c02"}}})["binding"]
    assert made["host"] == "c02" and made["status"] == "INACTIVE"
    assert made["vif_details"]["port_filter"] is True and made["vif_type"] != "unbound"
    assert made["profile"] == {"migrating_to": "c02"}
    # The port still shows its active binding.
    assert get(api, admin_token, "port", pid)["binding:host_id"] == "c01"
    # One binding per host: a second one for c02 (or c01) is a conflict.
    for host in ("c02", "c01"):
        r = api.request("POST", bindings_url(pid), admin_token, json={"binding": {"host": host}})
        error(r, 409, "PortBindingAlreadyExists")
    filtered = call(api, admin_token, "GET", bindings_url(pid) + "?status=INACTIVE", 200)
    assert [b["host"] for b in filtered["bindings"]] == ["c02"]
    assert call(api, admin_token, "GET", bindings_url(pid, "c02"), 200)["binding"][
        "status"] == "INACTIVE"
    updated = call(api, admin_token, "PUT", bindings_url(pid, "c02"), 200,
                   {"binding": {"profile": {}}})["binding"]
    assert updated["profile"] == {}
    # Activate: c02 is active, c01 inactive; activating it again is a conflict.
    active = call(api, admin_token, "PUT", bindings_url(pid, "c02", "activate"), 200)
    assert active["binding"]["host"] == "c02" and active["binding"]["status"] == "ACTIVE"
    error(api.request("PUT", bindings_url(pid, "c02", "activate"), admin_token), 409,
          "PortBindingAlreadyActive")
    shown = get(api, admin_token, "port", pid)
    assert shown["binding:host_id"] == "c02" and shown["status"] == "ACTIVE"
    states = {b["host"]: b["status"]
              for b in call(api, admin_token, "GET", bindings_url(pid), 200)["bindings"]}
    assert states == {"c01": "INACTIVE", "c02": "ACTIVE"}
    # The active binding is not deleted this way; the old one is.
    error(api.request("DELETE", bindings_url(pid, "c02"), admin_token), 409)
    call(api, admin_token, "DELETE", bindings_url(pid, "c01"), 204)
    error(api.request("DELETE", bindings_url(pid, "c01"), admin_token), 404,
          "PortBindingNotFound")
    error(api.request("GET", bindings_url(pid, "c01"), admin_token), 404, "PortBindingNotFound")
    error(api.request("PUT", bindings_url(pid, "c09", "activate"), admin_token), 404,
          "PortBindingNotFound")
    # Unbinding the port drops every binding.
    r = api.request("PUT", f"{N}/ports/{pid}", admin_token,
                    json={"port": {"binding:host_id": ""}})
    assert r.status_code == 200, r.text
    assert call(api, admin_token, "GET", bindings_url(pid), 200)["bindings"] == []


def test_a_binding_of_an_unbound_port_is_its_active_one(api: Api, admin_token: str) -> None:
    pid = private_port(api, admin_token)["id"]
    made = call(api, admin_token, "POST", bindings_url(pid), 201,
                {"binding": {"host": "c01"}})["binding"]
    assert made["status"] == "ACTIVE"
    assert get(api, admin_token, "port", pid)["binding:host_id"] == "c01"


def test_bad_input_and_policy(api: Api, admin_token: str, demo_token: str) -> None:
    pid = private_port(api, admin_token, **{"binding:host_id": "c01"})["id"]
    error(api.request("POST", bindings_url(pid), admin_token, json={"binding": {}}), 400)
    error(api.request("POST", bindings_url(pid), admin_token,
                      json={"binding": {"host": "c02", "vnic_type": "bogus"}}), 400)
    error(api.request("POST", bindings_url(pid), admin_token, json={"host": "c02"}), 400)
    error(api.request("GET", bindings_url("no-such-port"), admin_token), 404, "PortNotFound")
    mine = private_port(api, demo_token)["id"]
    for method, url in (("GET", bindings_url(mine)), ("POST", bindings_url(mine)),
                        ("PUT", bindings_url(mine, "c01", "activate")),
                        ("DELETE", bindings_url(mine, "c01"))):
        r = api.request(method, url, demo_token, json={"binding": {"host": "c01"}}
                        if method == "POST" else None)
        error(r, 403, "PolicyNotAuthorized")


def test_binding_a_port_anew_drops_a_move_it_never_finished(api: Api, admin_token: str
                                                            ) -> None:
    """An inactive binding a move left behind (S5) goes when the port is bound again."""
    pid = private_port(api, admin_token, **{"binding:host_id": "c01"})["id"]
    call(api, admin_token, "POST", bindings_url(pid), 201, {"binding": {"host": "c02"}})
    r = api.request("PUT", f"{N}/ports/{pid}", admin_token,
                    json={"port": {"binding:host_id": "c03"}})
    assert r.status_code == 200, r.text
    listed = call(api, admin_token, "GET", bindings_url(pid), 200)["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [("c03", "ACTIVE")]
    assert listed[0]["vif_details"]["port_filter"] is True
