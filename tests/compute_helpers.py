"""Helpers for compute tests: boot servers over the API and wait for them."""

from __future__ import annotations

import time
from typing import Any

from tests.harness import Api

MV = {"OpenStack-API-Version": "compute 2.100"}


def boot(api: Api, token: str, name: str, flavor: str = "1", image: str | None = None,
         networks: Any = "none", **server: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"server": {"name": name, "flavorRef": flavor,
                                       "networks": networks, **server}}
    body["server"]["imageRef"] = image or _cirros(api, token)
    hints = body["server"].pop("hints", None)
    if hints:
        body["os:scheduler_hints"] = hints
    r = api.request("POST", "/compute/v2.1/servers", token, json=body, headers=MV)
    assert r.status_code == 202, r.text
    return dict(r.json()["server"])


# Keyed by the token too: a later cloud may listen on an earlier one's port (its own
# cirros has another id), and each cloud signs its own tokens.
_CIRROS: dict[tuple[str, str], str] = {}


def _cirros(api: Api, token: str) -> str:
    key = (api.url, token)
    if key not in _CIRROS:
        _CIRROS[key] = image_id(api, token)
    return _CIRROS[key]


def image_id(api: Api, token: str, name: str = "cirros") -> str:
    r = api.request("GET", f"/image/v2/images?name={name}", token)
    return str(r.json()["images"][0]["id"])


def show(api: Api, token: str, server_id: str) -> dict[str, Any]:
    r = api.request("GET", f"/compute/v2.1/servers/{server_id}", token, headers=MV)
    assert r.status_code == 200, r.text
    return dict(r.json()["server"])


def wait_status(api: Api, token: str, server_id: str, statuses: set[str],
                timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        server = show(api, token, server_id)
        if server["status"] in statuses and not server.get("OS-EXT-STS:task_state"):
            return server
        if time.monotonic() > deadline:
            raise AssertionError(f"{server_id} stayed {server['status']} "
                                 f"({server.get('OS-EXT-STS:task_state')}), wanted {statuses}")
        time.sleep(0.05)


def wait_gone(api: Api, token: str, server_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while api.request("GET", f"/compute/v2.1/servers/{server_id}", token,
                      headers=MV).status_code != 404:
        if time.monotonic() > deadline:
            raise AssertionError(f"{server_id} was not deleted in {timeout}s")
        time.sleep(0.05)
