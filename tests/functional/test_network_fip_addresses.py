"""A floating IP shows in its server's addresses as soon as it is associated (and goes
when it is released), as Nova's info cache does after Neutron's network-changed event."""

from __future__ import annotations

from typing import Any

from tests.compute_helpers import boot, show, wait_status
from tests.functional.network_helpers import N, create, delete, listing, network_with_subnet
from tests.harness import Api


def floating(server: dict[str, Any]) -> list[str]:
    return [a["addr"] for entries in server["addresses"].values() for a in entries
            if a["OS-EXT-IPS:type"] == "floating"]


def test_floating_ip_in_server_addresses(api: Api, demo_token: str) -> None:
    net, sn = network_with_subnet(api, demo_token, "fipnet", "192.168.81.0/24")
    (pub,) = [n for n in listing(api, demo_token, "network") if n["name"] == "public"]
    router = create(api, demo_token, "router", name="fiprouter",
                    external_gateway_info={"network_id": pub["id"]})
    r = api.request("PUT", f"{N}/routers/{router['id']}/add_router_interface", demo_token,
                    json={"subnet_id": sn["id"]})
    assert r.status_code == 200, r.text
    server = boot(api, demo_token, "fipvm", networks=[{"uuid": net["id"]}])
    wait_status(api, demo_token, server["id"], {"ACTIVE"})
    (port,) = listing(api, demo_token, "port", f"device_id={server['id']}")
    fip = create(api, demo_token, "floatingip", floating_network_id=pub["id"],
                 port_id=port["id"])
    assert floating(show(api, demo_token, server["id"])) == [fip["floating_ip_address"]]
    r = api.request("PUT", f"{N}/floatingips/{fip['id']}", demo_token,
                    json={"floatingip": {"port_id": None}})
    assert r.status_code == 200, r.text
    assert floating(show(api, demo_token, server["id"])) == []
    r = api.request("PUT", f"{N}/floatingips/{fip['id']}", demo_token,
                    json={"floatingip": {"port_id": port["id"]}})
    assert floating(show(api, demo_token, server["id"])) == [fip["floating_ip_address"]]
    delete(api, demo_token, "floatingip", fip["id"])
    assert floating(show(api, demo_token, server["id"])) == []
