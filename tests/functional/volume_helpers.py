"""Helpers for Block Storage tests: requests at a microversion, waiting for a status."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.harness import Api

V = "/volume/v3"
LATEST = {"OpenStack-API-Version": "volume 3.71"}


def req(api: Api, token: str, method: str, path: str, version: str = "3.71", **kw: Any
        ) -> httpx.Response:
    headers = {"OpenStack-API-Version": f"volume {version}", **(kw.pop("headers", {}) or {})}
    return api.request(method, f"{V}{path}", token, headers=headers, **kw)


def create_volume(api: Api, token: str, status: int = 202, **body: Any) -> dict[str, Any]:
    r = req(api, token, "POST", "/volumes", json={"volume": {"size": 1, **body}})
    assert r.status_code == status, r.text
    return dict(r.json()["volume"]) if status == 202 else dict(r.json())


def show(api: Api, token: str, volume_id: str, status: int = 200) -> dict[str, Any]:
    r = req(api, token, "GET", f"/volumes/{volume_id}")
    assert r.status_code == status, r.text
    return dict(r.json()["volume"]) if status == 200 else dict(r.json())


def wait_for(api: Api, token: str, kind: str, ident: str, want: str | tuple[str, ...],
             timeout: float = 30) -> dict[str, Any] | None:
    """Poll a volume or snapshot until its status is one of ``want``; None once gone."""
    wanted = (want,) if isinstance(want, str) else want
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = req(api, token, "GET", f"/{kind}s/{ident}")
        if r.status_code == 404 and "deleted" in wanted:
            return None
        assert r.status_code == 200, r.text
        last = dict(r.json()[kind])
        if last["status"] in wanted:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{kind} {ident} stayed {last.get('status')}, not {wanted}")


def action(api: Api, token: str, volume_id: str, name: str, args: Any = None,
           status: int = 202) -> httpx.Response:
    r = req(api, token, "POST", f"/volumes/{volume_id}/action", json={name: args})
    assert r.status_code == status, r.text
    return r
