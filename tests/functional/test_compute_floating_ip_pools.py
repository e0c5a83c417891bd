"""/v2.1/os-floating-ip-pools: the external networks, as Nova's proxy lists them (until 2.35)."""

from __future__ import annotations

from tests.functional.compute_api_helpers import call
from tests.harness import Api


def test_lists_the_external_networks_by_name(api: Api, admin_token: str,
                                             demo_token: str) -> None:
    pools = call(api, "GET", "/os-floating-ip-pools", demo_token, status=200).json()
    assert pools == {"floating_ip_pools": [{"name": "public"}]}
    # An unnamed external network is listed by its id; project networks never are.
    r = api.request("POST", "/network/v2.0/networks", admin_token, json={"network": {
        "router:external": True, "provider:network_type": "vxlan"}})
    assert r.status_code == 201, r.text
    unnamed = r.json()["network"]["id"]
    try:
        pools = call(api, "GET", "/os-floating-ip-pools", demo_token, status=200).json()
        assert pools["floating_ip_pools"] == [{"name": "public"}, {"name": unnamed}]
    finally:
        assert api.request("DELETE", f"/network/v2.0/networks/{unnamed}",
                           admin_token).status_code == 204


def test_gone_from_2_36(api: Api, demo_token: str) -> None:
    call(api, "GET", "/os-floating-ip-pools", demo_token, "2.36", status=404)
    call(api, "GET", "/os-floating-ip-pools", demo_token, "2.35", status=200)


def test_needs_a_token(api: Api) -> None:
    assert api.request("GET", "/compute/v2.1/os-floating-ip-pools").status_code == 401
