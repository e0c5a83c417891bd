"""The QEMU driver's VIF drivers (gureum/virt/qemu/vif.py): names, arguments, the
registry, and real taps on a real Linux bridge when the test runs as root."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any, ClassVar

import pytest

from gureum.virt.qemu import vif


def port(vif_type: str = "bridge", **extra: Any) -> dict[str, Any]:
    return {"port_id": str(uuid.uuid4()), "network_id": str(uuid.uuid4()),
            "mac_address": "FA:16:3E:12:34:56", "vif_type": vif_type, "vif_details": {},
            "mtu": 1450, **extra}


def test_names_fit_in_an_interface_name_and_tell_hosts_apart() -> None:
    pid = "3f2a1b4c-5d6e-4f00-8a9b-0c1d2e3f4a5b"
    assert vif.tap_name(pid, "c01") == "tap3f2a1b4c-c01"
    assert vif.tap_name(pid, "c02") != vif.tap_name(pid, "c01")
    long = vif.tap_name(pid, "compute-host-17.example.org")
    assert len(long) == 15 and long.startswith("tap3f2a1b4c-")
    assert vif.bridge_name(pid) == "brq3f2a1b4c-5d"  # Neutron's linuxbridge name (14)


def test_user_networking_needs_nothing_on_the_host() -> None:
    vifs = vif.Vifs("c01", mechanism="user")
    assert vifs.report() == {"agent_type": "QEMU user networking", "vif_type": "user",
                             "vif_details": {}}
    p = port("user")
    nic = vifs.plug("g1", p, 1)
    assert nic == {"id": "net1", "mac": "fa:16:3e:12:34:56", "port_id": p["port_id"],
                   "vif_type": "user", "backend": "user"}
    assert vif.qemu_args(nic) == [
        "-netdev", "user,id=net1",
        "-device", "virtio-net-pci,netdev=net1,mac=fa:16:3e:12:34:56,id=dev-net1"]
    vif.unplug("g1", nic)  # nothing to undo
    # A binding this host does not plug (made before it reported): its own mechanism.
    assert vifs.plug("g1", port("ovs"), 0)["backend"] == "user"
    with pytest.raises(vif.VifError, match="no MAC"):
        vifs.plug("g1", port("user", mac_address=""), 0)


def test_a_registered_driver_plugs_its_vif_type_without_touching_the_qemu_driver() -> None:
    class Vhost(vif.VifDriver):
        vif_type = "vhostuser"
        agent_type = "a data plane"
        vif_details: ClassVar[dict[str, Any]] = {"vhostuser_mode": "server"}
        plugged: ClassVar[list[str]] = []

        def plug(self, guest_id: str, p: dict[str, Any], index: int) -> dict[str, Any]:
            self.plugged.append(guest_id)
            return self.nic(p, index, path=f"/run/{p['port_id']}")

        @classmethod
        def netdev(cls, nic: dict[str, Any]) -> str:
            return f"vhost-user,id={nic['id']},chardev=c{nic['id']}"

    vif.register(Vhost)
    try:
        vifs = vif.Vifs("c01", mechanism="vhostuser")
        assert vifs.report()["vif_type"] == "vhostuser"
        nic = vifs.plug("g2", port("vhostuser"), 0)
        assert Vhost.plugged == ["g2"] and nic["backend"] == "vhostuser"
        assert vif.qemu_args(nic)[1] == "vhost-user,id=net0,chardev=cnet0"
        # The host still has QEMU's user networking for ports bound that way.
        assert vifs.plug("g2", port("user"), 1)["backend"] == "user"
    finally:
        del vif.REGISTRY["vhostuser"]
    with pytest.raises(vif.VifError, match="unknown VIF backend"):
        vif.qemu_args(nic)


def links(master: str | None = None) -> dict[str, dict[str, Any]]:
    argv = ["ip", "-j", "link", "show", *(["master", master] if master else [])]
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


@pytest.mark.skipif(not vif.BridgeVif.usable(),
                    reason="taps and bridges need root, the `ip` tool and /dev/net/tun")
def test_taps_on_the_networks_bridge_made_and_removed() -> None:
    c01, c02 = vif.Vifs("c01", mechanism="bridge"), vif.Vifs("c02", mechanism="bridge")
    assert c01.report() == {"agent_type": "Linux bridge agent", "vif_type": "bridge",
                            "vif_details": {"connectivity": "l2", "port_filter": False}}
    p = port("bridge")
    bridge = vif.bridge_name(p["network_id"])
    p["vif_details"] = {"bridge_name": bridge}
    try:
        nic = c01.plug("g3", p, 0)
        assert nic["tap"] == vif.tap_name(p["port_id"], "c01") and nic["bridge"] == bridge
        assert c01.plug("g3", p, 0) == nic  # again: nothing changes
        # The same port on the other host (a live migration on one machine): its own tap.
        other = c02.plug("g3", p, 0)
        on_bridge = links(bridge)
        assert set(on_bridge) == {nic["tap"], other["tap"]}
        assert on_bridge[nic["tap"]]["mtu"] == 1450
        assert "UP" in links()[bridge]["flags"]
        assert vif.qemu_args(nic)[1] == (f"tap,id=net0,ifname={nic['tap']},script=no,"
                                         "downscript=no")

        vif.unplug("g3", nic)
        assert set(links(bridge)) == {other["tap"]}  # the bridge stays for c02's tap
        vif.unplug("g3", other)
        vif.unplug("g3", other)  # again: nothing left to undo
        assert nic["tap"] not in links() and bridge not in links()
    finally:
        for name in (vif.tap_name(p["port_id"], "c01"), vif.tap_name(p["port_id"], "c02"),
                     bridge):
            subprocess.run(["ip", "link", "del", "dev", name], capture_output=True,
                           check=False)
