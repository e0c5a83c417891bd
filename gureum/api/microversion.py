"""Microversions: negotiate `OpenStack-API-Version: <service> X.Y` per request.

Nova also reads the legacy `X-OpenStack-Nova-API-Version`; both are accepted
and both are echoed. A request without a version gets the minimum; "latest"
gets the maximum; a version outside [min, max] is 406; a malformed one is 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from gureum.api.web import Request, Response
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

    def requested(self, req: Request) -> str | None:
        header = req.headers.get("openstack-api-version")
        if header:
            for part in header.split(","):
                words = part.strip().split()
                if len(words) == 2 and words[0].lower() == self.service:
                    return words[1]
        if self.legacy_header:
            return req.headers.get(self.legacy_header)
        return None

    def negotiate(self, req: Request) -> None:
        text = self.requested(req)
        if text is None:
            req.version = self.minimum
            return
        if text.strip().lower() == "latest":
            req.version = self.maximum
            return
        version = parse(text)
        if not self.minimum <= version <= self.maximum:
            raise NotAcceptable(f"Version {text} is not supported by the API. Minimum is "
                                f"{fmt(self.minimum)} and maximum is {fmt(self.maximum)}.")
        req.version = version

    def decorate(self, req: Request, response: Response) -> None:
        if req.version == (0, 0):
            return
        v = fmt(req.version)
        response.headers["openstack-api-version"] = f"{self.service} {v}"
        vary = ["OpenStack-API-Version"]
        if self.legacy_header:
            response.headers[self.legacy_header] = v
            vary.append("X-OpenStack-Nova-API-Version")
        response.headers["vary"] = ", ".join(vary)

    def hooks(self) -> tuple[Callable[[Request], None], Callable[[Request, Response], None]]:
        return self.negotiate, self.decorate


def at_least(req: Request, version: str) -> bool:
    return req.version >= parse(version)
