"""Paging GET /servers and /servers/detail with limit and marker: every page follows
the order of the whole list, with sorting and filters too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compute_helpers import MV, boot, wait_status
from tests.harness import Api, InProcessCloud

NAMES = ["pg-c", "pg-a", "pg-e", "pg-b", "pg-d"]


@pytest.fixture(scope="module")
def paged(api: Api, admin_token: str, cloud: InProcessCloud) -> list[str]:
    ids = [boot(api, admin_token, name)["id"] for name in NAMES]
    for sid in ids:
        wait_status(api, admin_token, sid, {"ACTIVE"})
    return ids


def listing(api: Api, token: str, query: str, detail: bool = True) -> dict[str, Any]:
    path = "/compute/v2.1/servers" + ("/detail" if detail else "")
    r = api.request("GET", f"{path}?{query}", token, headers=MV)
    assert r.status_code == 200, r.text
    return dict(r.json())


def walk(api: Api, token: str, query: str, limit: int, detail: bool = True) -> list[str]:
    """Ids over all pages, following the next links; checks the links as it goes."""
    out: list[str] = []
    marker = ""
    while True:
        body = listing(api, token, f"{query}&limit={limit}{marker}", detail)
        page = [s["id"] for s in body["servers"]]
        out += page
        links = body.get("servers_links", [])
        if len(page) < limit:
            assert links == []
            return out
        assert links and links[0]["rel"] == "next" and f"marker={page[-1]}" in links[0]["href"]
        marker = f"&marker={page[-1]}"


@pytest.mark.parametrize("detail", [True, False])
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_pages_follow_the_whole_list(api: Api, admin_token: str, paged: list[str],
                                     detail: bool, limit: int) -> None:
    query = "name=^pg-"
    whole = [s["id"] for s in listing(api, admin_token, query, detail)["servers"]]
    assert sorted(whole) == sorted(paged)
    assert whole == list(reversed(paged))  # newest first by default
    assert walk(api, admin_token, query, limit, detail) == whole


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_pages_follow_a_sort_key(api: Api, admin_token: str, paged: list[str],
                                 direction: str) -> None:
    query = f"name=^pg-&sort_key=display_name&sort_dir={direction}"
    whole = listing(api, admin_token, query)["servers"]
    names = [s["name"] for s in whole]
    assert names == sorted(NAMES, reverse=direction == "desc")
    assert walk(api, admin_token, query, 2) == [s["id"] for s in whole]


def test_marker_skips_rows_a_filter_drops(api: Api, admin_token: str,
                                          paged: list[str]) -> None:
    by_name = dict(zip(NAMES, paged, strict=True))
    # The marker itself need not pass the filter: paging goes on after it.
    body = listing(api, admin_token, f"name=^pg-[ab]$&marker={by_name['pg-d']}")
    assert [s["name"] for s in body["servers"]] == ["pg-b", "pg-a"]
    body = listing(api, admin_token, f"name=^pg-[ab]$&limit=1&marker={by_name['pg-d']}")
    assert [s["name"] for s in body["servers"]] == ["pg-b"]
    body = listing(api, admin_token, f"name=^pg-&limit=2&marker={by_name['pg-c']}")
    assert body["servers"] == []


def test_unknown_marker_is_400(api: Api, admin_token: str, paged: list[str]) -> None:
    r = api.request("GET", "/compute/v2.1/servers/detail?marker=nope", admin_token,
                    headers=MV)
    assert r.status_code == 400 and "marker [nope] not found" in r.text
