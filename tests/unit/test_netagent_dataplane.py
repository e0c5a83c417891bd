"""The data plane registry ([network] data_plane) and the noop data plane."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gureum.config import Settings
from gureum.errors import ConfigError
from gureum.netagent import state
from gureum.netagent.dataplane import DataPlane, available, base, make_data_plane, register
from gureum.netagent.dataplane.noop import NoopDataPlane


def _settings(plane: str) -> Settings:
    s = Settings()
    return dataclasses.replace(s, network=dataclasses.replace(s.network, data_plane=plane))


def test_noop_keeps_the_state_it_was_given() -> None:
    plane = make_data_plane(_settings("noop"), "c01")
    assert isinstance(plane, NoopDataPlane) and plane.host == "c01"
    wanted = state.empty("c01")
    asyncio.run(plane.sync(wanted))
    assert plane.state == wanted and plane.syncs == 1
    asyncio.run(plane.cleanup())
    assert plane.state is None


def test_auto_falls_back_to_noop_when_nothing_else_can_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, cls in available().items():
        if name != "noop":
            monkeypatch.setattr(cls, "usable", classmethod(lambda c, s: False))
    assert isinstance(make_data_plane(_settings("auto"), "c01"), NoopDataPlane)


def test_auto_takes_a_registered_driver_that_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    for name, cls in available().items():
        if name != "noop":
            monkeypatch.setattr(cls, "usable", classmethod(lambda c, s: False))

    @register
    class Able(DataPlane):
        name = "able"
        auto_priority = 1

        @classmethod
        def usable(cls, settings: Settings) -> bool:
            return True

        async def sync(self, state: state.HostNetState) -> None:
            pass

        async def cleanup(self) -> None:
            pass

    assert isinstance(make_data_plane(_settings("auto"), "c01"), Able)


def test_an_unknown_data_plane_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_MODULES", {"noop": base._MODULES["noop"]})
    monkeypatch.setattr(base, "_REGISTRY", {"noop": NoopDataPlane})
    with pytest.raises(ConfigError, match="linuxbridge"):
        make_data_plane(_settings("linuxbridge"), "c01")


def test_tap_names_are_the_ones_the_qemu_driver_plugs() -> None:
    from gureum.virt.qemu.vif import tap_name

    port = "0123456789abcdef-0000"
    for host in ("c01", "compute-node-7.example"):
        assert state.tap_name(port, host) == tap_name(port, host)
        assert len(state.tap_name(port, host)) <= 15
