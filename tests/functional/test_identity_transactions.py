"""Identity routes get their transaction from the one helper (gureum/api/transaction.py),
and none holds one while bcrypt hashes a password or a secret: a hash takes a quarter
of a second at Keystone's cost, and on SQLite a write transaction (BEGIN IMMEDIATE)
would stop every other writer for that long."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gureum.api.web import Router
from gureum.identity import api as identity_api
from gureum.identity import service
from gureum.identity.core import Identity
from tests.harness import Api, InProcessCloud

V3 = "/identity/v3"


def test_every_blocking_identity_route_declares_its_transaction() -> None:
    router = identity_api.family().router
    assert isinstance(router, Router)
    missing = {f"{r.method} {r.pattern}" for r in router.routes()
               if not r.is_async and not r.tx}
    # Keystone's domain configuration defaults are constants: no database at all.
    assert missing == {"GET /v3/domains/config/default",
                       "GET /v3/domains/config/{group}/default",
                       "GET /v3/domains/config/{group}/{option}/default"}


@pytest.fixture()
def slow_hash(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event,
                                                                 threading.Event]]:
    """Make service.hash_password wait (in its worker thread) until released."""
    hashing, release = threading.Event(), threading.Event()
    original = service.hash_password

    def waiting_hash(ident: Identity, password: str | None) -> str | None:
        if password is not None:  # no password, no hash
            hashing.set()
            release.wait(20)
        return original(ident, password)

    monkeypatch.setattr(service, "hash_password", waiting_hash)
    yield hashing, release
    release.set()


def _user(api: Api, admin: str, name: str) -> str:
    r = api.request("POST", f"{V3}/users", admin, json={"user": {"name": name}})
    assert r.status_code == 201, r.text
    return str(r.json()["user"]["id"])


def _me(api: Api, token: str) -> str:
    r = api.request("GET", f"{V3}/auth/tokens", token, headers={"X-Subject-Token": token})
    return str(r.json()["token"]["user"]["id"])


REQUESTS: dict[str, Callable[[Api, str], tuple[str, str, dict[str, Any], int]]] = {
    "user create": lambda api, admin: (
        "POST", f"{V3}/users", {"user": {"name": "hashed-new", "password": "pw-1"}}, 201),
    "user password reset": lambda api, admin: (
        "PATCH", f"{V3}/users/{_user(api, admin, 'hashed-reset')}",
        {"user": {"password": "pw-2"}}, 200),
    "application credential create": lambda api, admin: (
        "POST", f"{V3}/users/{_me(api, admin)}/application_credentials",
        {"application_credential": {"name": "hashed-ac"}}, 201),
}


@pytest.mark.parametrize("what", sorted(REQUESTS))
def test_hashing_holds_no_transaction(cloud: InProcessCloud, api: Api, admin_token: str,
                                      slow_hash: tuple[threading.Event, threading.Event],
                                      what: str) -> None:
    hashing, release = slow_hash
    method, path, body, status = REQUESTS[what](api, admin_token)
    answer: dict[str, httpx.Response] = {}

    def send() -> None:
        with httpx.Client(base_url=cloud.url, timeout=30) as client:
            answer["r"] = client.request(method, path, json=body,
                                         headers={"X-Auth-Token": admin_token})

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert hashing.wait(10), "the password was never hashed"
        # The hash is still running: another write goes through all the same.
        started = time.monotonic()
        name = "written-while-hashing-" + what.replace(" ", "-")
        r = api.request("POST", f"{V3}/projects", admin_token,
                        json={"project": {"name": name}})
        assert r.status_code == 201, r.text
        assert time.monotonic() - started < 5
        assert sender.is_alive()
    finally:
        release.set()
        sender.join(20)
    assert answer["r"].status_code == status, answer["r"].text
