"""Microversions: negotiate `OpenStack-API-Version: <service> X.Y` per request.

Nova also reads the legacy `X-OpenStack-Nova-API-Version`; both are accepted
and both are echoed. A request without a version gets the minimum; "latest"
gets the maximum; a version outside [min, max] is 406; a malformed one
("2.1.3", "latest extra", "LATEST") is 400, as Nova answers.
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
    m = _VERSION.match(text)
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
        """The version text the client asked for, read as Nova reads it.

        ``headers`` has lower-case names, repeated headers joined by ",". Of the
        ``OpenStack-API-Version`` entries ("<service> <version>") the last one for
        this service counts; what follows the service name is the version, all of
        it ("compute latest extra" asks for "latest extra", which is then a 400).
        Without one, the legacy header's last value counts.
        """
        header = headers.get("openstack-api-version")
        if header:
            for part in reversed(header.split(",")):
                words = part.strip().split(None, 1)
                if len(words) == 2 and words[0].lower() == self.service:
                    return words[1].strip()
        if self.legacy_header and self.legacy_header in headers:
            return headers[self.legacy_header].split(",")[-1].strip()
        return None

    def negotiate(self, headers: dict[str, str]) -> Version:
        text = self.requested(headers)
        if text is None:
            return self.minimum
        if text == "latest":
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
        version = self.versions.negotiate(folded(scope["headers"]))
        scope[VERSION] = version
        extra = self.versions.response_headers(version)

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)


def folded(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers by lower-case name, a repeated header's values joined by ","."""
    headers: dict[str, str] = {}
    for k, v in raw:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1").strip()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def at_least(req: Request, version: str) -> bool:
    return req.version >= parse(version)
