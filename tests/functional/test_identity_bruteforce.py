"""Brute force: account lockout after N failures (per address), slow answers to a
guessing address, and login timing that does not tell whether a user exists."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from gureum.identity.login import GENERIC
from gureum.identity.passwords import dummy_hash, hash_rounds, hash_secret
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
    # Locked: even the right password is refused, with Keystone's message minus the
    # user id (the caller is not authenticated).
    r = api.request("POST", "/identity/v3/auth/tokens", json=password_auth("victim", "right"))
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert "locked" in message
    victim = api.request("GET", "/identity/v3/users?name=victim", admin).json()["users"][0]
    assert victim["id"] not in message
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
    # The database and its WAL and shared-memory files hold password hashes.
    for name in ("gureum.db", "gureum.db-wal", "gureum.db-shm"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name


def test_lockout_holds_only_against_the_guessing_address(strict_cloud: InProcessCloud) -> None:
    """Six wrong guesses from one address must not lock the admin out everywhere."""
    api = Api(strict_cloud.url)
    admin = api.token("admin", strict_cloud.admin_password, "admin")
    api.request("POST", "/identity/v3/users", admin,
                json={"user": {"name": "boss", "password": "boss-pw"}})
    attacker = httpx.Client(base_url=strict_cloud.url, timeout=30,
                            transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    for _ in range(4):
        r = attacker.post("/identity/v3/auth/tokens", json=password_auth("boss", "guess"))
        assert r.status_code == 401
    r = attacker.post("/identity/v3/auth/tokens", json=password_auth("boss", "boss-pw"))
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]
    # From the user's own address the right password still works...
    r = api.request("POST", "/identity/v3/auth/tokens", json=password_auth("boss", "boss-pw"))
    assert r.status_code == 201, r.text
    # ...and so does the bootstrap admin, whatever one address guessed.
    for _ in range(4):
        attacker.post("/identity/v3/auth/tokens", json=password_auth("admin", "guess"))
    assert api.token("admin", strict_cloud.admin_password, "admin")
    attacker.close()
    api.close()


@pytest.fixture(scope="module")
def costly_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    """bcrypt at a real cost, so the time of a check is well above the noise."""
    settings = make_settings(tmp_path_factory.mktemp("costly"),
                             identity={"password_hash_rounds": 10})
    c = InProcessCloud(settings).start()
    yield c
    c.stop()


def _checked_costs(api: Api, user: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bcrypt cost of every hash a failed login of ``user`` checked."""
    import bcrypt

    from gureum.identity import passwords

    costs: list[int] = []
    real = bcrypt.checkpw

    def spy(secret: bytes, hashed: bytes) -> bool:
        costs.append(hash_rounds(hashed))
        return real(secret, hashed)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", spy)
    try:
        r = api.request("POST", "/identity/v3/auth/tokens", json=password_auth(user, "wrong"))
    finally:
        monkeypatch.setattr(passwords.bcrypt, "checkpw", real)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == GENERIC
    return costs


def test_unknown_user_takes_as_long_as_a_wrong_password(costly_cloud: InProcessCloud,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The same work either way: one bcrypt check at the configured cost (before, an
    unknown user was checked against a cost-4 dummy: ~1 ms against ~60 ms at cost 10).
    Counted, not timed, so a busy machine cannot make it flake."""
    api = Api(costly_cloud.url)
    try:
        known = _checked_costs(api, "demo", monkeypatch)
        unknown = _checked_costs(api, "no-such-user", monkeypatch)
    finally:
        api.close()
    assert known == [10]
    assert unknown == known


def test_dummy_hash_costs_the_configured_rounds() -> None:
    assert hash_rounds(dummy_hash(11)) == 11
    assert hash_rounds(hash_secret("pw", 5)) == 5
