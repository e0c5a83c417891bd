"""Identity benchmark: token issue and validation, gureum vs upstream Keystone.

    .venv/bin/python -m bench.identity [--quick] [--skip-keystone] [--duration S]

Starts a fresh `gureum up` (default settings) and Keystone from PyPI (the shared
recipe, uwsgi with 2 workers and its in-memory cache) side by side and measures
both in the same run with the same client (wrk), taking turns so that both see
the same machine: password issue, re-scope issue and validate at concurrency 1
and 8; validation again after 100,000 tokens issued; the servers' memory before
and after. Prints a table; a full run (or one given --output) writes
docs/performance.md. Raw results go to .bench/identity-*.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.report import (
    Memory,
    Results,
    Row,
    machine_info,
    markdown,
    memory_table,
    table,
    write_section,
)
from bench.report import text_table as render
from bench.servers import (
    ROOT,
    GureumServer,
    KeystoneServer,
    Server,
    busy_seconds,
    children_seconds,
)

CONCURRENCY = (1, 8)
QUIET_CORES = 0.3  # "quiet": other processes use less than this many cores


@dataclass(frozen=True)
class Plan:
    duration: float  # seconds per timed measurement
    warmup: float  # unrecorded validate warm-up, seconds
    bulk_tokens: int  # gureum: issue until this many tokens in total
    bulk_max_seconds: float  # gureum: bound on the bulk issue
    keystone_bulk_seconds: float  # Keystone: a time-bounded bulk sample
    keystone_nocache: bool  # also validate on Keystone without its cache
    quiet_wait: float  # at most this long before each measurement for a quiet machine
    quiet_budget: float  # and at most this long in all
    validate_reps: int  # validate runs per server and concurrency; the best is kept

    @classmethod
    def make(cls, quick: bool, duration: float | None, tokens: int | None) -> Plan:
        if quick:
            return cls(duration or 2.0, 1.0, tokens or 5_000, 30.0, 3.0, False, 0.0, 0.0, 1)
        return cls(duration or 6.0, 2.0, tokens or 100_000, 300.0, 20.0, True, 10.0, 45.0, 2)


@dataclass
class Target:
    """A server under test and what the run has done to it so far."""

    server: Server
    admin: str = ""  # the X-Auth-Token for validations
    subject: str = ""  # the token validated
    issued: int = 0  # tokens this server process has issued

    @property
    def name(self) -> str:
        return self.server.name

    def fresh_tokens(self) -> None:
        with httpx.Client(timeout=60.0) as client:
            self.admin = self.server.issue(client)
            self.subject = self.server.issue(client)
            self.issued += 2
            self.server.check_validate(client, self.admin, self.subject)

    def validate_headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.admin, "X-Subject-Token": self.subject}



class Bench:
    def __init__(self, plan: Plan, results: Results, log: bool = True) -> None:
        self.plan = plan
        self.results = results
        self.log = log
        self.quiet_budget = plan.quiet_budget  # seconds of waiting left for the whole run

    def say(self, text: str) -> None:
        if self.log:
            print(text, flush=True)

    # -- one measurement ---------------------------------------------------------------
    def measure(self, server: Server, op: str, concurrency: int, tokens_before: int, *,
                method: str = "GET", headers: dict[str, str] | None = None,
                body: str | None = None, duration: float | None = None,
                quiet: bool = True) -> Row:
        duration = self.plan.duration if duration is None else duration
        if quiet:
            self.wait_quiet(server)
        cpu0, busy0, client0 = server.cpu_seconds(), busy_seconds(), children_seconds()
        stats = wrk.run(server.tokens_url, method=method, headers=headers, body=body,
                        concurrency=concurrency, duration=duration)
        cpu1, busy1, client1 = server.cpu_seconds(), busy_seconds(), children_seconds()
        # CPU that neither the server nor wrk used: other work on this machine.
        other = (busy1 - busy0) - (cpu1 - cpu0) - (client1 - client0)
        return Row(server.name, op, concurrency, tokens_before, round(stats.rps, 1),
                   stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.ok, stats.errors,
                   round(stats.seconds, 2),
                   round((cpu1 - cpu0) / stats.ok * 1000, 3) if stats.ok else None,
                   round(max(0.0, other) / stats.seconds, 2) if stats.seconds else None)

    def show(self, row: Row, kept: bool = True) -> None:
        self.say(f"  {row.server:17s} {row.op:15s} c{row.concurrency}  {row.rps:>9,.1f} req/s  "
                 f"p50 {row.p50_ms:7.2f} ms  p95 {row.p95_ms:7.2f} ms  ok {row.ok:>7,}  "
                 f"errors {row.errors}  other load {row.other_cpu or 0:.1f}"
                 + ("" if kept else "  (not the best: not kept)"))

    def wait_quiet(self, server: Server) -> None:
        """Wait (bounded) until other work leaves this machine's cores mostly idle.

        The machine may be shared (test suites of other work); a measurement taken while
        another process burns a core says more about that process than about the server.
        """
        if self.plan.quiet_wait <= 0:
            return
        start = time.monotonic()
        deadline = start + min(self.plan.quiet_wait, self.quiet_budget)
        said = False
        while True:
            busy0, cpu0 = busy_seconds(), server.cpu_seconds()
            time.sleep(0.5)
            other = (busy_seconds() - busy0 - (server.cpu_seconds() - cpu0)) / 0.5
            if other <= QUIET_CORES or time.monotonic() >= deadline:
                break
            if not said:
                self.say(f"  (waiting up to {deadline - time.monotonic():.0f} s for a quieter "
                         f"machine: other work uses {other:.1f} cores)")
                said = True
            time.sleep(2.0)
        self.quiet_budget = max(0.0, self.quiet_budget - (time.monotonic() - start - 0.5))

    # -- operations, taking turns between the servers ------------------------------------
    def in_turns(self, targets: list[Target], op: str, concurrency: int, reps: int) -> None:
        """``reps`` rounds of ``op`` on each target in turn; each keeps its best round."""
        best: dict[str, Row] = {}
        for _ in range(reps):
            for t in targets:
                row = self.measure(t.server, op, concurrency, t.issued, **self.request(t, op))
                if op != "validate":
                    t.issued += row.ok
                if reps > 1:
                    self.show(row, kept=True)
                if t.name not in best or row.rps > best[t.name].rps:
                    best[t.name] = row
        for t in targets:
            self.results.rows.append(best[t.name])
            if reps == 1:
                self.show(best[t.name])

    def request(self, t: Target, op: str) -> dict[str, Any]:
        json_headers = {"Content-Type": "application/json"}
        if op == "validate":
            return {"headers": t.validate_headers()}
        if op == "password issue":
            return {"method": "POST", "headers": json_headers,
                    "body": json.dumps(t.server.password_body())}
        if op in ("re-scope issue", "bulk re-scope"):
            return {"method": "POST", "headers": json_headers,
                    "body": json.dumps(t.server.token_body(t.admin))}
        raise ValueError(op)

    def memory(self, t: Target, point: str) -> None:
        mem = Memory(t.name, point, t.issued, round(t.server.rss_mb(), 1))
        self.results.memory.append(mem)
        self.say(f"  {t.name:17s} RSS {mem.rss_mb:,.1f} MiB after {t.issued:,} tokens "
                 f"({point})")

    def prepare(self, t: Target) -> None:
        """Ten tokens issued; a checked validation; an unrecorded validate warm-up."""
        t.fresh_tokens()
        with httpx.Client(timeout=60.0) as client:
            while t.issued < 10:
                t.server.issue(client, rescope_of=t.admin)
                t.issued += 1
        self.measure(t.server, "validate", 8, t.issued, duration=self.plan.warmup,
                     quiet=False, **self.request(t, "validate"))

    # -- the whole run --------------------------------------------------------------------
    def run(self, targets: list[Target], bulk: dict[str, int | None]) -> None:
        """Every measurement on every target; ``bulk`` maps a target to its token goal
        (None: a time-bounded sample)."""
        for t in targets:
            self.prepare(t)
            self.memory(t, "start")
        for c in CONCURRENCY:
            self.in_turns(targets, "validate", c, self.plan.validate_reps)
        for op in ("password issue", "re-scope issue"):
            for c in CONCURRENCY:
                self.in_turns(targets, op, c, 1)
        for t in targets:
            self.memory(t, "before bulk issue")
            goal = bulk.get(t.name)
            row = self.bulk(t, goal, self.plan.bulk_max_seconds if goal else
                            self.plan.keystone_bulk_seconds)
            t.issued += row.ok
            self.memory(t, "after bulk issue")
        for t in targets:
            t.fresh_tokens()
        for c in CONCURRENCY:
            self.in_turns(targets, "validate", c, self.plan.validate_reps)
        for t in targets:
            self.memory(t, "end")

    def bulk(self, t: Target, target: int | None, max_seconds: float) -> Row:
        """Re-scope at concurrency 8 until ``target`` tokens in all (None: for max_seconds).

        wrk runs for whole seconds, so a target is reached in chunks sized from the
        rate so far; the last chunk may overshoot by up to a second's worth.
        """
        server, request = t.server, self.request(t, "bulk re-scope")
        if target is None:
            row = self.measure(server, "bulk re-scope", 8, t.issued, duration=max_seconds,
                               quiet=False, **request)
            self.results.rows.append(row)
            self.show(row)
            return row
        self.say(f"  {server.name:17s} bulk re-scope up to {target:,} tokens…")
        ok, errors, spent, rate = 0, 0, 0.0, 0.0
        cpu0 = server.cpu_seconds()
        chunks: list[Row] = []
        while t.issued + ok < target and spent < max_seconds:
            remaining = target - t.issued - ok
            seconds = 5.0 if rate <= 0 else min(20.0, max(1.0, math.ceil(remaining / rate)))
            chunk = self.measure(server, "bulk re-scope", 8, t.issued + ok, duration=seconds,
                                 quiet=False, **request)
            chunks.append(chunk)
            ok += chunk.ok
            errors += chunk.errors
            spent += chunk.seconds
            rate = ok / spent if spent else 0.0
        cpu1 = server.cpu_seconds()
        widest = max(chunks, key=lambda r: r.seconds)
        row = Row(server.name, "bulk re-scope", 8, t.issued, round(rate, 1), widest.p50_ms,
                  widest.p95_ms, widest.p99_ms, ok, errors, round(spent, 2),
                  round((cpu1 - cpu0) / ok * 1000, 3) if ok else None,
                  round(sum((c.other_cpu or 0.0) * c.seconds for c in chunks) / spent, 2)
                  if spent else None)
        self.results.rows.append(row)
        self.show(row)
        return row

    def run_validate_only(self, t: Target) -> None:
        t.fresh_tokens()
        self.measure(t.server, "validate", 8, t.issued, duration=self.plan.warmup,
                     quiet=False, **self.request(t, "validate"))
        for c in CONCURRENCY:
            self.in_turns([t], "validate", c, 1)


def run(args: argparse.Namespace, command: str = "") -> Results:
    plan = Plan.make(args.quick, args.duration, args.tokens)
    bench_root = ROOT / ".bench"
    bench_root.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = Results(
        started=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        quick=args.quick, duration=plan.duration, command=command,
        client="wrk 4.1 (`wrk -t1 -c1|8`, C/epoll, one thread, a generated Lua script for "
               "method, headers and body)",
        machine=machine_info())
    results.machine["load_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results.machine["gureum"] = _git_revision()
    results.machine["validate_reps"] = plan.validate_reps
    results.machine["quiet_wait"] = plan.quiet_wait
    results.machine["quiet_budget"] = plan.quiet_budget
    bench = Bench(plan, results)
    keystone_dir = bench_root / "keystone"
    if not args.skip_keystone:
        KeystoneServer.ensure_setup(keystone_dir, bench_root / "keystone-setup.log")
        versions = [*KeystoneServer.version(keystone_dir).split(), "?", "?"]
        results.machine["keystone"], results.machine["uwsgi"] = versions[:2]

    data_dir = bench_root / f"gureum-{stamp}"
    servers: list[Server] = []
    try:
        bench.say(f"gureum: starting `gureum up` in {data_dir}…")
        servers.append(GureumServer.start(data_dir, bench_root / f"gureum-{stamp}.log"))
        if not args.skip_keystone:
            bench.say("keystone: serving with uwsgi, 2 workers, memory cache…")
            servers.append(KeystoneServer.start(keystone_dir, cache=True))
        targets = [Target(s) for s in servers]
        bench.run(targets, {"gureum": plan.bulk_tokens, "keystone": None})
    finally:
        for server in reversed(servers):
            server.stop()
    if not args.keep_data:
        _remove_tree(data_dir)

    if not args.skip_keystone:
        bulk = results.find("keystone", "bulk re-scope", 8)
        if bulk is not None:
            results.notes.append(
                f"Keystone's bulk issue is a {plan.keystone_bulk_seconds:g} s sample "
                f"({bulk.ok:,} tokens at {bulk.rps:,.1f}/s) to keep the run short; 100,000 "
                f"tokens would take about {100_000 / max(bulk.rps, 0.1) / 60:,.0f} minutes.")
        if plan.keystone_nocache:
            bench.say("keystone: serving with uwsgi, 2 workers, no cache (validate only)…")
            keystone = KeystoneServer.start(keystone_dir, cache=False)
            try:
                bench.run_validate_only(Target(keystone))
            finally:
                keystone.stop()
    raw = bench_root / f"identity-{stamp}.json"
    raw.write_text(json.dumps(results.to_json(), indent=1))
    bench.say(f"raw results: {raw}")
    return results


def _git_revision() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short run (2 s per measurement, 5,000 tokens; about 2 minutes)")
    p.add_argument("--skip-keystone", action="store_true", help="measure gureum only")
    p.add_argument("--duration", type=float, metavar="S",
                   help="seconds per timed measurement (default 6; 2 with --quick)")
    p.add_argument("--tokens", type=int, metavar="N",
                   help="tokens gureum has issued before the last validation "
                        "(default 100,000; 5,000 with --quick)")
    p.add_argument("--output", metavar="FILE",
                   help="write the report here (default docs/performance.md for a full run; "
                        "a --quick run only prints)")
    p.add_argument("--keep-data", action="store_true", help="keep gureum's data directory")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: report an earlier run from its raw results "
                        "(.bench/identity-*.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk.available() and not args.from_json:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    command = ".venv/bin/python -m bench.identity " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    if args.from_json:
        results = Results.from_json(json.loads(Path(args.from_json).read_text()))
        results.command = results.command or f"(not recorded in {args.from_json})"
    else:
        results = run(args, command.strip())
    print()
    print(render(table(results)))
    print()
    print(render(memory_table(results)))
    print()
    output = args.output or (None if results.quick else str(ROOT / "docs" / "performance.md"))
    if output:
        write_section(Path(output), markdown(results, results.command or command.strip()))
        print(f"wrote {output}")
    print(f"done in {time.monotonic() - t0:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
