"""Identity benchmark: token issue and validation, gureum vs upstream Keystone.

    .venv/bin/python -m bench.identity [--quick] [--skip-keystone] [--duration S]

Starts a fresh `gureum up` (default settings) and Keystone from PyPI (the shared
recipe in ../shared/bench/keystone: uwsgi with 2 workers, keep-alive, its in-memory
cache) side by side and measures both in the same run with the same client (wrk,
keep-alive), taking turns so that both see the same machine: validate one token,
password issue and re-scope issue at concurrency 1 and 8; then 100,000 tokens issued
on each by token-method re-scoping (captured from the responses) and validated in
random order, each once, at concurrency 1 and 8; the servers' memory before and
after the bulk issue and after the validations. Prints a table; a full run (or one
given --output) writes docs/performance.md, from a committed revision only. Raw
results go to .bench/identity-*.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from bench import revision, wrk
from bench.identity_run import Bench, Plan, Target
from bench.report import (
    Results,
    machine_info,
    markdown,
    memory_table,
    table,
    write_section,
)
from bench.report import text_table as render
from bench.servers import ROOT, GureumServer, KeystoneServer, Server, cache_dir, recipe_dir

__all__ = ["Plan", "main", "parse_args", "run"]


def run(args: argparse.Namespace, command: str = "") -> Results:
    plan = Plan.make(args.quick, args.duration, args.tokens)
    bench_root = ROOT / ".bench"
    bench_root.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = Results(
        started=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        quick=args.quick, duration=plan.duration, command=command,
        client="wrk 4.1 (`wrk -t1 -c1|8`, C/epoll, one thread, HTTP/1.1 keep-alive, a "
               "generated Lua script for method, headers and body)",
        machine=machine_info())
    results.machine["load_at_start"] = load_avg()
    results.machine["gureum"] = revision.describe()
    results.machine["validate_reps"] = plan.validate_reps
    results.machine["quiet_wait"] = plan.quiet_wait
    results.machine["quiet_budget"] = plan.quiet_budget
    results.machine["bulk_tokens"] = plan.bulk_tokens
    results.machine["seed"] = plan.seed
    bench = Bench(plan, results)
    state_dir = Path(args.keystone_state_dir)
    recipe = None
    if not args.skip_keystone:
        recipe = recipe_dir(Path(args.keystone_dir) if args.keystone_dir else None)
        results.machine["keystone_recipe"] = str(recipe)
        KeystoneServer.ensure_setup(state_dir, recipe, bench_root / "keystone-setup.log")
        versions = [*KeystoneServer.version(state_dir).split(), "?", "?"]
        results.machine["keystone"], results.machine["uwsgi"] = versions[:2]

    work = bench_root / f"identity-{stamp}"
    work.mkdir()
    data_dir = work / "gureum-data"
    servers: list[Server] = []
    try:
        bench.say(f"gureum: starting `gureum up` in {data_dir}…")
        servers.append(GureumServer.start(data_dir, work / "gureum.log"))
        if recipe is not None:
            bench.say("keystone: serving with uwsgi, 2 workers, keep-alive, memory cache…")
            servers.append(KeystoneServer.start(state_dir, recipe, cache=True))
        targets = [Target(s, work) for s in servers]
        bench.run(targets)
        if recipe is not None and plan.keystone_nocache:
            servers.pop().stop()
            bench.say("keystone: serving with uwsgi, 2 workers, no cache (validate only)…")
            servers.append(KeystoneServer.start(state_dir, recipe, cache=False))
            bench.run_validate_only(Target(servers[-1], work))
    finally:
        for server in reversed(servers):
            server.stop()
    results.machine["load_at_end"] = load_avg()
    results.notes += args.note
    if not args.keep_data:
        shutil.rmtree(work, ignore_errors=True)
    raw = bench_root / f"identity-{stamp}.json"
    raw.write_text(json.dumps(results.to_json(), indent=1))
    bench.say(f"raw results: {raw}")
    return results


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short run (2 s per measurement, 5,000 tokens; a few minutes)")
    p.add_argument("--skip-keystone", action="store_true", help="measure gureum only")
    p.add_argument("--duration", type=float, metavar="S",
                   help="seconds per timed measurement (default 10; 2 with --quick)")
    p.add_argument("--tokens", type=int, metavar="N",
                   help="distinct tokens issued on each server and validated in random order "
                        "(default 100,000; 5,000 with --quick)")
    p.add_argument("--keystone-dir", metavar="DIR",
                   help="the shared Keystone recipe (default ../shared/bench/keystone)")
    p.add_argument("--keystone-state-dir", metavar="DIR",
                   default=str(cache_dir() / "keystone"),
                   help="where the recipe's setup.sh installs Keystone once (default "
                        "%(default)s)")
    p.add_argument("--output", metavar="FILE",
                   help="write the report here (default docs/performance.md for a full run; "
                        "a --quick run only prints)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write docs/performance.md even from uncommitted changes")
    p.add_argument("--note", metavar="TEXT", action="append", default=[],
                   help="a sentence for the report's findings (e.g. that the numbers are "
                        "provisional, and why); may be given more than once")
    p.add_argument("--keep-data", action="store_true",
                   help="keep gureum's data directory and the token files")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: report an earlier run from its raw results "
                        "(.bench/identity-*.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk.available() and not args.from_json:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    default_output = None if args.quick else str(ROOT / "docs" / "performance.md")
    output = args.output or default_output
    if not args.from_json:
        why = revision.refuse_dirty(output == default_output and output is not None,
                                    args.allow_dirty)
        if why:
            print(f"bench.identity: {why}", file=sys.stderr)
            return 2
    t0 = time.monotonic()
    command = ".venv/bin/python -m bench.identity " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    if args.from_json:
        results = Results.from_json(json.loads(Path(args.from_json).read_text()))
        results.command = results.command or f"(not recorded in {args.from_json})"
        results.notes += [n for n in args.note if n not in results.notes]
        output = args.output or (None if results.quick else default_output)
    else:
        results = run(args, command.strip())
    print()
    print(render(table(results)))
    print()
    print(render(memory_table(results)))
    print()
    if output:
        write_section(Path(output), markdown(results, results.command or command.strip()))
        print(f"wrote {output}")
    print(f"done in {time.monotonic() - t0:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
