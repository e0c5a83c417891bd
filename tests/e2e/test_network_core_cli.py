"""The Networking API core through the real `openstack` CLI: MTUs (S7), provider
networks, the `public` network, bad input answered with a clear 4xx."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def demo(up: GureumUp, *args: str, check: bool = True) -> Any:
    proc = up.openstack("--os-cloud", "gureum-demo", *args, check=check)
    if not check:
        return proc
    return json.loads(proc.stdout) if "-f" in args else proc.stdout


def admin(up: GureumUp, *args: str, check: bool = True) -> Any:
    proc = up.openstack("--os-cloud", "gureum", *args, check=check)
    if not check:
        return proc
    return json.loads(proc.stdout) if "-f" in args else proc.stdout


def test_vxlan_network_mtu_verbatim(gureum_up: GureumUp) -> None:
    """Issue 9, verbatim: `network create --provider-network-type vxlan net2`; mtu 1450."""
    admin(gureum_up, "network", "create", "--provider-network-type", "vxlan", "net2")
    out = admin(gureum_up, "network", "show", "net2", "-c", "mtu")
    assert "| mtu   | 1450  |" in out
    shown = admin(gureum_up, "network", "show", "net2", "-f", "json")
    assert shown["provider:network_type"] == "vxlan" and shown["provider:segmentation_id"]
    admin(gureum_up, "network", "delete", "net2")


def test_gre_mtu_and_admin_mtu_set(gureum_up: GureumUp) -> None:
    gre = admin(gureum_up, "network", "create", "--provider-network-type", "gre", "gre1",
                "-f", "json")
    assert gre["mtu"] == 1458
    admin(gureum_up, "network", "set", "--mtu", "1400", "gre1")
    assert admin(gureum_up, "network", "show", "gre1", "-f", "json")["mtu"] == 1400
    proc = admin(gureum_up, "network", "set", "--mtu", "1459", "gre1", check=False)
    assert proc.returncode != 0 and "Requested MTU is too big, maximum is 1458" in proc.stderr
    admin(gureum_up, "network", "delete", "gre1")


def test_public_network_is_there_for_gateways(gureum_up: GureumUp) -> None:
    public = admin(gureum_up, "network", "show", "public", "-f", "json")
    assert public["router:external"] is True and public["provider:network_type"] == "flat"
    subnet = admin(gureum_up, "subnet", "show", "public-subnet", "-f", "json")
    assert subnet["cidr"] == "172.24.4.0/24" and subnet["network_id"] == public["id"]
    listed = demo(gureum_up, "network", "list", "--external", "-f", "json")
    assert [n["Name"] for n in listed] == ["public"]


def test_subnet_from_a_pool(gureum_up: GureumUp) -> None:
    pool = demo(gureum_up, "subnet", "pool", "create", "--pool-prefix", "10.100.0.0/16",
                "--default-prefix-length", "24", "pool1", "-f", "json")
    assert pool["prefixes"] == ["10.100.0.0/16"] and pool["default_prefixlen"] == 24
    demo(gureum_up, "network", "create", "pooled-net")
    sub = demo(gureum_up, "subnet", "create", "--network", "pooled-net", "--subnet-pool",
               "pool1", "--prefix-length", "26", "pooled-a", "-f", "json")
    assert sub["cidr"] == "10.100.0.0/26" and sub["subnetpool_id"] == pool["id"]
    sub = demo(gureum_up, "subnet", "create", "--network", "pooled-net", "--subnet-pool",
               "pool1", "pooled-b", "-f", "json")
    assert sub["cidr"] == "10.100.1.0/24"
    listed = demo(gureum_up, "subnet", "pool", "list", "-f", "json")
    assert "pool1" in {p["Name"] for p in listed}
    proc = demo(gureum_up, "subnet", "pool", "delete", "pool1", check=False)
    assert proc.returncode != 0
    for name in ("pooled-a", "pooled-b"):
        demo(gureum_up, "subnet", "delete", name)
    demo(gureum_up, "subnet", "pool", "delete", "pool1")
    demo(gureum_up, "network", "delete", "pooled-net")


def test_rbac_shares_a_network_with_a_project(gureum_up: GureumUp) -> None:
    net = admin(gureum_up, "network", "create", "admins-net", "-f", "json")
    admin(gureum_up, "subnet", "create", "--network", "admins-net", "--subnet-range",
          "10.101.0.0/24", "admins-subnet")
    assert "admins-net" not in {n["Name"] for n in demo(gureum_up, "network", "list",
                                                         "-f", "json")}
    policy = admin(gureum_up, "network", "rbac", "create", "--target-project", "demo",
                   "--action", "access_as_shared", "--type", "network", "admins-net",
                   "-f", "json")
    assert policy["object_id"] == net["id"] and policy["action"] == "access_as_shared"
    shown = demo(gureum_up, "network", "show", "admins-net", "-f", "json")
    assert shown["shared"] is True
    port = demo(gureum_up, "port", "create", "--network", net["id"], "p-rbac", "-f", "json")
    assert port["fixed_ips"][0]["ip_address"].startswith("10.101.0.")
    proc = admin(gureum_up, "network", "rbac", "delete", policy["id"], check=False)
    assert proc.returncode != 0 and "cannot be removed" in proc.stderr
    demo(gureum_up, "port", "delete", "p-rbac")
    admin(gureum_up, "network", "rbac", "delete", policy["id"])
    proc = demo(gureum_up, "network", "show", "admins-net", check=False)
    assert proc.returncode != 0
    admin(gureum_up, "network", "delete", "admins-net")


def test_bad_input_is_a_clear_4xx(gureum_up: GureumUp) -> None:
    demo(gureum_up, "network", "create", "bad-net")
    # No DHCP: the DHCP port would take the /30's one address.
    demo(gureum_up, "subnet", "create", "--network", "bad-net", "--subnet-range",
         "10.102.0.0/30", "--no-dhcp", "bad-a")
    proc = demo(gureum_up, "subnet", "create", "--network", "bad-net", "--subnet-range",
                "10.102.0.0/24", "bad-b", check=False)
    assert proc.returncode != 0 and "overlaps with another subnet" in proc.stderr
    proc = demo(gureum_up, "port", "create", "--network", "bad-net", "--fixed-ip",
                "ip-address=10.200.0.5", "bad-p", check=False)
    assert proc.returncode != 0 and \
        "is not a valid IP for any of the subnets" in proc.stderr
    demo(gureum_up, "port", "create", "--network", "bad-net", "only-one")
    proc = demo(gureum_up, "port", "create", "--network", "bad-net", "one-too-many",
                check=False)
    assert proc.returncode != 0 and "No more IP addresses available" in proc.stderr
    demo(gureum_up, "port", "delete", "only-one")
    demo(gureum_up, "subnet", "delete", "bad-a")
    demo(gureum_up, "network", "delete", "bad-net")


def test_ipv6_slaac_port_and_extra_dhcp_options(gureum_up: GureumUp) -> None:
    demo(gureum_up, "network", "create", "v6-net")
    v6 = demo(gureum_up, "subnet", "create", "--network", "v6-net", "--ip-version", "6",
              "--ipv6-ra-mode", "slaac", "--ipv6-address-mode", "slaac", "--subnet-range",
              "2001:db8:77::/64", "v6-sub", "-f", "json")
    assert v6["ipv6_address_mode"] == "slaac" and v6["gateway_ip"] == "2001:db8:77::1"
    port = demo(gureum_up, "port", "create", "--network", "v6-net", "--mac-address",
                "fa:16:3e:11:22:33", "--extra-dhcp-option",
                "name=tftp-server,value=192.0.2.5", "p6", "-f", "json")
    assert port["fixed_ips"] == [{"subnet_id": v6["id"],
                                  "ip_address": "2001:db8:77:0:f816:3eff:fe11:2233"}]
    assert port["extra_dhcp_opts"] == [{"opt_name": "tftp-server",
                                        "opt_value": "192.0.2.5", "ip_version": 4}]
    demo(gureum_up, "port", "delete", "p6")
    demo(gureum_up, "subnet", "delete", "v6-sub")
    demo(gureum_up, "network", "delete", "v6-net")
