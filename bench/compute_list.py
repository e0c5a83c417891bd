"""The listing part of the compute benchmark: many server rows, then list them.

Creating 10,000 servers through the API takes long on a small machine and is not
what is measured here, so most rows are copies, inserted straight into the
database with the models, of a few servers that were created through the API and
are ACTIVE (same flavor, image, addresses and metadata; new id, name and sequence
number; spread over the same hosts). The copies hold no claims and no ports; the
listing does not look at either.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import httpx
from sqlalchemy import Table, func, insert, select, update

from bench.compute_cloud import BenchCloud
from bench.compute_report import ListRow
from gureum.compute import instances
from gureum.compute.models import Counter, Instance
from gureum.db import Database, utcnow
from gureum.db.base import new_uuid

COPIED = [c.key for c in Instance.__table__.columns
          if c.key not in ("id", "seq", "name", "hostname", "reservation_id", "created_at",
                           "updated_at", "launch_index")]


def count_servers(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.session(write=False) as s:
            return int(s.scalar(select(func.count()).select_from(Instance).where(
                Instance.deleted.is_(False))) or 0)
    finally:
        db.dispose()


def seed_servers(database_url: str, total: int, batch: int = 1000) -> int:
    """Copy the ACTIVE servers until ``total`` servers exist; how many rows were added."""
    db = Database(database_url)
    added = 0
    try:
        with db.session(write=False) as s:
            existing = int(s.scalar(select(func.count()).select_from(Instance).where(
                Instance.deleted.is_(False))) or 0)
            templates = [{c: getattr(i, c if c != "metadata" else "metadata_")
                          for c in COPIED}
                         for i in s.scalars(select(Instance).where(
                             Instance.deleted.is_(False), Instance.vm_state == "active"))]
        if not templates:
            raise RuntimeError("no ACTIVE server to copy")
        while existing + added < total:
            n = min(batch, total - existing - added)
            with db.session() as s:
                first = instances.next_seq(s)
                s.execute(update(Counter).where(Counter.name == "instance")
                          .values(value=Counter.value + n - 1))
                now = utcnow()
                rows = []
                for k in range(n):
                    seq = first + k
                    row = dict(templates[(added + k) % len(templates)])
                    name = f"list-{seq:06d}"
                    row.update(id=new_uuid(), seq=seq, name=name, hostname=name,
                               reservation_id=f"r-{seq:08x}", launch_index=0,
                               created_at=now, updated_at=now)
                    rows.append(row)
                s.execute(insert(cast(Table, Instance.__table__)), rows)
            added += n
    finally:
        db.dispose()
    return added


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def api_list(cloud: BenchCloud, token: str, servers: int, runs: int, version: str | None,
             page: int | None = None) -> ListRow:
    """``GET /servers/detail?all_tenants=1`` (following next links with ``page``)."""
    headers = {"X-Auth-Token": token}
    if version:
        headers["OpenStack-API-Version"] = version
    query = "all_tenants=1" + (f"&limit={page}" if page else "")
    times: list[float] = []
    cpus: list[float] = []
    rows = pages = size = 0
    load = _load()
    with httpx.Client(base_url=cloud.url, timeout=600.0, headers=headers) as client:
        client.get("/compute/v2.1/servers/detail?all_tenants=1&limit=1")  # warm connection
        for _ in range(runs):
            cpu0 = cloud.cpu_seconds()
            t0 = time.perf_counter()
            url: str | None = f"/compute/v2.1/servers/detail?{query}"
            rows = pages = size = 0
            while url:
                r = client.get(url)
                r.raise_for_status()
                size += len(r.content)
                body = r.json()
                rows += len(body["servers"])
                pages += 1
                nxt = [link["href"] for link in body.get("servers_links", [])
                       if link.get("rel") == "next"]
                url = nxt[0] if nxt else None
            times.append(time.perf_counter() - t0)
            cpus.append(cloud.cpu_seconds() - cpu0)
    label = (f"GET /servers/detail?all_tenants=1{f'&limit={page} (all pages)' if page else ''}"
             f" at {version.split()[-1] if version else '2.1 (no header)'}")
    return ListRow(servers, "API", label, runs, round(statistics.median(times), 3),
                   round(min(times), 3), round(max(times), 3), rows, pages,
                   round(size / 1024, 1), round(statistics.median(cpus), 3) if cloud.pid
                   else None, load)


def openstack_env(cloud: BenchCloud) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    env["OS_CLOUD"] = "gureum"
    return env


def openstack_bin() -> str:
    exe = Path(sys.executable).parent / "openstack"
    return str(exe) if exe.exists() else "openstack"


def cli_list(cloud: BenchCloud, servers: int, runs: int, extra: list[str],
             fmt: str = "table") -> ListRow:
    """The real `openstack` CLI, a fresh process each run (as a user runs it), as admin."""
    args = ["server", "list", "--long", "--all-projects", *extra]
    cmd = [openstack_bin(), *args, *([] if fmt == "table" else ["-f", fmt])]
    env = openstack_env(cloud)
    times: list[float] = []
    cpus: list[float] = []
    own: list[float] = []
    rows = 0
    load = _load()
    for _ in range(runs):
        cpu0, child0 = cloud.cpu_seconds(), _children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        times.append(time.perf_counter() - t0)
        cpus.append(cloud.cpu_seconds() - cpu0)
        own.append(_children_cpu() - child0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                               f"{proc.stderr[-500:]}")
        if fmt == "json":
            rows = len(json.loads(proc.stdout))
        else:  # the table: a header line, then one "| …" line per server
            rows = sum(1 for line in proc.stdout.splitlines() if line.startswith("| ")) - 1
    label = "openstack " + " ".join(args) + ("" if fmt == "table" else f" -f {fmt}")
    return ListRow(servers, "CLI", label, runs, round(statistics.median(times), 3),
                   round(min(times), 3), round(max(times), 3), rows, 1, None,
                   round(statistics.median(cpus), 3) if cloud.pid else None, load,
                   round(statistics.median(own), 3))


def _children_cpu() -> float:
    """User + system CPU of this process's finished children (the CLI runs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
