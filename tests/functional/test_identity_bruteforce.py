"""Brute force: account lockout after N failures, and slow answers to a guessing address."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.harness import Api, InProcessCloud, make_settings, password_auth


@pytest.fixture(scope="module")
def strict_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    settings = make_settings(tmp_path_factory.mktemp("strict"), identity={
        "lockout_failure_attempts": 3, "lockout_duration": 2,
        "address_failure_threshold": 4, "address_failure_window": 60,
        "address_max_delay": 0.5})
    c = InProcessCloud(settings).start()
    yield c
    c.stop()


def test_lockout_after_failed_attempts_then_expiry(strict_cloud: InProcessCloud) -> None:
    api = Api(strict_cloud.url)
    admin = api.token("admin", strict_cloud.admin_password, "admin")
    api.request("POST", "/identity/v3/users", admin,
                json={"user": {"name": "victim", "password": "right"}})
    for _ in range(3):
        r = api.request("POST", "/identity/v3/auth/tokens",
                        json=password_auth("victim", "wrong"))
        assert r.status_code == 401
    # Locked: even the right password is refused, with Keystone's message.
    r = api.request("POST", "/identity/v3/auth/tokens", json=password_auth("victim", "right"))
    assert r.status_code == 401
    assert "locked" in r.json()["error"]["message"]
    time.sleep(2.2)
    r = api.request("POST", "/identity/v3/auth/tokens", json=password_auth("victim", "right"))
    assert r.status_code == 201, r.text
    api.close()


def test_guessing_address_is_slowed_down(strict_cloud: InProcessCloud) -> None:
    api = Api(strict_cloud.url)
    # Past the threshold (4 failures; the lockout test above added some) answers wait.
    for _ in range(4):
        api.request("POST", "/identity/v3/auth/tokens", json=password_auth("nobody", "x"))
    started = time.monotonic()
    r = api.request("POST", "/identity/v3/auth/tokens", json=password_auth("nobody", "x"))
    assert r.status_code == 401
    assert time.monotonic() - started >= 0.25
    api.close()


def test_admin_bootstrap_files_are_private(strict_cloud: InProcessCloud) -> None:
    data = strict_cloud.settings.data_dir
    assert (data / "clouds.yaml").stat().st_mode & 0o777 == 0o600
    assert strict_cloud.settings.key_repository.stat().st_mode & 0o777 == 0o700
    for key in strict_cloud.settings.key_repository.iterdir():
        assert key.stat().st_mode & 0o777 == 0o600
