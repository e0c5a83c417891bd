"""Scenarios a `gureum up` subprocess cannot express: a compute host going away.

In `gureum up` every agent lives in the one process on an in-memory bus, so a
test cannot stop one host's agent from outside and start it again. These
helpers run the same cloud in-process (tests/harness.py ``InProcessCloud``),
stop one agent as its host going down, and start a new agent with the same
fake driver as the host coming back (its reconcile at start is what the
scenarios are about). The commands are still the operator's: the real
`openstack` CLI against the in-process cloud's clouds.yaml.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.agent.service import ComputeAgent
from gureum.virt.fake import FakeDriver
from tests.harness import InProcessCloud, make_settings
from tests.scenarios.ops import CliServer, Operator


@contextlib.contextmanager
def inprocess(tmp_path_factory: pytest.TempPathFactory, cli: CliServer | None, name: str,
              hosts: int, **sections: dict[str, Any]
              ) -> Iterator[tuple[InProcessCloud, Operator]]:
    settings = make_settings(tmp_path_factory.mktemp(name), **sections)
    c = InProcessCloud(settings, hosts=hosts).start()
    op = Operator(c.url, settings.data_dir / "clouds.yaml", cli)
    try:
        yield c, op
    finally:
        op.close()
        c.stop()


def agents(c: InProcessCloud) -> list[ComputeAgent]:
    assert c.cloud is not None
    return c.cloud.agents


def drivers(c: InProcessCloud) -> dict[str, FakeDriver]:
    out = {}
    for agent in agents(c):
        assert isinstance(agent.driver, FakeDriver)
        out[agent.host] = agent.driver
    return out


def copies(c: InProcessCloud, guest_id: str) -> dict[str, int]:
    """Every host holding a copy of the guest, with the copy's power state."""
    return {host: d.guests[guest_id].power_state for host, d in drivers(c).items()
            if guest_id in d.guests and not d.guests[guest_id].incoming}


def host_down(c: InProcessCloud, host: str) -> FakeDriver:
    """The host's compute agent stops (its guests stay as they are in the driver)."""
    agent = next(a for a in agents(c) if a.host == host)
    c.run(agent.stop())
    assert isinstance(agent.driver, FakeDriver)
    return agent.driver


def host_up(c: InProcessCloud, host: str, driver: FakeDriver, **compute: Any
            ) -> ComputeAgent:
    """A new agent for the host, on the same driver, starts (and reconciles).

    ``compute`` overrides this host's [compute] settings (they are per host, as a
    nova.conf is), e.g. resume_guests_state_on_host_boot=True.
    """
    settings = c.settings
    if compute:
        settings = dataclasses.replace(settings, compute=dataclasses.replace(
            settings.compute, **compute))
    assert c.cloud is not None
    agent = ComputeAgent(settings, c.cloud.bus, host, driver=driver)
    c.run(agent.start())
    c.cloud.agents[:] = [agent if a.host == host else a for a in c.cloud.agents]
    return agent
