"""The compute benchmark's code at tiny sizes against an in-process cloud (no timings
asserted: only that every part runs, counts right and renders)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import compute
from bench.compute_cloud import BenchCloud, toml_text
from bench.compute_findings import findings, method
from bench.compute_flow import percentile
from bench.compute_list import count_servers
from bench.compute_report import (
    BEGIN,
    END,
    Results,
    markdown_section,
    text_report,
    write_section,
)
from tests.harness import InProcessCloud, make_settings

SETTINGS = {"quota": {"instances": -1, "cores": -1, "ram": -1},
            # 2,048 MiB free per host: two 1,024 MiB claim servers each.
            "compute": {"fake_vcpus": 32, "fake_memory_mb": 2560}}


@pytest.fixture(scope="module")
def bench_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchCloud]:
    data_dir: Path = tmp_path_factory.mktemp("bench-compute")
    cloud = InProcessCloud(make_settings(data_dir, **SETTINGS), hosts=2).start()
    yield BenchCloud(cloud.url, cloud.admin_password, cloud.settings.database_url, 2,
                     SETTINGS)
    cloud.stop()


def tiny_plan() -> compute.Plan:
    return compute.Plan(hosts=2, create_servers=4, create_runs=(("none", 2), ("private", 2)),
                        list_sizes=(12, 30), list_templates=2, api_runs=1, cli_runs=1,
                        cli_runs_large=1, claim_boots=6, claim_rounds=1, action_servers=3,
                        late_creates=2, claim_ram=1024, timeout=60.0)


def test_every_part_runs_and_counts_right(bench_cloud: BenchCloud, tmp_path: Path) -> None:
    results = Results(started="now", quick=True, command="test")
    bench = compute.Bench(tiny_plan(), results, log=False)
    asyncio.run(bench.claims(bench_cloud))
    asyncio.run(bench.creates(bench_cloud))
    asyncio.run(bench.actions(bench_cloud))
    bench.listing(bench_cloud, cli=False)

    [claim] = results.claims
    assert (claim.capacity, claim.active, claim.no_valid_host, claim.other) == (4, 4, 2, 0)
    assert claim.claims_match and claim.correct
    ops = [(r.op, r.network) for r in results.flows]
    assert ops[:4] == [("create", "none"), ("delete", "none"), ("create", "private"),
                       ("delete", "private")]
    assert [op for op, _ in ops[4:]] == ["stop", "start", "resize + confirm",
                                         "cold migrate + confirm", "live migrate", "delete",
                                         "evacuate", "create"]
    for row in results.flows:
        assert row.errors == 0 and row.ok == row.servers, row
        assert row.p50_s is not None and row.p95_s is not None
    resize = next(r for r in results.flows if r.op == "resize + confirm")
    assert resize.stages.startswith("resize ") and " · confirm " in resize.stages
    sizes = sorted({r.servers for r in results.lists})
    assert sizes == [12, 30]
    for row in results.lists:
        assert row.rows == row.servers and row.client == "API"
    paged = [r for r in results.lists if "limit=1000" in r.request]
    assert all(r.pages == 1 for r in paged)
    assert count_servers(bench_cloud.database_url) == 30 + 2  # the late creates

    said = findings(results)
    assert any("servers/s" in s for s in said) and any("1/1 rounds correct" in s
                                                       for s in said)
    assert "create" in text_report(results)
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n<!-- bench.identity: begin -->\nidentity\n"
                   "<!-- bench.identity: end -->\n")
    write_section(doc, markdown_section(results, said, method(results)))
    write_section(doc, markdown_section(results, said, method(results)))
    text = doc.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "identity\n<!-- bench.identity: end -->" in text
    assert Results.from_json(results.to_json()) == results


def test_small_pieces() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert toml_text({"quota": {"instances": -1}, "compute": {"fake_delays": 'a"b'}}) == (
        '[quota]\ninstances = -1\n[compute]\nfake_delays = "a\\"b"\n')
    quick, full = compute.Plan.make(True), compute.Plan.make(False)
    assert full.create_servers == 500 and full.list_sizes == (1000, 10_000)
    assert full.action_servers == 100 and quick.create_servers < full.create_servers
    args = compute.parse_args(["--quick", "--skip-cli", "--only", "list"])
    assert args.quick and args.skip_cli and args.only == "list"
