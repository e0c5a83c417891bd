"""Compute benchmark on the fake driver: boots, listing, claims, actions; and the
Compute API side by side with upstream Nova 34.

    .venv/bin/python -m bench.compute [--quick] [--skip-cli] [--only PARTS] [--output FILE]
    .venv/bin/python -m bench.compute --only nova     # just the comparison with Nova

Starts `gureum up` (fake driver, 10 hosts, quotas lifted by a config file) and measures
through the Compute API, as a user's program would:

1. create → ACTIVE: 500 servers POSTed 8 (and 16) at a time, without a network and
   with a network (ports + IPAM); servers/s from the first POST to the last ACTIVE,
   per-server p50/p95; then deleting them all.
2. listing: a second fresh cloud with 1,000 and 10,000 servers (a few created through
   the API, the rest copies inserted into the database); `GET /servers/detail` and the
   real `openstack server list --long --all-projects` (also with --limit 1000).
3. claims: N boots at once against room for fewer: exactly that many ACTIVE, the rest
   ERROR "No valid host", hypervisor usage equal to the claims; a few rounds.
4. actions with 100 servers at once: stop, start, resize + confirm, cold migrate +
   confirm, live migrate, evacuate (100 servers on a forced-down host), delete.

5. nova: upstream Nova 34 (the shared recipe ../shared/bench/nova) and `gureum up
   --hosts 10`, one after the other, measured by the recipe's novabench.py: boot 100
   at concurrency 10, `GET /servers/detail` at 100 and 1,000 servers, delete
   (bench/compute_nova.py).

Prints tables; a full run (or one given --output) writes its sections of
docs/performance.md, from a committed revision only. Raw results go to
.bench/compute-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.compute_cloud import BenchCloud, ComputeClient, Watcher, host_of, settled
from bench.compute_flow import Flow, FlowResult, Stage, percentile
from bench.compute_list import api_list, cli_list, count_servers, seed_servers
from bench.compute_nova import NovaArgs, NovaResults
from bench.compute_report import (
    ClaimRow,
    FlowRow,
    ListRow,
    Results,
    markdown_section,
    text_report,
    write_section,
)
from bench.report import machine_info
from bench.servers import ROOT, busy_seconds

PRIVATE_CIDR = "10.64.0.0/20"  # 4,093 addresses; the default `private` is a /26


@dataclass(frozen=True)
class Plan:
    hosts: int
    create_servers: int
    create_runs: tuple[tuple[str, int], ...]  # (network, concurrency)
    list_sizes: tuple[int, ...]
    list_templates: int  # servers created through the API before copying
    api_runs: int
    cli_runs: int  # per CLI variant up to 1,000 servers
    cli_runs_large: int  # … and above (a run takes minutes there)
    claim_boots: int
    claim_rounds: int
    action_servers: int
    late_creates: int  # servers created after the biggest listing (many servers exist)
    claim_ram: int = 8192  # the claim flavor's RAM: 3 per default fake host
    timeout: float = 900.0

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(10, 100, (("none", 8), ("private", 8)), (200, 1000), 10, 2, 1, 1, 40,
                       2, 20, 50)
        return cls(10, 500, (("none", 8), ("none", 16), ("private", 8)), (1000, 10_000), 20,
                   5, 3, 1, 50, 3, 100, 100)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Meter:
    """gureum's CPU and everybody else's during one measurement."""

    def __init__(self, cloud: BenchCloud) -> None:
        self.cloud = cloud
        self.me = psutil.Process()
        self.load = load_avg()
        self.t0 = time.monotonic()
        self.cpu0 = cloud.cpu_seconds()
        self.busy0 = busy_seconds()
        self.own0 = self._own()

    def _own(self) -> float:
        t = self.me.cpu_times()
        return t.user + t.system

    def stop(self) -> tuple[float, float | None]:
        """(gureum CPU seconds, cores used by others) since the start."""
        wall = time.monotonic() - self.t0
        cpu = self.cloud.cpu_seconds() - self.cpu0
        other = (busy_seconds() - self.busy0) - cpu - (self._own() - self.own0)
        if not self.cloud.pid:
            return cpu, None
        return cpu, round(max(0.0, other) / wall, 2) if wall > 0 else None


def flow_row(op: str, network: str, concurrency: int, res: FlowResult, meter: Meter
             ) -> FlowRow:
    cpu, other = meter.stop()
    totals = [t.total for t in res.ok]
    api = [t.api_ms[0] for t in res.tracks if t.api_ms]
    stages = ""
    if len(res.stages) > 1:
        parts = []
        for i, name in enumerate(res.stages):
            secs = res.stage_seconds(i)
            parts.append(f"{name} {_f(percentile(secs, 50))} / {_f(percentile(secs, 95))}")
        stages = " · ".join(parts)
    errors = res.errors()
    sample = "; ".join(f"{n} x {msg}" for msg, n in sorted(errors.items(),
                                                        key=lambda kv: -kv[1])[:3])
    return FlowRow(op, network, concurrency, len(res.tracks), len(res.ok), len(res.failed),
                   round(res.wall, 2), round(len(res.ok) / res.wall, 1) if res.wall else 0.0,
                   _r(percentile(api, 50), 1), _r(percentile(api, 95), 1),
                   _r(percentile(totals, 50)), _r(percentile(totals, 95)),
                   _r(max(totals, default=None)), stages,
                   round(cpu / len(res.tracks) * 1000, 1) if meter.cloud.pid and res.tracks
                   else None, other, meter.load, sample[:300])


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class Bench:
    def __init__(self, plan: Plan, results: Results, log: bool = True) -> None:
        self.plan = plan
        self.results = results
        self.log = log

    def say(self, text: str) -> None:
        if self.log:
            print(text, flush=True)

    def show(self, row: FlowRow) -> None:
        self.say(f"  {row.op:24s} {row.network:8s} c{row.concurrency:<4d} {row.ok}/{row.servers}"
                 f" ok in {row.wall_s:.1f} s = {row.rate:.1f}/s  p50 {_f(row.p50_s)} s  p95 "
                 f"{_f(row.p95_s)} s  {row.stages}  errors {row.errors} "
                 f"{row.error_sample[:120]}  (load {row.load}, other {row.other_load})")

    # -- helpers -----------------------------------------------------------------------------
    async def create(self, client: ComputeClient, watcher: Watcher, names: list[str],
                     flavor: str, image: str, networks: Any, concurrency: int | None,
                     availability_zone: str | None = None) -> FlowResult:
        bodies = [client.server_body(n, flavor, image, networks, availability_zone)
                  for n in names]
        flow = Flow(client, watcher, [Stage("ACTIVE", None, lambda s, t: settled(s, "ACTIVE"))],
                    concurrency, self.plan.timeout)
        return await flow.run(create=bodies)

    async def delete(self, client: ComputeClient, watcher: Watcher, ids: list[str],
                     concurrency: int | None = 16) -> FlowResult:
        flow = Flow(client, watcher, [Stage("DELETED", client.delete,
                                            lambda s, t: s["status"] == "DELETED")],
                    concurrency, self.plan.timeout)
        return await flow.run(servers=[{"id": i} for i in ids])

    async def details(self, client: ComputeClient, ids: list[str]) -> list[dict[str, Any]]:
        wanted = set(ids)
        body = await client.get("/compute/v2.1/servers/detail?all_tenants=1")
        return [s for s in body["servers"] if s["id"] in wanted]

    # -- 1. create → ACTIVE ------------------------------------------------------------------
    async def creates(self, cloud: BenchCloud) -> None:
        client = ComputeClient(cloud)
        try:
            await client.login()
            image = await client.image_id()
            flavor = await client.flavor("m1.nano", 128)
            private = await client.network("bench-private", PRIVATE_CIDR)
            async with Watcher(client) as watcher:
                for network, conc in self.plan.create_runs:
                    await client.login()
                    nets: Any = "none" if network == "none" else [{"uuid": private}]
                    label = "none" if network == "none" else "private"
                    self.say(f"create {self.plan.create_servers} servers, networks={label}, "
                             f"concurrency {conc} (load {load_avg()})…")
                    names = [f"tp-{label}-{conc}-{i:04d}"
                             for i in range(self.plan.create_servers)]
                    meter = Meter(cloud)
                    res = await self.create(client, watcher, names, flavor, image, nets, conc)
                    row = flow_row("create", label, conc, res, meter)
                    self.results.flows.append(row)
                    self.show(row)
                    ids = [t.server_id for t in res.tracks if t.server_id]
                    meter = Meter(cloud)
                    dres = await self.delete(client, watcher, ids, conc)
                    drow = flow_row("delete", label, conc, dres, meter)
                    self.results.flows.append(drow)
                    self.show(drow)
        finally:
            await client.close()

    # -- 3. claims ---------------------------------------------------------------------------
    async def claims(self, cloud: BenchCloud) -> None:
        client = ComputeClient(cloud)
        try:
            await client.login()
            image = await client.image_id()
            ram = self.plan.claim_ram
            flavor = await client.flavor("bench.claim", ram)
            async with Watcher(client) as watcher:
                for rnd in range(1, self.plan.claim_rounds + 1):
                    nodes = (await client.get("/compute/v2.1/os-hypervisors/detail",
                                              None))["hypervisors"]
                    capacity = sum(max(0, int(n["free_ram_mb"])) // ram for n in nodes)
                    before = await client.memory_claimed()
                    n = self.plan.claim_boots
                    self.say(f"claims round {rnd}: {n} boots at once, room for {capacity} "
                             f"(load {load_avg()})…")
                    load = load_avg()
                    res = await self.create(client, watcher,
                                            [f"claim-{rnd}-{i:03d}" for i in range(n)],
                                            flavor, image, "none", None)
                    after = await client.memory_claimed()
                    nvh = sum(1 for t in res.failed if "No valid host" in t.error)
                    row = ClaimRow(rnd, n, capacity, len(res.ok), nvh,
                                   len(res.failed) - nvh,
                                   after - before == len(res.ok) * ram,
                                   round(res.wall, 2), load)
                    self.results.claims.append(row)
                    self.say(f"  {row.active} ACTIVE, {row.no_valid_host} No valid host, "
                             f"{row.other} other; claims add up: {row.claims_match} "
                             f"({after - before} MiB); {'correct' if row.correct else 'WRONG'}"
                             f" in {row.wall_s:.1f} s")
                    if row.other:
                        self.say(f"  other errors: {res.errors()}")
                    ids = [t.server_id for t in res.tracks if t.server_id]
                    await self.delete(client, watcher, ids)
        finally:
            await client.close()

    # -- 4. actions --------------------------------------------------------------------------
    async def actions(self, cloud: BenchCloud) -> None:
        n = self.plan.action_servers
        client = ComputeClient(cloud)
        try:
            await client.login()
            image = await client.image_id()
            nano = await client.flavor("m1.nano", 128)
            tiny = await client.flavor("m1.tiny", 512)
            async with Watcher(client) as watcher:
                self.say(f"actions: booting {n} servers…")
                res = await self.create(client, watcher, [f"act-{i:03d}" for i in range(n)],
                                        nano, image, "none", 16)
                ids = [t.server_id for t in res.ok]
                if len(ids) < n:
                    self.results.notes.append(f"actions: only {len(ids)} of {n} servers "
                                              f"booted ({res.errors()})")

                def act(body: dict[str, Any]) -> Any:
                    return lambda sid: client.action(sid, body)

                def moved(status: str) -> Any:
                    return lambda s, t: settled(s, status) and host_of(s) != host_of(t.origin)

                plans: list[tuple[str, list[Stage]]] = [
                    ("stop", [Stage("SHUTOFF", act({"os-stop": None}),
                                    lambda s, t: settled(s, "SHUTOFF"))]),
                    ("start", [Stage("ACTIVE", act({"os-start": None}),
                                     lambda s, t: settled(s, "ACTIVE"))]),
                    ("resize + confirm", [
                        Stage("resize", act({"resize": {"flavorRef": tiny}}),
                              lambda s, t: settled(s, "VERIFY_RESIZE")),
                        Stage("confirm", act({"confirmResize": None}),
                              lambda s, t: settled(s, "ACTIVE"))]),
                    ("cold migrate + confirm", [
                        Stage("migrate", act({"migrate": None}),
                              lambda s, t: settled(s, "VERIFY_RESIZE")),
                        Stage("confirm", act({"confirmResize": None}), moved("ACTIVE"))]),
                    ("live migrate", [Stage("live", act({"os-migrateLive": {
                        "host": None, "block_migration": "auto"}}), moved("ACTIVE"))]),
                ]
                for name, stages in plans:
                    await client.login()
                    servers = await self.details(client, ids)
                    self.say(f"{name}: {len(servers)} servers at once (load {load_avg()})…")
                    meter = Meter(cloud)
                    res = await Flow(client, watcher, stages, None, self.plan.timeout).run(
                        servers=servers)
                    row = flow_row(name, "none", len(servers), res, meter)
                    self.results.flows.append(row)
                    self.show(row)
                meter = Meter(cloud)
                res = await self.delete(client, watcher, ids, None)
                row = flow_row("delete", "none", len(ids), res, meter)
                self.results.flows.append(row)
                self.show(row)
                await self.evacuate(cloud, client, watcher, nano, image)
        finally:
            await client.close()

    async def evacuate(self, cloud: BenchCloud, client: ComputeClient, watcher: Watcher,
                       flavor: str, image: str) -> None:
        n, source = self.plan.action_servers, "c01"
        self.say(f"evacuate: booting {n} servers on {source}…")
        res = await self.create(client, watcher, [f"evac-{i:03d}" for i in range(n)], flavor,
                                image, "none", 16, availability_zone=f"nova:{source}")
        ids = [t.server_id for t in res.ok]
        servers = await self.details(client, ids)
        assert all(host_of(s) == source for s in servers), "not all on the source host"
        # The host stays forced down: like Nova, gureum refuses to force it up while
        # `done` evacuations remain (until its agent restarts); this cloud ends here.
        await client.force_down(source, True)
        self.say(f"evacuate: {len(servers)} servers at once from forced-down {source} "
                 f"(load {load_avg()})…")
        meter = Meter(cloud)
        stage = Stage("ACTIVE elsewhere", lambda sid: client.action(sid, {"evacuate": {}}),
                      lambda s, t: settled(s, "ACTIVE") and host_of(s) != source)
        res = await Flow(client, watcher, [stage], None, self.plan.timeout).run(
            servers=servers)
        row = flow_row("evacuate", "none", len(servers), res, meter)
        self.results.flows.append(row)
        self.show(row)
        await self.delete(client, watcher, ids, None)

    # -- 2. listing --------------------------------------------------------------------------
    async def templates(self, cloud: BenchCloud) -> str:
        client = ComputeClient(cloud)
        try:
            await client.login()
            image = await client.image_id()
            flavor = await client.flavor("m1.nano", 128)
            private = await client.network("bench-private", PRIVATE_CIDR)
            async with Watcher(client) as watcher:
                res = await self.create(client, watcher,
                                        [f"tmpl-{i:03d}" for i in range(self.plan.list_templates)],
                                        flavor, image, [{"uuid": private}], 8)
                if res.failed:
                    raise RuntimeError(f"template servers failed: {res.errors()}")
            return client.token
        finally:
            await client.close()

    def listing(self, cloud: BenchCloud, cli: bool) -> None:
        token = asyncio.run(self.templates(cloud))
        p = self.plan
        for size in p.list_sizes:
            added = seed_servers(cloud.database_url, size)
            total = count_servers(cloud.database_url)
            self.say(f"listing with {total:,} servers ({added:,} rows copied) (load "
                     f"{load_avg()})…")
            rows = [api_list(cloud, token, total, p.api_runs, None),
                    api_list(cloud, token, total, p.api_runs, "compute 2.100"),
                    api_list(cloud, token, total, p.api_runs, "compute 2.100", page=1000)]
            for row in rows:
                self.show_list(row)
            if cli:
                runs = p.cli_runs if total <= 1000 else p.cli_runs_large
                for extra in (["--limit", "1"], [], ["--limit", "1000"]):
                    row = cli_list(cloud, total, runs, extra)
                    rows.append(row)
                    self.show_list(row)
            self.results.lists.extend(rows)
        if p.late_creates:
            asyncio.run(self.late_creates(cloud))

    def show_list(self, row: ListRow) -> None:
        self.say(f"  {row.client} {row.request}: p50 {row.p50_s:.3f} s (min "
                 f"{row.min_s:.3f}, max {row.max_s:.3f}), {row.rows:,} rows, "
                 f"{row.pages} page(s), gureum CPU {row.server_cpu_s} s, CLI CPU "
                 f"{row.client_cpu_s} s")

    async def late_creates(self, cloud: BenchCloud) -> None:
        """Boots in a project that already has the biggest listing's servers."""
        client = ComputeClient(cloud)
        try:
            await client.login()
            image = await client.image_id()
            flavor = await client.flavor("m1.nano", 128)
            existing = count_servers(cloud.database_url)
            n = self.plan.late_creates
            self.say(f"create {n} servers with {existing:,} in the project (load "
                     f"{load_avg()})…")
            async with Watcher(client) as watcher:
                meter = Meter(cloud)
                res = await self.create(client, watcher, [f"late-{i:03d}" for i in range(n)],
                                        flavor, image, "none", 8)
                row = flow_row("create", f"none ({existing:,} servers exist)", 8, res, meter)
                self.results.flows.append(row)
                self.show(row)
        finally:
            await client.close()


# -- the run ---------------------------------------------------------------------------------

def run(args: argparse.Namespace, command: str) -> Results:
    plan = Plan.make(args.quick)
    bench_root = ROOT / ".bench"
    bench_root.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = Results(started=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                      quick=args.quick, command=command, machine=machine_info(),
                      plan=asdict(plan))
    results.machine["gureum"] = git_revision()
    results.machine["load_at_start"] = load_avg()
    bench = Bench(plan, results)
    parts = selected_parts(args)
    if parts & {"claims", "create", "actions"}:
        data = bench_root / f"compute-{stamp}"
        bench.say(f"starting `gureum up --hosts {plan.hosts}` in {data}…")
        cloud = BenchCloud.start(data, plan.hosts, bench_root / f"compute-{stamp}.log")
        try:
            if "claims" in parts:
                asyncio.run(bench.claims(cloud))
            if "create" in parts:
                asyncio.run(bench.creates(cloud))
            if "actions" in parts:
                asyncio.run(bench.actions(cloud))
        finally:
            cloud.stop()
        if not args.keep_data:
            _remove_tree(data)
    if "list" in parts:
        data = bench_root / f"compute-list-{stamp}"
        bench.say(f"starting a second `gureum up --hosts {plan.hosts}` for listing in {data}…")
        cloud = BenchCloud.start(data, plan.hosts, bench_root / f"compute-list-{stamp}.log")
        try:
            bench.listing(cloud, cli=not args.skip_cli)
        finally:
            cloud.stop()
        if not args.keep_data:
            _remove_tree(data)
    raw = bench_root / f"compute-{stamp}.json"
    raw.write_text(json.dumps(results.to_json(), indent=1))
    bench.say(f"raw results: {raw}")
    return results


PARTS = ("claims", "create", "actions", "list", "nova")


def selected_parts(args: argparse.Namespace) -> set[str]:
    parts = set(args.only.split(",")) if args.only else set(PARTS)
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; choose from "
                         f"{','.join(PARTS)}")
    return parts


def nova_args(args: argparse.Namespace) -> NovaArgs:
    base = NovaArgs(count=20, list_sizes="20,100", repeats=2) if args.quick else NovaArgs()
    return NovaArgs(**{**asdict(base), "poll": args.poll, "fine_poll": args.fine_poll})


def run_nova(args: argparse.Namespace, command: str) -> NovaResults:
    from bench import compute_nova

    machine = machine_info()
    machine["gureum"] = git_revision()
    return compute_nova.run(nova_args(args), args.nova_bench_dir, Path(args.nova_state_dir),
                            reuse=args.reuse_nova, upstream_json=args.upstream_json,
                            command=command, machine=machine)


def git_revision() -> str:
    from bench import revision

    return revision.describe()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    for extra in (path.parent / f"{path.name}.toml",):
        extra.unlink(missing_ok=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.compute", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small sizes (100 boots, 200/1,000 listed, 20 servers per action)")
    p.add_argument("--skip-cli", action="store_true", help="no `openstack` CLI runs")
    p.add_argument("--only", metavar="PARTS",
                   help="comma-separated subset of claims,create,actions,list,nova")
    p.add_argument("--nova-bench-dir", metavar="DIR",
                   help="the shared upstream Nova recipe (default ../shared/bench/nova)")
    p.add_argument("--nova-state-dir", metavar="DIR",
                   default=str(Path.home() / ".cache" / "nova-bench"),
                   help="the recipe's BENCH_DIR: its venv, configs, logs (default "
                        "%(default)s, the recipe's own default)")
    p.add_argument("--reuse-nova", action="store_true",
                   help="skip the recipe's setup.sh (which recreates its databases)")
    p.add_argument("--upstream-json", metavar="FILE",
                   help="take upstream Nova's figures from a novabench.py JSON line instead "
                        "of running it (e.g. the recipe's results-upstream.jsonl)")
    p.add_argument("--poll", type=float, default=0.5,
                   help="novabench.py's status poll interval for both clouds (default 0.5)")
    p.add_argument("--fine-poll", type=float, default=0.05,
                   help="poll interval of gureum's extra run (0: no extra run; default 0.05)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write docs/performance.md even from uncommitted changes")
    p.add_argument("--note", metavar="TEXT", action="append", default=[],
                   help="a sentence for the report's findings (e.g. that the numbers are "
                        "provisional, and why); may be given more than once")
    p.add_argument("--output", metavar="FILE",
                   help="write the report section here (default docs/performance.md for a "
                        "full run; a --quick run only prints)")
    p.add_argument("--keep-data", action="store_true", help="keep the clouds' data")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: report an earlier run (.bench/compute-*.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench import compute_nova, revision
    from bench.compute_findings import INTERPRETATION, PROFILED_AT, findings, method

    args = parse_args(argv)
    parts = selected_parts(args)
    t0 = time.monotonic()
    command = (".venv/bin/python -m bench.compute " + shlex.join(
        sys.argv[1:] if argv is None else argv)).strip()
    docs = str(ROOT / "docs" / "performance.md")
    # A full run writes both sections; --only nova writes the comparison's (its own).
    writes_docs = not args.from_json and not args.output and not args.quick and (
        not args.only or parts == {"nova"})
    why = revision.refuse_dirty(writes_docs, args.allow_dirty)
    if why:
        print(f"bench.compute: {why}", file=sys.stderr)
        return 2
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        if "runs" in data:  # a comparison with Nova
            nova = NovaResults.from_json(data)
            print(compute_nova.markdown(nova))
            if args.output:
                write_section(Path(args.output), compute_nova.markdown(nova),
                              compute_nova.BEGIN, compute_nova.END)
            return 0
        results = Results.from_json(data)
        output = args.output
    else:
        output = args.output or (docs if writes_docs else None)
        nova = None
        if "nova" in parts:
            nova = run_nova(args, command)
            nova.notes += args.note
            print()
            print(compute_nova.markdown(nova))
            if output:
                write_section(Path(output), compute_nova.markdown(nova), compute_nova.BEGIN,
                              compute_nova.END)
                print(f"wrote the Nova comparison section of {output}")
        if parts == {"nova"}:
            print(f"done in {time.monotonic() - t0:,.0f} s")
            return 0
        results = run(args, command)
        results.notes += args.note
    print()
    print(text_report(results))
    print()
    said = findings(results)
    for line in said:
        print(f"- {line}")
    if output and (args.from_json or not args.only or args.output):
        write_section(Path(output), markdown_section(results, said, method(results),
                                                     INTERPRETATION, PROFILED_AT))
        print(f"wrote the compute section of {output}")
    print(f"done in {time.monotonic() - t0:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
