"""Results of the identity benchmark: rows, the printed table, docs/performance.md."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import psutil


@dataclass
class Row:
    """One timed measurement of one operation on one server."""

    server: str
    op: str
    concurrency: int
    tokens_before: int  # tokens this server process had issued when the measurement began
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ok: int
    errors: int
    seconds: float
    cpu_ms_per_req: float | None = None
    # Cores kept busy by other processes (neither the server nor wrk) meanwhile.
    other_cpu: float | None = None


@dataclass
class Memory:
    """The server's resident memory (whole process tree) at one point of the run."""

    server: str
    point: str
    tokens_issued: int
    rss_mb: float


@dataclass
class Results:
    started: str
    quick: bool
    duration: float
    client: str
    command: str = ""
    rows: list[Row] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        def pick(kind: Any, d: dict[str, Any]) -> dict[str, Any]:
            names = {f.name for f in fields(kind)}
            return {k: v for k, v in d.items() if k in names}

        results = cls(**pick(cls, {k: v for k, v in data.items()
                                   if k not in ("rows", "memory")}))
        results.rows = [Row(**pick(Row, r)) for r in data.get("rows", [])]
        results.memory = [Memory(**pick(Memory, m)) for m in data.get("memory", [])]
        return results

    def find(self, server: str, op: str, concurrency: int, last: bool = False) -> Row | None:
        found = [r for r in self.rows
                 if r.server == server and r.op == op and r.concurrency == concurrency]
        if not found:
            return None
        return found[-1] if last else found[0]


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(results: Results) -> list[list[str]]:
    head = ["server", "operation", "conc", "tokens issued before", "req/s", "p50 ms",
            "p95 ms", "ok", "errors", "server CPU ms/req", "other load"]
    body = [head]
    for r in results.rows:
        body.append([r.server, r.op, str(r.concurrency), f"{r.tokens_before:,}", _num(r.rps),
                     _num(r.p50_ms, 2), _num(r.p95_ms, 2), f"{r.ok:,}", str(r.errors),
                     _num(r.cpu_ms_per_req, 2), _num(r.other_cpu, 2)])
    return body


def memory_table(results: Results) -> list[list[str]]:
    body = [["server", "point", "tokens issued", "RSS MiB (process tree)"]]
    order = list(dict.fromkeys(m.server for m in results.memory))
    for m in sorted(results.memory, key=lambda m: order.index(m.server)):
        body.append([m.server, m.point, f"{m.tokens_issued:,}", f"{m.rss_mb:,.1f}"])
    return body


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                      strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(rows[0]))) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


# -- interpretation --------------------------------------------------------------------

# Keystone validations/s with its cache on (uwsgi, 2 workers) at c1 and c8, measured on
# this kind of machine when it was quiet (shared/bench/keystone/README.md).
KEYSTONE_REFERENCE = {1: 158, 8: 385}


def memory_growth(results: Results, server: str) -> tuple[Memory, Memory] | None:
    """The RSS points around the bulk issue (what tokens cost), else the first and last."""
    points = [m for m in results.memory if m.server == server]
    if len(points) < 2:
        return None
    by_point = {m.point: m for m in points}
    # Before the bulk issue, warm-up dominates (allocator arenas, statement caches,
    # lazily imported code).
    a = by_point.get("before bulk issue", points[0])
    b = by_point.get("after bulk issue", points[-1])
    if b.tokens_issued <= a.tokens_issued:
        a, b = points[0], points[-1]
    return a, b


def summary(results: Results) -> str | None:
    """One sentence on the goal: ≥10x Keystone's cached validation, memory flat in tokens."""
    ratios = []
    for conc in (1, 8):
        g = results.find("gureum", "validate", conc)
        k = results.find("keystone", "validate", conc)
        if g and k and k.rps > 0:
            ratios.append(g.rps / k.rps)
    growth = memory_growth(results, "gureum")
    if len(ratios) < 2 or growth is None:
        return None
    a, b = growth
    per_100k = (b.rss_mb - a.rss_mb) / max(1, b.tokens_issued - a.tokens_issued) * 100_000
    fast = min(ratios) >= 10
    flat = per_100k < 10
    verdict = "met" if fast and flat else "not met"
    return (f"**Goal {verdict}**: gureum validates {min(ratios):.0f}-{max(ratios):.0f}x as many "
            "tokens per second as Keystone with its cache on (goal: 10x), and its memory "
            f"{'stays flat' if flat else 'grows'} with tokens issued ({per_100k:+.1f} MiB per "
            "100,000 tokens over the bulk issue).")


def findings(results: Results) -> list[str]:
    """Plain sentences computed from the numbers (ratios, flatness, memory growth)."""
    out: list[str] = []
    headline = summary(results)
    if headline:
        out.append(headline)
    for conc in (1, 8):
        g = results.find("gureum", "validate", conc)
        k = results.find("keystone", "validate", conc)
        if g and k and k.rps > 0:
            ratio = g.rps / k.rps
            verdict = "meets" if ratio >= 10 else "misses"
            out.append(f"Validate at concurrency {conc}: gureum {g.rps:,.0f}/s vs Keystone "
                       f"(cache on) {k.rps:,.0f}/s: **{ratio:.1f}x**, which {verdict} the "
                       "10x goal.")
        elif g:
            out.append(f"Validate at concurrency {conc}: gureum {g.rps:,.0f}/s (Keystone not "
                       "measured in this run).")
    refs = [(conc, g.rps / KEYSTONE_REFERENCE[conc]) for conc in (1, 8)
            if (g := results.find("gureum", "validate", conc))]
    if refs:
        out.append("Against the shared recipe's Keystone figures from a quiet machine "
                   f"({KEYSTONE_REFERENCE[1]}/{KEYSTONE_REFERENCE[8]} validations/s at c1/c8, "
                   "cache on): " + ", ".join(f"c{c} {r:.1f}x" for c, r in refs) + ".")
    g = results.find("gureum", "validate", 8)
    k = results.find("keystone", "validate", 8)
    if g and k and g.cpu_ms_per_req and k.cpu_ms_per_req:
        out.append(f"Server CPU per validation (concurrency 8), which other load on the machine "
                   f"disturbs less than rates: gureum {g.cpu_ms_per_req:.2f} ms, Keystone "
                   f"{k.cpu_ms_per_req:.2f} ms ({k.cpu_ms_per_req / g.cpu_ms_per_req:.0f}x).")
    for conc in (1, 8):
        first = results.find("gureum", "validate", conc)
        last = results.find("gureum", "validate", conc, last=True)
        if first and last and last is not first and first.rps > 0:
            change = (last.rps / first.rps - 1) * 100
            cpu = ""
            if first.cpu_ms_per_req and last.cpu_ms_per_req:
                cpu = (f"; server CPU per validation {first.cpu_ms_per_req:.2f} ms then "
                       f"{last.cpu_ms_per_req:.2f} ms")
            out.append(f"gureum validate at concurrency {conc} after {last.tokens_before:,} "
                       f"tokens issued: {last.rps:,.0f}/s vs {first.rps:,.0f}/s after "
                       f"{first.tokens_before:,} ({change:+.0f}%, with other load "
                       f"{last.other_cpu or 0:.1f} vs {first.other_cpu or 0:.1f} cores{cpu}).")
    for server in sorted({m.server for m in results.memory}):
        points = [m for m in results.memory if m.server == server]
        growth = memory_growth(results, server)
        if growth is not None:
            a, b = growth
            grown = b.rss_mb - a.rss_mb
            per_1k = grown / max(1, b.tokens_issued - a.tokens_issued) * 1000
            extra = ""
            if b.tokens_issued < 100_000 and per_1k > 0:
                extra = f"; at that rate 100,000 tokens would add {per_1k * 100:,.0f} MiB"
            m0, m1 = points[0], points[-1]
            out.append(f"{server} memory over the bulk issue: {a.rss_mb:,.1f} MiB after "
                       f"{a.tokens_issued:,} tokens, {b.rss_mb:,.1f} MiB after "
                       f"{b.tokens_issued:,} ({grown:+.1f} MiB, {per_1k:+.3f} MiB per 1,000 "
                       f"tokens{extra}); {m0.rss_mb:,.1f} MiB at the start, "
                       f"{m1.rss_mb:,.1f} MiB at the end.")
    for op in ("password issue", "re-scope issue"):
        for conc in (1, 8):
            g = results.find("gureum", op, conc)
            k = results.find("keystone", op, conc)
            if g and k and k.rps > 0:
                out.append(f"{op.capitalize()} at concurrency {conc}: gureum {g.rps:,.1f}/s vs "
                           f"Keystone {k.rps:,.1f}/s ({g.rps / k.rps:.1f}x).")
    return out


def markdown(results: Results, command: str) -> str:
    m = results.machine
    lines = [
        "# Performance",
        "",
        "Measured numbers, regenerated by the benchmarks in `bench/`. Each section says how",
        "it was measured; rerun the command to refresh it.",
        "",
        "## Identity: token issue and validation, gureum vs upstream Keystone",
        "",
        f"Run on {results.started} with `{command}`"
        f"{' (quick mode)' if results.quick else ''}: {results.duration:g} s per timed "
        "measurement.",
        "",
        f"Machine: {m.get('cpu', '?')}, **{m.get('cores', '?')} cores**, "
        f"{m.get('memory_gib', '?')} GiB memory, Linux {m.get('kernel', '?')}, "
        f"Python {m.get('python', '?')}. The load generator runs on the same two cores as "
        "the server under test; load average at the start "
        f"{m.get('load_at_start', '?')}. Versions: gureum {m.get('gureum', '?')}, Keystone "
        f"{m.get('keystone', '-')} with uwsgi {m.get('uwsgi', '-')} (PyPI).",
        "",
        "### Findings",
        "",
        *[f"- {s}" for s in findings(results)],
        *[f"- {n}" for n in results.notes],
        "",
        "### Throughput and latency",
        "",
        md_table(table(results)),
        "",
        "“tokens issued before” counts the tokens that server process had issued when the",
        "measurement began; the two `validate` rows per concurrency are the same measurement",
        "early in the run and again after the bulk issue.",
        "",
        "### Server memory",
        "",
        md_table(memory_table(results)),
        "",
        "### Method",
        "",
        f"- Client: {results.client}. The same client, script and settings drive both "
        "servers. A Python (httpx) load generator runs out of CPU near gureum's speed on "
        "two cores, so it is not used for the timed runs (only for setup requests).",
        "- gureum: `gureum up --data-dir <fresh dir> --port <free port>` with default settings "
        "(bcrypt cost 12, like Keystone; one process; SQLite); identity under `/identity`.",
        "- Keystone: the latest `keystone` from PyPI, set up by the shared recipe "
        "(`shared/bench/keystone/setup.sh`: SQLite, Fernet tokens, bcrypt cost 12) under "
        "`.bench/keystone` and served by its `serve.sh uwsgi 2 memcache` (uwsgi, 2 worker "
        "processes, `[cache] backend = dogpile.cache.memory`, `Connection: close` on every "
        "response as the recipe requires); `keystone-nocache` is the same without the cache.",
        "- password issue: `POST /v3/auth/tokens`, password method, project-scoped "
        "(admin/admin, Default domain), catalog included.",
        "- re-scope issue: `POST /v3/auth/tokens`, token method (re-scoping a project-scoped "
        "token to the same project); no bcrypt.",
        "- validate: `GET /v3/auth/tokens` with `X-Auth-Token` (an admin token) and "
        "`X-Subject-Token` (another project-scoped token), catalog included (the default).",
        "- bulk re-scope: re-scope issue at concurrency 8 until gureum has issued the target "
        "number of tokens; for Keystone a time-bounded sample to keep the run short, so its "
        "memory rows cover fewer tokens (the findings extrapolate).",
        "- Before each timed measurement the benchmark waits (at most "
        f"{results.machine.get('quiet_wait', 10):g} s, "
        f"{results.machine.get('quiet_budget', 45):g} s per run) for other work on the "
        "machine to fall below 0.3 busy cores.",
        "- Both servers run side by side and take turns: each measurement runs on gureum, "
        "then on Keystone, so both see the same machine. Order: 10 tokens each, RSS, an "
        "unrecorded validate warm-up, validate c1/c8, password issue c1/c8, re-scope c1/c8, "
        "RSS, bulk re-scope, RSS, 2 fresh tokens, validate c1/c8, RSS.",
        f"- validate runs {results.machine.get('validate_reps', 1)} time(s) per server and "
        "concurrency, in turns, and the best run is kept (the machine is shared; a "
        "slower run measures the neighbours). Issue operations run once.",
        "- RSS: psutil, resident set size summed over the server's process tree (uwsgi "
        "master + workers for Keystone). Server CPU per request: user+system CPU of that tree "
        "during the measurement, divided by the successful requests.",
        "- p50/p95 latencies come from wrk's latency histogram (all responses).",
        "- other load: cores kept busy during the measurement by processes other than the "
        "server and wrk (machine-wide busy CPU minus both). This machine is shared with other "
        "work; where it is above ~0.2 the rates are lower than a quiet machine gives, while "
        "CPU per request moves much less.",
        "",
    ]
    return "\n".join(lines)
