"""`gureum up` with settings it cannot use stops at once, with one line that says why."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import BIN, free_port

pytestmark = pytest.mark.e2e


def gureum_up(tmp_path: Path, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gureum"), "up", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("toml,needle", [
    ("[server]\nport = 'many'\n",
     "[server] port: 'many' is not allowed (Input should be a valid integer); allowed: an "
     "integer from 1 to 65535"),
    ("[compute]\nweigher = 'heaviest'\n",
     "[compute] weigher: 'heaviest' is not allowed (Input should be 'spread' or 'pack'); "
     "allowed: one of 'spread', 'pack'"),
    ("[identity]\nlockout_duration = -5\n",
     "[identity] lockout_duration: -5 is not allowed"),
    ("[server]\nthreds = 4\n", "[server] threds: unknown setting"),
])
def test_gureum_up_with_a_bad_config_file_exits_with_one_clear_line(
        tmp_path: Path, toml: str, needle: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(toml)
    done = gureum_up(tmp_path, "--config", str(bad))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"gureum: configuration problem: config file {bad}: {needle}")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # stopped before anything was created


def test_gureum_up_with_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    done = gureum_up(tmp_path, env={"GUREUM_SERVER__THREADS": "0"})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "gureum: configuration problem: environment variable GUREUM_SERVER__THREADS: '0' is "
        "not allowed (Input should be greater than or equal to 1); allowed: an integer from "
        "1 to 1024")
