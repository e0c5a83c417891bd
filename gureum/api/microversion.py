"""Microversions: negotiate `OpenStack-API-Version: <service> X.Y` per request.

Nova also reads the legacy `X-OpenStack-Nova-API-Version`; both are accepted
and both are echoed. A request without a version gets the minimum; "latest"
gets the maximum; a version outside [min, max] is 406; a malformed one is 400.
Negotiation is a middleware on the family's mount: it puts the version in the
scope (handlers read it as ``req.version``) and adds the headers to every
response, faults included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from gureum.api.web import VERSION, Message, Receive, Request, Scope, Send
from gureum.errors import InvalidInput, NotAcceptable

Version = tuple[int, int]
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@lru_cache(maxsize=256)
def parse(text: str) -> Version:
    m = _VERSION.match(text.strip())
    if not m:
        raise InvalidInput(f"API Version String {text} is of invalid format. Must be of "
                           "format MajorNum.MinorNum.")
    return int(m.group(1)), int(m.group(2))


def fmt(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


@dataclass(frozen=True)
class Microversions:
    service: str  # "compute", "volume", …
    minimum: Version
    maximum: Version
    legacy_header: str | None = None  # e.g. x-openstack-nova-api-version
    _headers: dict[Version, list[tuple[bytes, bytes]]] = field(
        default_factory=dict, compare=False, repr=False)

    def requested(self, headers: dict[str, str]) -> str | None:
        """The version text the client asked for (lower-case header names)."""
        header = headers.get("openstack-api-version")
        if header:
            for part in header.split(","):
                words = part.strip().split()
                if len(words) == 2 and words[0].lower() == self.service:
                    return words[1]
        if self.legacy_header:
            return headers.get(self.legacy_header)
        return None

    def negotiate(self, headers: dict[str, str]) -> Version:
        text = self.requested(headers)
        if text is None:
            return self.minimum
        if text.strip().lower() == "latest":
            return self.maximum
        version = parse(text)
        if not self.minimum <= version <= self.maximum:
            raise NotAcceptable(f"Version {text} is not supported by the API. Minimum is "
                                f"{fmt(self.minimum)} and maximum is {fmt(self.maximum)}.")
        return version

    def response_headers(self, version: Version) -> list[tuple[bytes, bytes]]:
        """The headers that echo ``version`` (built once per version)."""
        cached = self._headers.get(version)
        if cached is None:
            v = fmt(version).encode()
            cached = [(b"openstack-api-version", f"{self.service} ".encode() + v)]
            vary = b"OpenStack-API-Version"
            if self.legacy_header:
                cached.append((self.legacy_header.encode(), v))
                vary += b", X-OpenStack-Nova-API-Version"
            cached.append((b"vary", vary))
            self._headers[version] = cached
        return cached


class MicroversionMiddleware:
    """Negotiates the family's microversion and echoes it on the response."""

    def __init__(self, app: Any, versions: Microversions) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        version = self.versions.negotiate(headers)
        scope[VERSION] = version
        extra = self.versions.response_headers(version)

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)


def at_least(req: Request, version: str) -> bool:
    return req.version >= parse(version)
