"""QEMU driver benchmark: a real guest's lifecycle on `gureum up --driver qemu --hosts 2`.

    .venv/bin/python -m bench.qemu [--rounds N] [--output FILE] [--allow-dirty]
    make bench-qemu ARGS="--rounds 5"      # under flock $(BENCH_LOCK)

Two fresh clouds in temporary data directories, one after the other, driven through
the Compute API as a user's program would:

1. shared instances/ (both hosts' ``[compute] instances_path`` one directory): one
   guest boots, then live-migrates back and forth N times (memory only);
2. each host its own instances/: N rounds, each a new guest: boot → ACTIVE and → the
   guest's ``GUREUM-READY`` console line; clean stop (ACPI) and start → ready; block
   live migration to the other host; resize to m1.tiny + confirm; cold migration +
   confirm; delete.

Reports median and p90 per measure, QEMU's own downtime and total time of each live
migration (from the migration's event), and the machine's load average at the start
and the end. Writes its section of docs/performance.md (the other sections stay), from
a committed revision only unless --allow-dirty. Raw results: .bench/qemu-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.compute_cloud import ApiError, BenchCloud, ComputeClient, host_of, settled
from bench.compute_report import write_section
from bench.qemu_guest import (
    Follower,
    Mark,
    StepFailed,
    back_on_source,
    boots,
    off_host,
    on_host,
)
from bench.qemu_report import BEGIN, END, Results, findings, markdown_section, text_report
from bench.report import machine_info
from bench.servers import ROOT

HOSTS = ("c01", "c02")
BOOT_TIMEOUT = 600.0  # a TCG boot on a busy 2-core machine, with room


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def say(text: str) -> None:
    print(text, flush=True)


def other(host: str) -> str:
    return HOSTS[1] if host == HOSTS[0] else HOSTS[0]


class QemuBench:
    def __init__(self, cloud: BenchCloud, results: Results, poll: float) -> None:
        self.cloud = cloud
        self.results = results
        self.client = ComputeClient(cloud, connections=8)
        self.f = Follower(self.client, poll)
        self.image = ""
        self.nano = ""
        self.tiny = ""

    async def setup(self) -> None:
        await self.client.login()
        self.image = await self.client.image_id("cirros")
        self.nano = await self.client.flavor("m1.nano", 128)
        self.tiny = await self.client.flavor("m1.tiny", 512)

    def add(self, key: str, value: float | None) -> None:
        self.results.add(key, value)

    # -- steps -------------------------------------------------------------------------------
    async def boot(self, name: str, record: bool = True) -> str:
        body = self.client.server_body(name, self.nano, self.image, "none")
        t0 = time.monotonic()
        sid = await self.client.create(body)
        try:
            seen = await self.f.follow(sid, t0, lambda s: settled(s, "ACTIVE"),
                                       Mark(""), timeout=BOOT_TIMEOUT)
        except StepFailed:
            await self.step(f"delete {name} after its failed boot", self.delete(sid, False))
            raise
        guest = seen.boot.uptime_at_ready if seen.boot else None
        say(f"  boot {name} on {host_of(seen.server)}: ACTIVE {seen.status_s:.2f} s, ready "
            f"{seen.ready_s:.2f} s (guest uptime {guest} s)")
        if record:
            self.add("boot_active", seen.status_s)
            self.add("boot_ready", seen.ready_s)
            self.add("boot_guest", guest)
        return sid

    async def stop_start(self, sid: str) -> None:
        t0, _ = await self.f.act(sid, {"os-stop": None})
        seen = await self.f.follow(sid, t0, lambda s: settled(s, "SHUTOFF"), timeout=300)
        self.add("stop", seen.status_s)
        console = await self.f.console(sid)
        seen_boots = boots(console)
        clean = bool(seen_boots and seen_boots[-1].powered_off_cleanly)
        self.results.stops += 1
        self.results.clean_stops += clean
        mark = await self.f.mark(sid)
        t0, _ = await self.f.act(sid, {"os-start": None})
        started = await self.f.follow(sid, t0, lambda s: settled(s, "ACTIVE"), mark,
                                      timeout=BOOT_TIMEOUT)
        self.add("start_active", started.status_s)
        self.add("start_ready", started.ready_s)
        say(f"  stop {seen.status_s:.2f} s ({'clean' if clean else 'NOT clean'}), start: "
            f"ACTIVE {started.status_s:.2f} s, ready {started.ready_s:.2f} s")

    async def live(self, sid: str, kind: str) -> None:
        server = await self.f.server(sid)
        assert server is not None
        source = host_of(server)
        dest = other(source)
        tick = await self.f.wait_tick(sid, 0)
        t0, request_id = await self.f.act(sid, {"os-migrateLive": {
            "host": dest, "block_migration": "auto"}})
        seen = await self.f.follow(sid, t0, on_host("ACTIVE", dest),
                                   failed=back_on_source(source), timeout=600)
        await self.f.wait_tick(sid, tick)
        figures = await self.f.live_figures(sid, request_id)
        self.add(f"live_{kind}", seen.status_s)
        self.add(f"live_{kind}_total", figures.get("total_ms"))
        self.add(f"live_{kind}_downtime", figures.get("downtime_ms"))
        self.results.migrations.append({"kind": kind, "from": source, "to": dest,
                                        "seconds": round(seen.status_s or 0, 3), **figures})
        say(f"  live ({kind}) {source} → {dest}: ACTIVE {seen.status_s:.2f} s; QEMU {figures}")
        if kind == "block" and not figures.get("disk_mb"):
            raise StepFailed(f"a live migration between unshared hosts copied no disk: "
                             f"{figures}")
        if kind == "shared" and figures.get("disk_mb"):
            raise StepFailed(f"a live migration on shared instances/ copied disk: {figures}")

    async def two_stage(self, sid: str, key: str, body: dict[str, object],
                        want_ram: int | None) -> None:
        """resize / migrate → VERIFY_RESIZE (on the other host), confirm → ACTIVE, and the
        guest's new boot ready (with the new flavor's RAM)."""
        server = await self.f.server(sid)
        assert server is not None
        source = host_of(server)
        mark = await self.f.mark(sid)
        t0, _ = await self.f.act(sid, body)
        seen = await self.f.follow(sid, t0, off_host("VERIFY_RESIZE", source), mark,
                                   need_ready=False, timeout=BOOT_TIMEOUT)
        t1, _ = await self.f.act(sid, {"confirmResize": None})
        confirmed = await self.f.follow(sid, t1, lambda s: settled(s, "ACTIVE"), timeout=300)
        ready = seen
        if seen.ready_s is None:
            ready = await self.f.follow(sid, t0, None, mark, timeout=BOOT_TIMEOUT)
        total = (t1 - t0) + (confirmed.status_s or 0)
        self.add(key, seen.status_s)
        self.add(f"{key}_confirm", confirmed.status_s)
        self.add(f"{key}_total", total)
        self.add(f"{key}_ready", ready.ready_s)
        ram = ready.boot.ram_mb if ready.boot else None
        say(f"  {key} {source} → {host_of(seen.server)}: VERIFY_RESIZE {seen.status_s:.2f} s,"
            f" confirm {confirmed.status_s:.2f} s, total {total:.2f} s, ready "
            f"{ready.ready_s:.2f} s (guest RAM {ram} MiB)")
        if want_ram is not None and ram != want_ram:
            raise StepFailed(f"{key}: the guest booted with {ram} MiB, not {want_ram}")

    async def delete(self, sid: str, record: bool = True) -> None:
        t0 = time.monotonic()
        r = await self.client.delete(sid)
        if r.status_code not in (202, 204, 404):
            raise StepFailed(f"delete: {r.status_code} {r.text[:200]}")
        took = await self.f.gone(sid, t0)
        if record:
            self.add("delete", took)

    async def step(self, what: str, coro: object) -> bool:
        """Run one step; a failure is recorded and cuts the round short."""
        assert asyncio.iscoroutine(coro)
        try:
            await coro
            return True
        except (StepFailed, AssertionError, ApiError, httpx.HTTPError) as exc:
            self.results.failures.append(f"{what}: {exc}")
            say(f"  FAILED {what}: {exc}")
            return False

    # -- the two clouds ----------------------------------------------------------------------
    async def shared_rounds(self, rounds: int) -> None:
        await self.setup()
        sid = ""
        try:
            sid = await self.boot("qb-shared", record=False)
            for rnd in range(1, rounds + 1):
                self.results.round_loads.append(os.getloadavg()[0])
                say(f"shared live migration {rnd}/{rounds} (load {load_avg()})…")
                await self.client.login()
                if not await self.step(f"shared live migration {rnd}", self.live(sid, "shared")):
                    break
        finally:
            if sid:
                await self.step("delete the shared guest", self.delete(sid, record=False))

    async def local_rounds(self, rounds: int) -> None:
        await self.setup()
        for rnd in range(1, rounds + 1):
            self.results.round_loads.append(os.getloadavg()[0])
            say(f"round {rnd}/{rounds} (load {load_avg()})…")
            await self.client.login()
            try:
                sid = await self.boot(f"qb-{rnd}")
            except StepFailed as exc:
                self.results.failures.append(f"round {rnd}: boot: {exc}")
                say(f"  FAILED boot: {exc}")
                continue
            try:
                await self.round_steps(rnd, sid)
            finally:
                await self.step(f"round {rnd}: delete", self.delete(sid))

    async def round_steps(self, rnd: int, sid: str) -> None:
        steps = [("stop/start", lambda: self.stop_start(sid)),
                 ("block live migration", lambda: self.live(sid, "block")),
                 ("resize + confirm", lambda: self.two_stage(
                     sid, "resize", {"resize": {"flavorRef": self.tiny}}, 512)),
                 ("cold migration + confirm", lambda: self.two_stage(
                     sid, "migrate", {"migrate": None}, None))]
        for what, step in steps:
            if not await self.step(f"round {rnd}: {what}", step()):
                return

    async def close(self) -> None:
        await self.client.close()


def start_cloud(data: Path, log: Path, shared: Path | None) -> BenchCloud:
    compute: dict[str, object] = {"driver": "qemu"}
    if shared is not None:
        shared.mkdir(parents=True, exist_ok=True)
        compute["instances_path"] = str(shared)
    return BenchCloud.start(data, len(HOSTS), log, {"compute": compute}, timeout=900.0,
                            extra_args=["--driver", "qemu"])


def kill_our_guests(root: Path) -> None:
    """Guests outlive `gureum up` by design: QEMU processes whose files are under this
    run's directory (ours) and still run after their deletes are killed by pid."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and "qemu-system" in os.path.basename(cmd[0]) and any(
                str(root) in a for a in cmd):
            say(f"  killing leftover QEMU {proc.pid}")
            try:
                proc.kill()
            except psutil.Error:
                pass


def one_cloud(results: Results, root: Path, name: str, shared: bool, rounds: int,
              poll: float, stamp: str) -> None:
    data = root / name
    log = ROOT / ".bench" / f"qemu-{stamp}-{name}.log"
    say(f"starting `gureum up --driver qemu --hosts 2` in {data} "
        f"({'shared' if shared else 'own'} instances/; log {log})…")
    cloud = start_cloud(data, log, root / f"{name}-instances" if shared else None)
    bench = QemuBench(cloud, results, poll)
    try:
        run = bench.shared_rounds(rounds) if shared else bench.local_rounds(rounds)
        asyncio.run(_then_close(run, bench))
    finally:
        cloud.stop(timeout=120)
        kill_our_guests(root)


async def _then_close(run: object, bench: QemuBench) -> None:
    assert asyncio.iscoroutine(run)
    try:
        await run
    finally:
        await bench.close()


def qemu_version() -> str:
    try:
        out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "QEMU ?"
    return out.stdout.splitlines()[0].replace(" version", "") if out.stdout else "QEMU ?"


def run(args: argparse.Namespace, command: str) -> Results:
    from bench import revision

    (ROOT / ".bench").mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    machine = machine_info()
    machine["gureum"] = revision.describe()
    machine["qemu"] = qemu_version()
    results = Results(started=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                      command=command, rounds=args.rounds, machine=machine,
                      load_start=load_avg())
    say(f"load average at the start: {results.load_start}")
    # Short: QMP sockets live under it and a Unix socket's path has ~107 bytes.
    root = Path(tempfile.mkdtemp(prefix="qb-"))
    try:
        if "shared" in args.only:
            one_cloud(results, root, "shared", True, args.rounds, args.poll, stamp)
        if "local" in args.only:
            one_cloud(results, root, "local", False, args.rounds, args.poll, stamp)
    finally:
        results.load_end = load_avg()
        say(f"load average at the end: {results.load_end}")
        if args.keep_data:
            say(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        raw = ROOT / ".bench" / f"qemu-{stamp}.json"
        raw.write_text(json.dumps(results.to_json(), indent=1))
        say(f"raw results: {raw}")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.qemu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="rounds per cloud (default 5)")
    p.add_argument("--only", default="shared,local",
                   help="shared, local or both (default shared,local)")
    p.add_argument("--poll", type=float, default=0.2,
                   help="state and console poll interval, s (default 0.2)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write docs/performance.md even from uncommitted changes")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a sentence for the findings; may be given more than once")
    p.add_argument("--output", metavar="FILE",
                   help="write the section here instead of docs/performance.md")
    p.add_argument("--no-write", action="store_true", help="only print")
    p.add_argument("--keep-data", action="store_true", help="keep the clouds' data")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: report an earlier run (.bench/qemu-*.json)")
    args = p.parse_args(argv)
    args.only = set(args.only.split(","))
    if not args.only or args.only - {"shared", "local"}:
        p.error("--only takes shared, local or shared,local")
    return args


def main(argv: list[str] | None = None) -> int:
    from bench import revision

    args = parse_args(argv)
    if shutil.which("qemu-system-x86_64") is None and not args.from_json:
        print("bench.qemu: qemu-system-x86_64 not found: install Debian's qemu-system-x86 "
              "and qemu-utils (`make up` does it)", file=sys.stderr)
        return 2
    command = (".venv/bin/python -m bench.qemu " + shlex.join(
        sys.argv[1:] if argv is None else argv)).strip()
    output = None if args.no_write else Path(args.output or ROOT / "docs" / "performance.md")
    why = revision.refuse_dirty(output is not None and not args.output and not args.from_json,
                                args.allow_dirty)
    if why:
        print(f"bench.qemu: {why}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.from_json:
        results = Results.from_json(json.loads(Path(args.from_json).read_text()))
    else:
        results = run(args, command)
    results.notes += args.note
    print()
    print(text_report(results))
    print()
    for line in findings(results):
        print(f"- {line}")
    if output is not None:
        write_section(output, markdown_section(results), BEGIN, END)
        print(f"wrote the QEMU section of {output}")
    print(f"done in {time.monotonic() - t0:,.0f} s")
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
