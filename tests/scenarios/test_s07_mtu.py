"""S7. The right MTU by default.

Then: on GRE tunnels small pings worked but big pages hung (1500 - GRE overhead,
path MTU discovery blocked); operators set the guest MTU by a DHCP option.
gureum: one `[network] physnet_mtu` setting (and `path_mtu`); each network's MTU is
computed from its type (VXLAN 1450, GRE 1458 on a 1500 underlay), shown by
`openstack network show`, settable smaller by admins, and handed to guests: the
host's network state carries it to the data plane, whose dnsmasq sends it as DHCP
option 26, and to the QEMU driver, which sets it on the guest's tap.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.models import Instance
from gureum.netagent.dataplane import radvd
from gureum.netagent.dataplane.dnsmasq import subnet_options
from gureum.network.hoststate import network_state
from gureum.network.models import Agent
from gureum.virt.network_data import network_data
from tests.harness import InProcessCloud
from tests.scenarios.inproc import inprocess
from tests.scenarios.ops import CliServer, Operator

pytestmark = pytest.mark.e2e


def hosts(s: Session) -> list[str]:
    return sorted(set(s.scalars(select(Agent.host))))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, cli: CliServer
        ) -> Iterator[tuple[InProcessCloud, Operator]]:
    with inprocess(tmp_path_factory, cli, "s07", hosts=1) as pair:
        yield pair


def test_mtu_follows_the_type_and_reaches_the_guest(env: tuple[InProcessCloud, Operator]
                                                    ) -> None:
    cloud, op = env
    op.run("openstack --os-cloud gureum network create --provider-network-type vxlan net2")
    assert op.cli_json("network", "show", "net2", "-c", "mtu")["mtu"] == 1450
    op.run("openstack --os-cloud gureum network create --provider-network-type gre gre1")
    assert op.cli_json("network", "show", "gre1", "-c", "mtu")["mtu"] == 1458
    op.run("openstack --os-cloud gureum network set --mtu 1400 gre1")
    assert op.cli_json("network", "show", "gre1", "-c", "mtu")["mtu"] == 1400
    bad = op.cli("network", "set", "--mtu", "1459", "gre1", check=False)
    assert bad.returncode != 0 and "maximum is 1458" in bad.stderr
    op.run("openstack --os-cloud gureum subnet create --network net2 "
           "--subnet-range 192.168.57.0/24 sub57")
    net2 = op.cli_json("network", "show", "net2")
    op.run(f"openstack --os-cloud gureum server create --flavor 1 --image cirros "
           f"--nic net-id={net2['id']} --wait vm-s7", timeout=120)
    server = op.cli_json("server", "show", "vm-s7")
    host = server["OS-EXT-SRV-ATTR:host"]
    assert cloud.cloud is not None
    with cloud.cloud.db.session(write=False) as s:
        state = network_state(s, host)
    (mine,) = [n for n in state["networks"] if n["id"] == net2["id"]]
    assert mine["mtu"] == 1450 and mine["network_type"] == "vxlan"
    # The data plane's dnsmasq hands it to the guest as DHCP option 26.
    assert any(line.endswith("option:mtu,1450") for line in subnet_options(dict(mine)))
    # And the config drive's network_data.json (a guest without DHCP reads it there).
    with cloud.cloud.db.session(write=False) as s:
        inst = s.get(Instance, server["id"])
        assert inst is not None
        (link,) = network_data(list(inst.network_info))["links"]
    assert link["mtu"] == 1450 and link["vif_id"] == inst.network_info[0]["port_id"]
    # IPv6: the router advertises an attached SLAAC subnet with the MTU (radvd).
    op.run("openstack --os-cloud gureum subnet create --network net2 --ip-version 6 "
           "--ipv6-ra-mode slaac --ipv6-address-mode slaac "
           "--subnet-range fd00:57::/64 sub57v6")
    op.run("openstack --os-cloud gureum router create r57")
    op.run("openstack --os-cloud gureum router add subnet r57 sub57v6")
    with cloud.cloud.db.session(write=False) as s:
        routers = [r for h in hosts(s) for r in network_state(s, h)["routers"]]
    (router,) = [r for r in routers if r["name"] == "r57"]
    legs = [{"device": leg["port_id"], "mtu": 1450, "subnets": leg["ipv6_subnets"]}
            for leg in router["interfaces"]]
    conf = radvd.config(legs)
    assert "prefix fd00:57::/64" in conf and "AdvAutonomous on;" in conf
    op.run("openstack --os-cloud gureum server delete --wait vm-s7", timeout=120)
