"""Issue 9's "Must work verbatim" block, command by command, against `gureum up --hosts 2`.

The acceptance test of issue 9 on the fake driver: each command is the issue's
line as typed (run by the real `openstack` CLI as the admin, `--os-cloud gureum`),
then what the issue says it shows is checked. The `…` of `server create` is
filled with the flavor and image every cloud has; vm1 (which the block names but
does not create) is booted on c01, on net2, so the live migration to c02 is a
move and the floating IP has a router to the external network `public`.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def up2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GureumUp]:
    up = GureumUp(tmp_path_factory.mktemp("issue9") / "data", hosts=2).start()
    yield up
    assert up.stop() == 0


def table(text: str) -> list[dict[str, str]]:
    """The rows of a cliff table as dicts keyed by the header."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    if not lines:
        return []
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[1:]]


def fields(text: str) -> dict[str, str]:
    """A ShowOne table (Field | Value) as a dict (multi-line values joined)."""
    out: dict[str, str] = {}
    last = ""
    for row in table(text):
        if row["Field"]:
            last = row["Field"]
            out[last] = row["Value"]
        elif last:
            out[last] += "\n" + row["Value"]
    return out


class Cli:
    def __init__(self, up: GureumUp) -> None:
        self.up = up

    def __call__(self, command: str) -> str:
        """One command line of the issue, as typed (split as a shell would)."""
        args = shlex.split(command)
        assert args[0] == "openstack", command
        return self.up.openstack("--os-cloud", "gureum", *args[1:], timeout=180).stdout


def wait_for(check: object, timeout: float = 30.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {check}"
        time.sleep(0.5)


def l3_agents(run: Cli, *extra: str) -> list[dict[str, str]]:
    rows = table(run(" ".join(["openstack network agent list", *extra])))
    return [r for r in rows if r["Agent Type"] == "L3 agent"]


def test_issue9_must_work_verbatim(up2: GureumUp) -> None:
    run = Cli(up2)

    # openstack network create --provider-network-type vxlan net2 ;
    # openstack network show net2 -c mtu   → 1450
    run("openstack network create --provider-network-type vxlan net2")
    shown = fields(run("openstack network show net2 -c mtu"))
    assert shown == {"mtu": "1450"}

    # openstack subnet create --network net2 --subnet-range 192.168.50.0/24 sub2
    sub2 = fields(run("openstack subnet create --network net2 --subnet-range "
                      "192.168.50.0/24 sub2"))
    assert sub2["cidr"] == "192.168.50.0/24"

    # openstack router create r1 ; openstack router add subnet r1 sub2 ;
    # openstack router set --external-gateway public r1
    run("openstack router create r1")
    run("openstack router add subnet r1 sub2")
    run("openstack router set --external-gateway public r1")
    r1 = fields(run("openstack router show r1"))
    public = fields(run("openstack network show public"))
    assert public["id"] in r1["external_gateway_info"]
    assert sub2["id"] in r1["interfaces_info"]

    # openstack port create --network net2 --fixed-ip ip-address=192.168.50.77 keep-me
    keep = fields(run("openstack port create --network net2 --fixed-ip "
                      "ip-address=192.168.50.77 keep-me"))
    assert "192.168.50.77" in keep["fixed_ips"]

    # openstack server create --nic port-id=<keep-me> … vm2 ; openstack server delete --wait vm2 ;
    # openstack port show keep-me   (still there, same IP)
    vm2 = fields(run(f"openstack server create --nic port-id={keep['id']} --flavor m1.tiny "
                     "--image cirros --wait vm2"))
    assert vm2["status"] == "ACTIVE" and "192.168.50.77" in vm2["addresses"]
    assert fields(run("openstack port show keep-me"))["device_id"] == vm2["id"]
    run("openstack server delete --wait vm2")
    kept = fields(run("openstack port show keep-me"))
    assert kept["id"] == keep["id"]
    assert "192.168.50.77" in kept["fixed_ips"]
    assert kept["device_id"] == "" and kept["mac_address"] == keep["mac_address"]

    # openstack network agent list ; openstack network agent list --router r1
    rows = table(run("openstack network agent list"))
    by_kind = {(r["Agent Type"], r["Host"]): r for r in rows}
    for host in ("c01", "c02"):
        for kind in ("L3 agent", "DHCP agent"):
            assert by_kind[(kind, host)]["Alive"] == ":-)", rows
    (hosting,) = l3_agents(run, "--router r1")
    other = next(r for r in l3_agents(run) if r["ID"] != hosting["ID"])

    # openstack network agent remove router --l3 <agent> r1 ;
    # openstack network agent add router --l3 <other> r1
    run(f"openstack network agent remove router --l3 {hosting['ID']} r1")
    assert l3_agents(run, "--router r1") == []
    run(f"openstack network agent add router --l3 {other['ID']} r1")
    assert [r["ID"] for r in l3_agents(run, "--router r1")] == [other["ID"]]

    # openstack server migrate --live-migration --host c02 --wait vm1 ;
    # openstack port list --server vm1 --long   (binding host c02)
    vm1 = fields(run("openstack server create --flavor m1.tiny --image cirros "
                     "--network net2 --host c01 --wait vm1"))
    assert vm1["OS-EXT-SRV-ATTR:host"] == "c01"
    (port,) = table(run("openstack port list --server vm1 --long"))
    assert fields(run(f"openstack port show {port['ID']}"))["binding_host_id"] == "c01"
    run("openstack server migrate --live-migration --host c02 --wait vm1")
    assert fields(run("openstack server show vm1"))["OS-EXT-SRV-ATTR:host"] == "c02"
    (moved,) = table(run("openstack port list --server vm1 --long"))
    assert moved["ID"] == port["ID"] and moved["Status"] == "ACTIVE"
    bound = fields(run(f"openstack port show {port['ID']}"))
    assert bound["binding_host_id"] == "c02"
    assert [r["ID"] for r in table(run("openstack port list --server vm1 --host c02"))] == [
        port["ID"]]

    # openstack volume create --size 1 vol1 ; openstack server add volume vm1 vol1 ;
    # openstack volume list --long ; openstack server remove volume vm1 vol1
    vol1 = fields(run("openstack volume create --size 1 vol1"))
    assert vol1["size"] == "1"
    wait_for(lambda: fields(run("openstack volume show vol1"))["status"] == "available")
    run("openstack server add volume vm1 vol1")
    wait_for(lambda: fields(run("openstack volume show vol1"))["status"] == "in-use")
    (listed,) = [r for r in table(run("openstack volume list --long")) if r["Name"] == "vol1"]
    assert listed["Status"] == "in-use" and "vm1" in listed["Attached to"]
    run("openstack server remove volume vm1 vol1")
    wait_for(lambda: fields(run("openstack volume show vol1"))["status"] == "available")

    # openstack floating ip create public ; openstack server add floating ip vm1 <ip>
    fip = fields(run("openstack floating ip create public"))
    ip = fip["floating_ip_address"]
    run(f"openstack server add floating ip vm1 {ip}")
    associated = fields(run(f"openstack floating ip show {ip}"))
    assert associated["port_id"] == port["ID"]
    assert associated["fixed_ip_address"] in bound["fixed_ips"]
    wait_for(lambda: ip in fields(run("openstack server show vm1"))["addresses"])
