"""The comparison with upstream Nova: the peer's own client (novabench.py, from the shared
recipe) runs against a real gureum at tiny sizes, and the report judges the 10x goal
row by row, with the client's poll cap said plainly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import compute, compute_nova
from bench.compute_nova import GUREUM, GUREUM_FINE, UPSTREAM, NovaPeer, NovaResults
from bench.servers import shared_dir
from tests.harness import InProcessCloud, make_settings

try:
    RECIPE: Path | None = shared_dir("nova")
except RuntimeError:
    RECIPE = None


@pytest.mark.skipif(RECIPE is None, reason="the shared Nova recipe is not on this machine")
def test_novabench_boots_lists_and_deletes_on_gureum(tmp_path: Path) -> None:
    assert RECIPE is not None
    settings = make_settings(tmp_path / "cloud", **compute_nova.PEER_SETTINGS)
    cloud = InProcessCloud(settings, hosts=2).start()
    try:
        out = tmp_path / "results.jsonl"
        pids = tmp_path / "pids"
        pids.write_text(f"gureum {os.getpid()}\n")
        args = compute_nova.NovaArgs(count=3, concurrency=2, list_sizes="4", repeats=1)
        argv = ["--auth-url", f"{cloud.url}/identity/v3", "--user", "demo", "--password",
                cloud.demo_password, "--project", "demo", "--image", "cirros",
                *args.argv(poll=0.05)]
        result = compute_nova.novabench(RECIPE, GUREUM, argv, pids, out, tmp_path / "log")
    finally:
        cloud.stop()
    assert result["errors_total"] == 0, result
    assert result["boot"]["active"] == 3
    assert result["list_detail"]["4"]["servers_listed"] == 4
    assert result["delete"]["deleted"] == 4
    assert json.loads(out.read_text().splitlines()[-1])["label"] == GUREUM


def _run(label: str, boot: float, list100: float, list1000: float, delete: float,
         poll: float = 0.5) -> dict[str, Any]:
    return {"label": label, "poll_s": poll, "errors_total": 0, "wall_s": 10.0,
            "server_cpu_s": 5.0, "loadavg_start": [0.1], "loadavg_end": [0.2],
            "boot": {"servers_per_s": boot, "p50_create_to_active_s": 0.6},
            "list_detail": {"100": {"median_s": list100}, "1000": {"median_s": list1000}},
            "boot_fill": {"1000": {"servers_per_s": boot}},
            "delete": {"servers_per_s": delete}}


def _results(*runs: dict[str, Any]) -> NovaResults:
    return NovaResults("now", "test", {"count": 100, "concurrency": 10, "poll": 0.5,
                                       "fine_poll": 0.05, "list_sizes": "100,1000"},
                       {"cores": 2}, list(runs))


def test_goal_is_ten_times_nova_on_every_row() -> None:
    upstream = _run(UPSTREAM, 3.0, 0.3, 2.6, 2.0)
    met = _results(upstream, _run(GUREUM, 30.0, 0.03, 0.26, 20.0))
    said = compute_nova.findings(met)
    assert said[0].startswith("**Goal met**")
    rows = compute_nova.table(met)
    assert [r[0] for r in rows[1:5]] == [
        "boot 100 servers, concurrency 10 (0 → 100)",
        "GET /servers/detail, 100 servers (median, all pages)",
        "GET /servers/detail, 1,000 servers (median, all pages)",
        "delete all 1,000 servers, concurrency 10"]
    assert all(r[-1] == "met" for r in rows[1:5])
    # Listing 1,000 servers at 9x Nova misses, whatever the other rows do.
    missed = _results(upstream, _run(GUREUM, 30.0, 0.03, 0.29, 20.0))
    said = compute_nova.findings(missed)
    assert said[0].startswith("**Goal not met**") and "1,000 servers" in said[0]


def test_the_client_poll_cap_is_said_and_a_finer_poll_can_meet_the_goal() -> None:
    results = _results(_run(UPSTREAM, 3.0, 0.3, 2.6, 2.0), _run(GUREUM, 18.0, 0.03, 0.2, 20.0),
                       _run(GUREUM_FINE, 40.0, 0.03, 0.2, 25.0, poll=0.05))
    said = " ".join(compute_nova.findings(results))
    assert "caps the boot rate at concurrency / poll = 20 servers/s" in said
    assert "90% of that cap" in said
    boot_row = compute_nova.table(results)[1]
    assert boot_row[-1] == "met at poll 0.05 s (13.3x)"
    assert boot_row[4] == "6.0x"  # the same-terms ratio stays in the table
    doc = compute_nova.markdown(results)
    assert doc.startswith(compute_nova.BEGIN) and doc.rstrip().endswith(compute_nova.END)
    again = NovaResults.from_json(json.loads(json.dumps(results.to_json())))
    assert compute_nova.markdown(again) == doc


def test_the_peer_is_not_set_up_over_a_running_stack(tmp_path: Path) -> None:
    (tmp_path / "pids").write_text(f"nova-api {os.getpid()}\n")
    peer = NovaPeer(tmp_path / "recipe", tmp_path, tmp_path)
    assert peer.running() == [os.getpid()]
    with pytest.raises(RuntimeError, match="is running"):
        peer.setup()


def test_compute_parts_and_nova_arguments() -> None:
    args = compute.parse_args(["--only", "nova", "--poll", "0.2", "--fine-poll", "0"])
    assert compute.selected_parts(args) == {"nova"}
    nova = compute.nova_args(args)
    assert (nova.poll, nova.fine_poll, nova.count, nova.list_sizes) == (0.2, 0.0, 100,
                                                                         "100,1000")
    assert compute.nova_args(compute.parse_args(["--quick"])).count == 20
    with pytest.raises(SystemExit):
        compute.selected_parts(compute.parse_args(["--only", "nova,bogus"]))


def test_the_command_refuses_to_write_docs_from_a_dirty_tree(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import revision

    monkeypatch.setattr(revision, "dirty_files", lambda: ["bench/compute.py"])
    assert compute.main(["--only", "nova"]) == 2
    assert "uncommitted" in capsys.readouterr().err


def test_novabench_runs_with_this_python() -> None:
    """The one client for both clouds runs on gureum's interpreter (httpx, psutil)."""
    if RECIPE is None:
        pytest.skip("the shared Nova recipe is not on this machine")
    out = subprocess.run([sys.executable, str(RECIPE / "novabench.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--list-sizes" in out.stdout
