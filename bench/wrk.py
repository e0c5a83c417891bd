"""Load generation with wrk (C, epoll, one thread), driven by a generated Lua script.

The same client drives every server, so the comparison is fair and the client is
not the bottleneck: a Python load generator on this 2-core machine runs out of
CPU near the speed of the server it measures. Results come back as one JSON
line printed by the script's ``done`` hook (latency percentiles in µs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

WRK = "wrk"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkStats:
    requests: int  # completed responses (any status)
    bad_status: int  # responses that were not 2xx/3xx
    socket_errors: int  # connect/write errors and timeouts (not completed)
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok(self) -> int:
        return max(0, self.requests - self.bad_status)

    @property
    def errors(self) -> int:
        return self.bad_status + self.socket_errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def available() -> bool:
    return shutil.which(WRK) is not None


def _lua_str(value: str) -> str:
    """A Lua long-bracket string literal that cannot be closed by the value."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    return f"[{eq}[{value}]{eq}]"


def lua_script(method: str, headers: dict[str, str], body: str | None) -> str:
    """The wrk script: the request, and a JSON report printed when the run is done."""
    lines = [f"wrk.method = {_lua_str(method)}"]
    for name, value in headers.items():
        lines.append(f"wrk.headers[ {_lua_str(name)} ] = {_lua_str(value)}")
    if body is not None:
        lines.append(f"wrk.body = {_lua_str(body)}")
    lines += [
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        "  io.write(string.format('BENCHJSON {\"requests\":%d,\"duration_us\":%d,'",
        "    .. '\"status\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"timeout\":%d,'",
        "    .. '\"p50\":%d,\"p95\":%d,\"p99\":%d,\"max\":%d}\\n',",
        "    summary.requests, summary.duration, e.status, e.connect, e.read, e.write,",
        "    e.timeout, latency:percentile(50), latency:percentile(95),",
        "    latency:percentile(99), latency.max))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def parse_output(text: str) -> WrkStats:
    for line in text.splitlines():
        if line.startswith("BENCHJSON "):
            d = json.loads(line[len("BENCHJSON "):])
            # Socket read errors are how wrk sees a server closing after each
            # response (uwsgi with Connection: close); they are not failed requests.
            return WrkStats(
                requests=d["requests"], bad_status=d["status"],
                socket_errors=d["connect"] + d["write"] + d["timeout"],
                seconds=d["duration_us"] / 1e6,
                p50_ms=d["p50"] / 1000, p95_ms=d["p95"] / 1000, p99_ms=d["p99"] / 1000,
                max_ms=d["max"] / 1000)
    raise WrkError(f"no result line in wrk output:\n{text[-2000:]}")


def run(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
        body: str | None = None, concurrency: int = 1, duration: float = 10.0,
        timeout: float = 30.0) -> WrkStats:
    """Load ``url`` from ``concurrency`` connections for ``duration`` (whole) seconds."""
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise WrkError(f"refusing to load a non-loopback target: {url}")
    if not available():
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(lua_script(method, headers or {}, body))
        cmd = [WRK, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
               f"--timeout={max(1, round(timeout))}s", "-s", str(script), url]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=duration + timeout + 30)
    if proc.returncode != 0:
        raise WrkError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return parse_output(proc.stdout)
