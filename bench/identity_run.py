"""The identity benchmark's measurements: two servers taking turns, the same client.

Each timed measurement is one wrk run on one server; a round runs it on gureum and
then on Keystone, so both see the same machine. Tokens for the many-token
validation are issued by token-method re-scoping on both sides (no bcrypt, so 100,000
of them take minutes, not hours) and captured from the responses by wrk; they are then
validated in a random order that uses every token once before any comes round again.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.report import (
    BULK,
    HALFWAY,
    PASSWORD,
    RESCOPE,
    VALIDATE_MANY,
    VALIDATE_ONE,
    Memory,
    Results,
    Row,
)
from bench.servers import Server, busy_seconds, children_seconds

CONCURRENCY = (1, 8)
QUIET_CORES = 0.3  # "quiet": other processes use less than this many cores
IDLE_CORES = 0.1  # "idle": the server itself uses less than this many cores
SUBJECT_HEADER = "X-Subject-Token"


@dataclass(frozen=True)
class Plan:
    duration: float  # seconds per timed measurement
    warmup: float  # unrecorded validate warm-up, seconds
    bulk_tokens: int  # issue (and capture) this many distinct tokens on each server
    bulk_max_seconds: float  # bound on each server's bulk issue
    keystone_nocache: bool  # also validate on Keystone without its cache
    quiet_wait: float  # at most this long before each measurement for a quiet machine
    quiet_budget: float  # and at most this long in all
    validate_reps: int  # validate runs per server and concurrency; the best is kept
    seed: int = 7  # the random order of the distinct tokens

    @classmethod
    def make(cls, quick: bool, duration: float | None, tokens: int | None) -> Plan:
        if quick:
            return cls(duration or 2.0, 1.0, tokens or 5_000, 120.0, False, 0.0, 0.0, 1)
        return cls(duration or 10.0, 2.0, tokens or 100_000, 1_800.0, True, 10.0, 60.0, 3)


@dataclass
class Target:
    """A server under test and what the run has done to it so far."""

    server: Server
    work_dir: Path  # the token files live here
    admin: str = ""  # the X-Auth-Token for validations
    subject: str = ""  # the one token of the same-token validation
    issued: int = 0  # tokens this server process has issued (that the bench saw)
    tokens: list[str] = field(default_factory=list)  # the distinct tokens, in random order
    cursor: int = 0  # where the next many-token validation starts in ``tokens``
    validated: int = 0  # many-token validations sent so far

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def captured_file(self) -> Path:
        return self.work_dir / f"{self.name}-issued.txt"

    @property
    def order_file(self) -> Path:
        return self.work_dir / f"{self.name}-order.txt"

    def fresh_tokens(self) -> None:
        with httpx.Client(timeout=60.0) as client:
            self.admin = self.server.issue(client)
            self.subject = self.server.issue(client)
            self.issued += 2
            self.server.check_validate(client, self.admin, self.subject)

    def read_captured(self) -> list[str]:
        if not self.captured_file.exists():
            return []
        return [line for line in self.captured_file.read_text().splitlines() if line]

    def write_order(self) -> None:
        """The tokens from the cursor on, then the ones before it: the next measurement
        validates tokens this run has not validated yet, as long as there are any."""
        text = "\n".join(self.tokens[self.cursor:] + self.tokens[:self.cursor])
        self.order_file.write_text(text + "\n")


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
                body: str | None = None, extra_lua: str = "",
                duration: float | None = None, quiet: bool = True) -> Row:
        duration = self.plan.duration if duration is None else duration
        self.wait_idle(server)
        if quiet:
            self.wait_quiet(server)
        cpu0, busy0, client0 = server.cpu_seconds(), busy_seconds(), children_seconds()
        stats = wrk.run(server.tokens_url, method=method, headers=headers, body=body,
                        concurrency=concurrency, duration=duration, extra_lua=extra_lua)
        cpu1, busy1, client1 = server.cpu_seconds(), busy_seconds(), children_seconds()
        # CPU that neither the server nor wrk used: other work on this machine.
        other = (busy1 - busy0) - (cpu1 - cpu0) - (client1 - client0)
        return Row(server.name, op, concurrency, tokens_before, round(stats.rps, 1),
                   stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.ok, stats.errors,
                   round(stats.seconds, 2),
                   round((cpu1 - cpu0) / stats.ok * 1000, 3) if stats.ok else None,
                   round(max(0.0, other) / stats.seconds, 2) if stats.seconds else None,
                   round((client1 - client0) / stats.seconds, 2) if stats.seconds else None)

    def show(self, row: Row, kept: bool = True) -> None:
        self.say(f"  {row.server:17s} {row.op:26s} c{row.concurrency}  {row.rps:>9,.1f} req/s  "
                 f"p50 {row.p50_ms:7.2f} ms  p95 {row.p95_ms:7.2f} ms  ok {row.ok:>7,}  "
                 f"errors {row.errors}  other load {row.other_cpu or 0:.1f}"
                 + ("" if kept else "  (not the best: not kept)"))

    @staticmethod
    def wait_idle(server: Server, limit: float = 20.0) -> None:
        """Wait (bounded) until the server has finished the work of the last measurement.

        When wrk stops, requests it sent are still being served (eight bcrypt password
        checks queued on two uwsgi workers take seconds); the next measurement must not
        start on a server still busy with the previous one.
        """
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            cpu0 = server.cpu_seconds()
            time.sleep(0.3)
            if (server.cpu_seconds() - cpu0) / 0.3 < IDLE_CORES:
                return

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
                if op in (PASSWORD, RESCOPE):
                    t.issued += row.ok
                if op == VALIDATE_MANY:
                    sent = row.ok + row.errors
                    t.validated += sent
                    t.cursor = (t.cursor + sent) % len(t.tokens)
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
        if op == VALIDATE_ONE:
            return {"headers": {"X-Auth-Token": t.admin, SUBJECT_HEADER: t.subject}}
        if op == VALIDATE_MANY:
            t.write_order()
            return {"headers": {"X-Auth-Token": t.admin},
                    "extra_lua": wrk.cycle_header(SUBJECT_HEADER, t.order_file)}
        if op == PASSWORD:
            return {"method": "POST", "headers": json_headers,
                    "body": json.dumps(t.server.password_body())}
        if op == RESCOPE:
            return {"method": "POST", "headers": json_headers,
                    "body": json.dumps(t.server.token_body(t.admin))}
        if op == BULK:
            return {"method": "POST", "headers": json_headers,
                    "body": json.dumps(t.server.token_body(t.admin)),
                    "extra_lua": wrk.capture_header(SUBJECT_HEADER, t.captured_file)}
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
        self.measure(t.server, VALIDATE_ONE, 8, t.issued, duration=self.plan.warmup,
                     quiet=False, **self.request(t, VALIDATE_ONE))

    # -- the whole run --------------------------------------------------------------------
    def run(self, targets: list[Target]) -> None:
        """Every measurement on every target, in turns."""
        for t in targets:
            self.prepare(t)
            self.memory(t, "start")
        for c in CONCURRENCY:
            self.in_turns(targets, VALIDATE_ONE, c, self.plan.validate_reps)
        for op in (PASSWORD, RESCOPE):
            for c in CONCURRENCY:
                self.in_turns(targets, op, c, 1)
        for t in targets:
            self.memory(t, "before bulk issue")
            self.bulk(t, self.plan.bulk_tokens, self.plan.bulk_max_seconds)
            self.memory(t, "after bulk issue")
            self.check_sample(t)
        for c in CONCURRENCY:
            self.in_turns(targets, VALIDATE_MANY, c, self.plan.validate_reps)
        for t in targets:
            self.memory(t, "after validation")

    def bulk(self, t: Target, goal: int, max_seconds: float) -> Row:
        """Re-scope at concurrency 8 until ``goal`` distinct tokens are captured (or for
        ``max_seconds``), then shuffle them into the order the validations use.

        wrk runs for whole seconds, so the goal is reached in chunks sized from the
        rate so far; the last chunk may overshoot by up to a second's worth.
        """
        server = t.server
        t.captured_file.unlink(missing_ok=True)
        self.say(f"  {server.name:17s} bulk re-scope up to {goal:,} tokens…")
        captured, errors, spent, rate = 0, 0, 0.0, 0.0
        cpu0 = server.cpu_seconds()
        chunks: list[Row] = []
        halfway = False
        while captured < goal and spent < max_seconds:
            # Aim at the halfway mark first (a memory point), then at the goal.
            remaining = (goal + 1) // 2 - captured if not halfway else goal - captured
            if remaining <= 0:
                remaining = goal - captured
            seconds = 5.0 if rate <= 0 else min(30.0, max(1.0, math.ceil(remaining / rate)))
            chunk = self.measure(server, BULK, 8, t.issued, duration=seconds, quiet=False,
                                 **self.request(t, BULK))
            chunks.append(chunk)
            t.issued += chunk.ok
            errors += chunk.errors
            spent += chunk.seconds
            captured = len(self.read_tokens(t))
            rate = captured / spent if spent else 0.0
            self.say(f"    … {captured:,} tokens in {spent:,.0f} s ({rate:,.0f}/s)")
            if not halfway and captured * 2 >= goal:
                halfway = True
                self.memory(t, HALFWAY)
        cpu1 = server.cpu_seconds()
        tokens = self.read_tokens(t)
        if len(set(tokens)) != len(tokens):
            raise RuntimeError(f"{server.name}: the bulk issue returned a token twice")
        random.Random(self.plan.seed).shuffle(tokens)
        t.tokens, t.cursor = tokens, 0
        widest = max(chunks, key=lambda r: r.seconds)
        row = Row(server.name, BULK, 8, t.issued - sum(c.ok for c in chunks),
                  round(rate, 1), widest.p50_ms, widest.p95_ms, widest.p99_ms, len(tokens),
                  errors, round(spent, 2),
                  round((cpu1 - cpu0) / len(tokens) * 1000, 3) if tokens else None,
                  round(sum((c.other_cpu or 0.0) * c.seconds for c in chunks) / spent, 2)
                  if spent else None,
                  round(sum((c.client_cpu or 0.0) * c.seconds for c in chunks) / spent, 2)
                  if spent else None)
        self.results.rows.append(row)
        self.show(row)
        return row

    @staticmethod
    def read_tokens(t: Target) -> list[str]:
        return t.read_captured()

    def check_sample(self, t: Target, n: int = 20) -> None:
        """A few of the captured tokens validate, scoped as issued: the file holds tokens,
        not fragments."""
        if not t.tokens:
            raise RuntimeError(f"{t.name}: the bulk issue captured no tokens")
        with httpx.Client(timeout=60.0) as client:
            for token in random.Random(self.plan.seed + 1).sample(t.tokens,
                                                                   min(n, len(t.tokens))):
                t.server.check_validate(client, t.admin, token)

    def run_validate_only(self, t: Target) -> None:
        t.fresh_tokens()
        self.measure(t.server, VALIDATE_ONE, 8, t.issued, duration=self.plan.warmup,
                     quiet=False, **self.request(t, VALIDATE_ONE))
        for c in CONCURRENCY:
            self.in_turns([t], VALIDATE_ONE, c, 1)

