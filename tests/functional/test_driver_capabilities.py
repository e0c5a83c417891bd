"""Each host's agent reports what its driver really does (issue 7, honest claims).

The capability map (virt/driver.py CAPABILITIES, Nova's driver capabilities)
arrives with the agent's resources and is stored on the host's compute node,
so the API can answer 501/409 for an action the host's driver lacks. The fake
driver claims what it does and not what it does not (set a password, send an NMI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from gureum.compute.models import ComputeNode
from gureum.virt.driver import CAPABILITIES
from gureum.virt.fake import FakeDriver
from tests.harness import InProcessCloud, make_settings


@pytest.fixture(scope="module")
def caps_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("caps")), hosts=2).start()
    yield c
    c.stop()


def test_every_host_reports_its_drivers_capabilities(caps_cloud: InProcessCloud) -> None:
    assert caps_cloud.cloud is not None
    with caps_cloud.cloud.db.session(write=False) as s:
        nodes = {n.host: n.capabilities for n in s.scalars(select(ComputeNode))}
    assert sorted(nodes) == ["c01", "c02"]
    for caps in nodes.values():
        assert caps is not None and list(caps) == list(CAPABILITIES)
        assert caps == FakeDriver().capability_report()
        assert caps["supports_live_migration"] and caps["supports_rescue"]
        assert not caps["supports_set_admin_password"]
        assert not caps["supports_trigger_crash_dump"]
