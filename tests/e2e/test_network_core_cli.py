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
