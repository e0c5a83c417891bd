"""Networking through the real `openstack` CLI and openstacksdk, as users type it."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def demo(up: GureumUp, *args: str, check: bool = True) -> Any:
    proc = up.openstack("--os-cloud", "gureum-demo", *args, check=check)
    if not check:
        return proc
    return json.loads(proc.stdout) if "-f" in args else proc.stdout


def admin(up: GureumUp, *args: str) -> Any:
    return json.loads(up.openstack("--os-cloud", "gureum", *args, "-f", "json").stdout)


def test_demo_sees_the_private_network(gureum_up: GureumUp) -> None:
    nets = demo(gureum_up, "network", "list", "-f", "json")
    (private,) = [n for n in nets if n["Name"] == "private"]
    assert len(private["Subnets"]) == 1
    shown = demo(gureum_up, "network", "show", "private", "-f", "json")
    assert shown["mtu"] == 1450 and shown["status"] == "ACTIVE"  # VXLAN on 1500 (S7)
    subnet = demo(gureum_up, "subnet", "show", "private-subnet", "-f", "json")
    assert subnet["cidr"] == "10.0.0.0/26" and subnet["gateway_ip"] == "10.0.0.1"


def test_network_subnet_port_lifecycle(gureum_up: GureumUp) -> None:
    """S11: a port with the exact address, detached with the command operators use."""
    net = demo(gureum_up, "network", "create", "n1", "-f", "json")
    assert net["name"] == "n1" and net["shared"] is False
    subnet = demo(gureum_up, "subnet", "create", "--network", "n1", "--subnet-range",
                  "192.168.5.0/24", "s1", "-f", "json")
    assert subnet["cidr"] == "192.168.5.0/24" and subnet["gateway_ip"] == "192.168.5.1"
    assert subnet["allocation_pools"] == [{"start": "192.168.5.2", "end": "192.168.5.254"}]
    port = demo(gureum_up, "port", "create", "--network", "n1", "--fixed-ip",
                "ip-address=192.168.5.20", "p1", "-f", "json")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "192.168.5.20"}]
    shown = demo(gureum_up, "port", "show", "p1", "-f", "json")
    assert shown["id"] == port["id"] and shown["mac_address"].startswith("fa:16:3e:")
    # The same address again is refused.
    proc = demo(gureum_up, "port", "create", "--network", "n1", "--fixed-ip",
                "ip-address=192.168.5.20", "p2", check=False)
    assert proc.returncode != 0 and "already allocated" in proc.stderr
    # Attach it the way Nova does (as admin), then detach it the S11 way.
    gureum_up.openstack("--os-cloud", "gureum", "port", "set", "--device", "vm-s11",
                        "--device-owner", "compute:nova", "--host", "c01", "p1")
    bound = admin(gureum_up, "port", "show", port["id"])
    assert bound["binding_host_id"] == "c01" and bound["device_id"] == "vm-s11"
    assert bound["status"] == "ACTIVE"
    demo(gureum_up, "port", "set", "--device", "", "--device-owner", "", "--no-binding-profile",
         "p1")
    detached = admin(gureum_up, "port", "show", port["id"])
    assert (detached["device_id"], detached["device_owner"]) == ("", "")
    assert detached["binding_host_id"] in ("", None) and detached["status"] == "DOWN"
    assert detached["fixed_ips"][0]["ip_address"] == "192.168.5.20"
    listed = demo(gureum_up, "port", "list", "--fixed-ip", "ip-address=192.168.5.20",
                  "-f", "json")
    assert [p["ID"] for p in listed] == [port["id"]]
    demo(gureum_up, "port", "delete", "p1")
    demo(gureum_up, "subnet", "delete", "s1")
    demo(gureum_up, "network", "delete", "n1")
    assert "n1" not in {n["Name"] for n in demo(gureum_up, "network", "list", "-f", "json")}


def test_tags_and_admin_only_options(gureum_up: GureumUp) -> None:
    net = demo(gureum_up, "network", "create", "--tag", "blue", "tagged", "-f", "json")
    assert net["tags"] == ["blue"]
    listed = demo(gureum_up, "network", "list", "--tags", "blue", "-f", "json")
    assert [n["Name"] for n in listed] == ["tagged"]
    proc = demo(gureum_up, "network", "create", "--share", "mine-to-share", check=False)
    assert proc.returncode != 0 and "403" in proc.stderr
    shared = admin(gureum_up, "network", "create", "--share", "--provider-network-type",
                   "vlan", "--provider-physical-network", "physnet1", "--provider-segment",
                   "42", "lan42")
    assert shared["provider:segmentation_id"] == 42 and shared["mtu"] == 1500
    assert "lan42" in {n["Name"] for n in demo(gureum_up, "network", "list", "-f", "json")}
    gureum_up.openstack("--os-cloud", "gureum", "network", "delete", "lan42")
    demo(gureum_up, "network", "delete", "tagged")


def test_openstacksdk_pages_through_ports(gureum_up: GureumUp) -> None:
    import openstack

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(gureum_up.clouds_yaml)
    conn = openstack.connect(cloud="gureum-demo")
    try:
        private = conn.network.find_network("private", ignore_missing=False)
        made = [conn.network.create_port(network_id=private.id, name=f"sdk-{i}")
                for i in range(5)]
        names = [p.name for p in conn.network.ports(network_id=private.id, limit=2,
                                                     sort_key="name")
                 if p.name.startswith("sdk-")]
        assert names == [f"sdk-{i}" for i in range(5)]
        for port in made:
            conn.network.delete_port(port)
        assert conn.network.find_extension("binding", ignore_missing=False)
    finally:
        conn.close()
