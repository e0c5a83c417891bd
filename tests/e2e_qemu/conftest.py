"""Fixtures of the QEMU end-to-end tests: one `openstack` command server per session.

Each module starts its own cloud (``guests.qemu_cloud``): `gureum up --driver qemu
--hosts 2`, the way a user starts it, with real guests under TCG. These tests
are part of the suite: a machine without QEMU fails them (the set-up installs it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios.ops import CliServer


@pytest.fixture(scope="session")
def cli() -> Iterator[CliServer]:
    server = CliServer()
    yield server
    server.close()
