"""Plain sentences from the compute benchmark's numbers, and how they were measured."""

from __future__ import annotations

from bench.compute_report import FlowRow, ListRow, Results, claim_line


def _flow(results: Results, op: str, network: str | None = None,
          concurrency: int | None = None) -> FlowRow | None:
    for r in results.flows:
        if r.op == op and (network is None or r.network == network) and \
                (concurrency is None or r.concurrency == concurrency):
            return r
    return None


def _list(results: Results, servers_at_least: int, client: str, starts: str
          ) -> ListRow | None:
    found = [r for r in results.lists if r.client == client and r.request.startswith(starts)
             and r.servers >= servers_at_least]
    return min(found, key=lambda r: r.servers) if found else None


def _lists(results: Results, client: str, request: str) -> list[ListRow]:
    return sorted((r for r in results.lists if r.client == client and r.request == request),
                  key=lambda r: r.servers)


def findings(results: Results) -> list[str]:
    out: list[str] = []
    none = _flow(results, "create", "none", 8) or _flow(results, "create", "none")
    private = _flow(results, "create", "private")
    if none:
        out.append(f"Create → ACTIVE without networks: **{none.rate:.1f} servers/s** "
                   f"({none.ok}/{none.servers} in {none.wall_s:.1f} s at concurrency "
                   f"{none.concurrency}), per server p50 {none.p50_s:.2f} s, p95 "
                   f"{none.p95_s:.2f} s; gureum spends {none.server_cpu_ms or 0:.0f} ms CPU "
                   "per server.")
    c16 = _flow(results, "create", "none", 16)
    if none and c16 and c16 is not none:
        out.append(f"Concurrency 16 instead of 8: {c16.rate:.1f} servers/s, p50 "
                   f"{c16.p50_s:.2f} s: gureum is already saturated at 8, more requests "
                   "in flight only make the conductor's queue longer.")
    if none and private and none.rate and private.rate:
        cpu = ""
        if none.server_cpu_ms and private.server_cpu_ms:
            ratio = private.server_cpu_ms / none.server_cpu_ms
            cpu = (f"; CPU per server {private.server_cpu_ms:.0f} vs "
                   f"{none.server_cpu_ms:.0f} ms ({ratio:.1f}x)")
        out.append(f"With a network (a port, IPAM and binding per server): "
                   f"{private.rate:.1f} servers/s vs {none.rate:.1f} "
                   f"({(1 - private.rate / none.rate) * 100:.0f}% fewer){cpu}.")
    late = next((r for r in results.flows if r.op == "create" and "exist" in r.network), None)
    if late and none:
        cpu = ""
        if late.server_cpu_ms and none.server_cpu_ms:
            cpu = (f", gureum CPU per server {late.server_cpu_ms:.0f} ms vs "
                   f"{none.server_cpu_ms:.0f} ms")
        existing = late.network.split("(")[-1].split(" servers")[0]
        out.append(f"Create with {existing} servers in the project already: "
                   f"{late.rate:.1f} servers/s ({late.servers} at concurrency "
                   f"{late.concurrency}, POST p50 {late.api_p50_ms or 0:.0f} ms){cpu}; in "
                   f"an empty cloud {none.rate:.1f} servers/s, POST p50 "
                   f"{none.api_p50_ms or 0:.0f} ms.")
    deletes = [r for r in results.flows if r.op == "delete"]
    if deletes:
        out.append("Delete: " + ", ".join(
            f"{r.servers} servers ({r.network}, c{r.concurrency}) at {r.rate:.1f}/s"
            for r in deletes) + ".")
    for variant in ("at 2.1 (no header)", "at 2.100"):
        rows = _lists(results, "API", f"GET /servers/detail?all_tenants=1 {variant}")
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            out.append(f"`GET /servers/detail?all_tenants=1` {variant}: {a.p50_s:.2f} s for "
                       f"{a.servers:,} servers, {b.p50_s:.2f} s for {b.servers:,} "
                       f"({b.p50_s / a.p50_s:.1f}x for {b.servers / a.servers:.0f}x the rows; "
                       f"{b.p50_s / b.servers * 1e6:.0f} µs per server, "
                       f"{b.kib or 0:,.0f} KiB).")
    cli = _lists(results, "CLI", "openstack server list --long --all-projects")
    base = _lists(results, "CLI", "openstack server list --long --all-projects --limit 1")
    if cli:
        parts = [f"{r.p50_s:.1f} s with {r.servers:,} servers" for r in cli]
        extra = f" (a one-row listing takes {base[-1].p50_s:.1f} s: start-up, " \
                "password authentication, catalog)" if base else ""
        out.append("`openstack server list --long --all-projects`: " + ", ".join(parts) +
                   extra + ".")
    paged = _lists(results, "CLI", "openstack server list --long --all-projects --limit 1000")
    if paged:
        out.append("With `--limit 1000` the CLI asks for one page (no paging; "
                   "`paginated=False` in openstackclient): " +
                   ", ".join(f"{r.p50_s:.1f} s with {r.servers:,} servers" for r in paged) + ".")
    out.append(claim_line(results))
    acts = [r for r in results.flows if r.op not in ("create", "delete")]
    if acts:
        out.append("Actions, all servers at once: " + "; ".join(
            f"{r.op} p50 {r.p50_s:.2f} s / p95 {r.p95_s:.2f} s ({r.ok}/{r.servers})"
            for r in acts if r.p50_s is not None and r.p95_s is not None) + ".")
    busy = [(r, r.rate * r.server_cpu_ms / 1000) for r in results.flows
            if r.op == "create" and r.server_cpu_ms and r.rate and "exist" not in r.network]
    if busy:
        out.append("While creating, gureum kept " + ", ".join(
            f"{cores:.2f} cores busy ({r.network}, c{r.concurrency})" for r, cores in busy) +
            " of the two: `gureum up` is one Python process, so one core's worth of "
            "interpreter (the GIL) bounds it, and the CPU per server is what sets the rate.")
    costly = [(r, r.server_cpu_ms) for r in acts if r.server_cpu_ms and r.wall_s]
    if costly:
        out.append("Actions cost gureum " + ", ".join(
            f"{r.op} {ms:.0f} ms" for r, ms in costly) + " of CPU per server; "
            "for all servers at once that is " + ", ".join(
                f"{ms * r.servers / 1000:.1f} s of CPU in {r.wall_s:.1f} s"
                for r, ms in costly) + ": the servers share one busy interpreter, so "
            "each server's time is close to the whole batch's.")
    bad = [r for r in results.flows if r.errors]
    for r in bad:
        out.append(f"**{r.op}** ({r.network}, {r.servers} servers): {r.errors} failed — "
                   f"{r.error_sample}")
    return out


def method(results: Results) -> list[str]:
    p = results.plan
    return [
        f"Cloud: `gureum up --hosts {p.get('hosts', 10)} --config <file>`, a subprocess "
        "with its default settings (SQLite, in-memory bus, fake driver without delays, "
        "bcrypt cost 12) except `[quota] instances = cores = ram = -1` and `[compute] "
        "fake_vcpus = 32` (128 vCPUs per host at the default 4.0 allocation ratio, so that "
        "100 m1.nano servers fit on one host for the evacuation). Each host: 32,768 MiB "
        "(512 reserved), 500 GB.",
        "Client: Python asyncio + httpx in one process, one admin token (project admin), "
        "microversion 2.100 unless said otherwise. Servers: m1.nano (1 vCPU, 128 MiB, 1 "
        "GB), image cirros.",
        "States are watched, not polled per server: every 0.2 s one `GET "
        "/servers/detail?all_tenants=1&changes-since=<previous poll - 2 s>` (and every 5 s "
        "everything changed since the run began). A state is timed when the poll that "
        "shows it returns, so per-server times are late by up to ~0.2 s plus one poll.",
        f"Create: {p.get('create_servers', 500)} `POST /servers` with at most "
        "`conc` requests in flight; wall = first POST sent → last server seen ACTIVE; "
        "servers/s = ACTIVE servers / wall; p50/p95 per server from its POST to ACTIVE. "
        "`private`: a network `bench-private` with one subnet 10.64.0.0/20 in the admin "
        "project (the default `private` network is a /26, 61 addresses), so each server "
        "gets a port, an address and a binding. Delete rows: `DELETE` for all of them, same "
        "concurrency, until each is seen DELETED (changes-since shows deleted servers).",
        "gureum CPU ms/server: user+system CPU of the `gureum up` process during the run "
        "divided by the servers; it moves much less than rates with other load.",
        "Listing: a second fresh `gureum up` (same settings). "
        f"{p.get('list_templates', 20)} servers are created through the API with a port on "
        "bench-private and become ACTIVE; the rest are **copies of those rows inserted "
        "straight into the database** with the models (new id, name, sequence number; same "
        "flavor, image, addresses, host spread, vm_state active), up to each size. API: "
        f"median of {p.get('api_runs', 5)} sequential runs with httpx, request to the last "
        "byte (JSON decoding included, one connection kept alive); `limit=1000 (all pages)` "
        "follows `servers_links` next links. CLI: the real `openstack` (python-"
        f"openstackclient) as admin from clouds.yaml, a fresh process each run, median of "
        f"{p.get('cli_runs', 3)}, default table output captured; this includes Python "
        "start-up, password authentication (bcrypt) and the catalog.",
        f"Claims: a flavor `bench.claim` (1 vCPU, {8192:,} MiB, 1 GB) that only RAM limits; "
        f"room = Σ over hosts of ⌊free RAM / 8,192⌋ from os-hypervisors; "
        f"{p.get('claim_boots', 50)} `POST /servers` sent at once; each server waited for "
        "until ACTIVE or ERROR; \"claims add up\": the hypervisors' memory_mb_used grew by "
        "exactly ACTIVE x 8,192 MiB. All deleted between rounds.",
        f"Actions: {p.get('action_servers', 100)} m1.nano servers (no network) spread over "
        "the hosts; each action sent for all of them at once (no client-side limit; the API "
        "serves them with its thread pool), one action after the other on the same "
        "servers: stop, start, resize to m1.tiny + confirm, cold migrate + confirm, live "
        "migrate (`block_migration: auto`, scheduler picks the host), delete. A server's "
        "time runs from sending its request to seeing the final state; for two-stage "
        "actions the confirm is sent as soon as that server is seen in VERIFY_RESIZE, and "
        "the stages column splits the time (request → VERIFY_RESIZE, confirm → ACTIVE). "
        "API p50/p95: the first request's response time. Evacuate: 100 new servers booted "
        "onto c01 (`availability_zone: nova:c01`, admin), c01's compute service forced down "
        "(`PUT /os-services/{id}` `forced_down: true` at 2.53), then `evacuate` for all at "
        "once until each is ACTIVE on another host.",
        "The fake driver has no delays here, so these times are gureum's own control plane "
        "(API, database, bus, conductor, scheduler) on a loaded two-core machine, not a "
        "hypervisor's.",
    ]


# What profiling showed (py-spy on the `gureum up` process, --gil: samples of the thread
# holding the interpreter; SQL counted with SQLAlchemy events in an in-process cloud), at
# the revision named. Static text: rerun the profiles when the code they describe changes.
PROFILED_AT = "b0d85e9"
INTERPRETATION = [
    "**Fixed since the last profile (de70f38)**: quotas are counted in SQL and skipped when "
    "unlimited (create with 10,000 servers in the project is no longer slower than in an "
    "empty cloud), the scheduler no longer reads every instance per boot, server lists "
    "stop at `max_limit` (1,000) with a next link, `microversion.parse` is cached, and "
    "paging finds its marker by keyset.",
    "**A boot costs ~40 ms of gureum CPU** (novabench, `networks: \"none\"`, 10 hosts: "
    "41 ms per server at `--poll 0.5`, 59 ms at `--poll 0.05` because every status poll "
    "costs ~2 ms: `GET /servers/{id}` runs 3 transactions and 6 statements). One Python "
    "process therefore builds at most ~25 servers/s, and 10x upstream Nova's 2.97/s "
    "needs 29.7/s, i.e. at most ~34 ms per boot of one whole core, client polls "
    "included.",
    "**Where a boot's time goes**: ~57 SQL statements in ~7.5 transactions (6.3 of them "
    "`BEGIN IMMEDIATE` writes) per server: the instance action row is selected 5 times "
    "and updated 5 times (`instances.find_action` for each event start/finish), two action "
    "events inserted and updated, the instance updated 3 times, four port queries though "
    "the server has no network (`BuildWorkflow._network` → `allocate_network`, "
    "`bind_ports`, `_instance_ports`), two quota selects, and the outbox row inserted, "
    "read and deleted. In the profile SQLAlchemy's ORM machinery (session execute and "
    "flush, statement compilation and cache keys) is about a third of all samples; by "
    "step: scheduling and the claim 20%, the network step 13%, recording the build 12%, "
    "`POST /servers` 15%, the client's status polls 11%, action events ~20%.",
    "**Suggestions for boots**: skip the network step's queries when the request has no "
    "networks; keep the action row's id in the workflow (no lookup per event) and write a "
    "step's end and the next step's start in one transaction; fold the outbox handover "
    "into the transaction that claims the host; Core `insert`/`update` statements instead "
    "of ORM flushes on the hot path.",
    "**A delete costs ~31 statements in ~6 transactions**; listing 1,000 servers takes "
    "0.25-0.30 s on the loaded machine (0.3 ms per server, nothing queried per server), "
    "so the 10x rows for listing 1,000 (≤ 0.266 s) and for delete (≥ 20/s) sit close to "
    "their goal on this machine and depend on its load.",
    "**Boots are accepted faster than they are built.** `POST /servers` answers in "
    "~20-80 ms (p50) while the conductor needs ~40 ms of CPU per server, so a burst of 500 "
    "queues in the conductor and the per-server p50 is mostly waiting; at concurrency 16 "
    "the queue is longer with no gain in rate.",
    "**POST tail latency (p95 1-2 s against a p50 of 20-80 ms) is lock waiting.** Every "
    "write transaction starts with `BEGIN IMMEDIATE`; a writer that finds the lock taken "
    "sleeps in SQLite's busy handler and is not served in order. In `gureum up` all "
    "writers are threads of one process: a process-wide write lock taken before `BEGIN "
    "IMMEDIATE` (FIFO, no polling) would cut the tail; fewer write transactions per boot "
    "(above) would raise the rate.",
    "**`openstack server list --long` is bound by the client, not gureum**: for 10,000 "
    "servers the `openstack` process uses ~30x the CPU gureum does. openstacksdk builds a "
    "`Server` resource per row at ~11 ms of CPU each; python-openstackclient's `--limit "
    "1000` fetches one page and stops (`paginated=False`). Any server would see the "
    "same.",
]
