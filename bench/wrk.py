"""Load generation with wrk (C, epoll, one thread), driven by a generated Lua script.

The same client drives every server, so the comparison is fair and the client is
not the bottleneck: a Python load generator on this 2-core machine runs out of
CPU near the speed of the server it measures. wrk keeps its connections alive
(HTTP/1.1), as a service's client or a front proxy would. Results come back as
one JSON line printed by the script's ``done`` hook (latency percentiles in µs).

Two script pieces serve the token benchmark: :func:`capture_header` writes one
response header of every 2xx answer to a file (the tokens a bulk issue hands out),
and :func:`cycle_header` sends each request with the next line of a file in a
header (validating many distinct tokens, in the order the file gives).
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


def capture_header(header: str, path: Path) -> str:
    """Lua: append ``header`` of every 2xx response to ``path``, one value a line.

    wrk keeps header names as the server wrote them, so the name is matched without
    regard to case. The file is opened on the first response (so the copy of the script
    wrk loads for ``done`` leaves it alone) and line-buffered: wrk never closes a
    thread's Lua state, and a value must not be lost with the buffer when it exits.
    """
    return "\n".join([
        f"local capture_name = string.lower({_lua_str(header)})",
        "local capture_file = nil",
        "function response(status, headers, body)",
        "  if status >= 200 and status < 300 then",
        "    if not capture_file then",
        f"      capture_file = assert(io.open({_lua_str(str(path))}, 'a'))",
        "      capture_file:setvbuf('line')",
        "    end",
        "    for name, value in pairs(headers) do",
        "      if string.lower(name) == capture_name then",
        "        capture_file:write(value, '\\n')",
        "        break",
        "      end",
        "    end",
        "  end",
        "end",
    ]) + "\n"


def cycle_header(header: str, path: Path) -> str:
    """Lua: each request carries the next line of ``path`` in ``header`` (from the top
    again after the last), with ``wrk.method``, ``wrk.headers`` and ``wrk.body``.

    The file is read in ``init``, which runs in the thread's Lua state only (the script
    is loaded once more for ``done``; that copy need not read it).
    """
    return "\n".join([
        "local cycle_values, cycle_n, cycle_i = {}, 0, 0",
        "function init(args)",
        f"  for line in io.lines({_lua_str(str(path))}) do",
        "    if #line > 0 then",
        "      cycle_n = cycle_n + 1",
        "      cycle_values[cycle_n] = line",
        "    end",
        "  end",
        f"  assert(cycle_n > 0, 'no values in ' .. {_lua_str(str(path))})",
        "end",
        "function request()",
        "  cycle_i = cycle_i + 1",
        "  if cycle_i > cycle_n then cycle_i = 1 end",
        "  local headers = {}",
        "  for name, value in pairs(wrk.headers) do headers[name] = value end",
        f"  headers[ {_lua_str(header)} ] = cycle_values[cycle_i]",
        "  return wrk.format(nil, nil, headers, nil)",
        "end",
    ]) + "\n"


def lua_script(method: str, headers: dict[str, str], body: str | None,
               extra: str = "") -> str:
    """The wrk script: the request, any ``extra`` Lua (hooks), and a JSON report
    printed when the run is done."""
    lines = [f"wrk.method = {_lua_str(method)}"]
    for name, value in headers.items():
        lines.append(f"wrk.headers[ {_lua_str(name)} ] = {_lua_str(value)}")
    if body is not None:
        lines.append(f"wrk.body = {_lua_str(body)}")
    if extra:
        lines.append(extra.rstrip("\n"))
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
        timeout: float = 30.0, extra_lua: str = "") -> WrkStats:
    """Load ``url`` from ``concurrency`` connections for ``duration`` (whole) seconds."""
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise WrkError(f"refusing to load a non-loopback target: {url}")
    if not available():
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(lua_script(method, headers or {}, body, extra_lua))
        cmd = [WRK, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
               f"--timeout={max(1, round(timeout))}s", "-s", str(script), url]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=duration + timeout + 30)
    if proc.returncode != 0:
        raise WrkError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return parse_output(proc.stdout)
