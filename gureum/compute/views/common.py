"""Shared pieces of compute wire shapes: links, times, host ids."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from gureum.api.web import Request


def isotime(value: dt.datetime | None) -> str | None:
    """Nova's timestamps: 2012-09-27T15:56:11Z."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def usg_time(value: dt.datetime | None) -> str | None:
    """OS-SRV-USG: str() of a naive datetime, as Nova has always sent it."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(req: Request, collection: str, ident: str) -> list[dict[str, str]]:
    base = req.base_url
    return [{"rel": "self", "href": f"{base}/v2.1/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{ident}"}]


def bookmark(req: Request, collection: str, ident: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": f"{req.base_url}/{collection}/{ident}"}]


def host_id(host: str | None, project_id: str) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def next_link(req: Request, collection: str, items: list[dict[str, Any]], limit: int | None,
              key: str = "id") -> list[dict[str, str]]:
    """A "next" link when a page came back full (Nova's *_links)."""
    if not limit or len(items) < limit or not items:
        return []
    params = [(k, v) for k, vs in req.query.items() for v in vs if k != "marker"]
    params.append(("marker", str(items[-1][key])))
    from urllib.parse import urlencode

    return [{"rel": "next", "href": f"{req.base_url}/v2.1/{collection}?{urlencode(params)}"}]
