"""Fixtures of the scenario tests: one `openstack` command server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios.ops import CliServer


@pytest.fixture(scope="session")
def cli() -> Iterator[CliServer]:
    server = CliServer()
    yield server
    server.close()
