"""The identity benchmark's pieces that need no server: wrk script, parsing, report."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import identity, wrk
from bench.report import (
    BEGIN,
    END,
    Memory,
    Results,
    Row,
    findings,
    markdown,
    md_table,
    table,
    text_table,
    write_section,
)


def test_lua_script_carries_the_request() -> None:
    script = wrk.lua_script("POST", {"X-Auth-Token": "abc]]def"}, '{"a": [[1]]}')
    assert 'wrk.method = [[POST]]' in script
    # A value containing "]]" gets a long bracket it cannot close.
    assert "wrk.headers[ [[X-Auth-Token]] ] = [=[abc]]def]=]" in script
    assert "wrk.body = [=[" in script
    assert "function done(summary, latency, requests)" in script


def test_parse_output() -> None:
    out = ("Running 1s test @ http://127.0.0.1:1/\n"
           'BENCHJSON {"requests":1000,"duration_us":2000000,"status":10,"connect":0,'
           '"read":3,"write":0,"timeout":1,"p50":250,"p95":900,"p99":1500,"max":4000}\n')
    stats = wrk.parse_output(out)
    assert stats.ok == 990 and stats.errors == 11
    assert stats.rps == pytest.approx(495.0)
    assert (stats.p50_ms, stats.p95_ms) == (0.25, 0.9)
    with pytest.raises(wrk.WrkError):
        wrk.parse_output("no result here")


def test_only_loopback_targets() -> None:
    with pytest.raises(wrk.WrkError, match="non-loopback"):
        wrk.run("http://192.0.2.1:80/")


def _results() -> Results:
    r = Results(started="2026-01-01 00:00 UTC", quick=True, duration=3.0, client="wrk",
                machine={"cpu": "test cpu", "cores": 2})
    r.rows += [
        Row("gureum", "validate", 1, 10, 4000.0, 0.2, 0.5, 0.9, 12000, 0, 3.0, 0.15, 0.0),
        Row("gureum", "validate", 8, 10, 7000.0, 1.0, 2.0, 3.0, 21000, 0, 3.0, 0.14, 0.1),
        Row("keystone", "validate", 1, 10, 150.0, 6.0, 15.0, 20.0, 450, 0, 3.0, 5.6, None),
        Row("keystone", "validate", 8, 10, 380.0, 30.0, 60.0, 70.0, 1140, 0, 3.0, 4.8, None),
        Row("gureum", "validate", 8, 100_012, 6900.0, 1.0, 2.0, 3.0, 20700, 0, 3.0, 0.14,
            0.0),
    ]
    r.memory += [Memory("gureum", "start", 10, 85.0), Memory("gureum", "end", 100_012, 90.0)]
    return r


def test_report_renders() -> None:
    results = _results()
    rows = table(results)
    assert len(rows) == 1 + len(results.rows)
    assert "7,000" in text_table(rows) and md_table(rows).count("\n") == len(rows)
    said = " ".join(findings(results))
    assert "26.7x" in said and "18.4x" in said and "meets the 10x goal" in said
    assert "after 100,012 tokens" in said
    doc = markdown(results, "python -m bench.identity --quick")
    assert doc.startswith(BEGIN) and doc.rstrip().endswith(END)
    assert "| gureum | validate |" in doc


def test_report_section_keeps_the_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "performance.md"
    section = markdown(_results(), "python -m bench.identity")
    write_section(path, section)
    assert path.read_text().startswith("# Performance")
    path.write_text(path.read_text() + "\n<!-- other: begin -->\nother\n<!-- other: end -->\n")
    write_section(path, section.replace("7,000", "7,001"))
    text = path.read_text()
    assert text.count(BEGIN) == 1 and "7,001" in text and "7,000/s" not in text
    assert "<!-- other: begin -->\nother" in text


def test_results_round_trip_through_json() -> None:
    results = _results()
    data = results.to_json()
    data["rows"][0]["unknown_later_field"] = 1  # raw files from other versions still load
    again = Results.from_json(data)
    assert again.rows[0].rps == results.rows[0].rps and again.memory == results.memory
    assert table(again) == table(results)


def test_plans_and_arguments() -> None:
    quick = identity.Plan.make(True, None, None)
    full = identity.Plan.make(False, None, None)
    assert quick.duration < full.duration and full.bulk_tokens == 100_000
    assert identity.Plan.make(False, 5.0, 2000).duration == 5.0
    args = identity.parse_args(["--quick", "--skip-keystone", "--duration", "2"])
    assert args.quick and args.skip_keystone and args.duration == 2.0
