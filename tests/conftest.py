"""Shared fixtures: an in-process cloud per module, a `gureum up` per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Api, GureumUp, InProcessCloud, make_settings


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    data_dir: Path = tmp_path_factory.mktemp("cloud")
    c = InProcessCloud(make_settings(data_dir)).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def api(cloud: InProcessCloud) -> Iterator[Api]:
    client = Api(cloud.url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def admin_token(api: Api, cloud: InProcessCloud) -> str:
    return api.token("admin", cloud.admin_password, "admin")


@pytest.fixture(scope="module")
def demo_token(api: Api, cloud: InProcessCloud) -> str:
    return api.token("demo", cloud.demo_password, "demo")


@pytest.fixture(scope="session")
def gureum_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GureumUp]:
    """One `gureum up --hosts 3` for the end-to-end tests of the session."""
    up = GureumUp(tmp_path_factory.mktemp("up") / "data", hosts=3).start()
    yield up
    assert up.stop() == 0
