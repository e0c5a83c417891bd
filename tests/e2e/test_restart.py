"""A restart on the same data directory keeps every record; Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def test_restart_keeps_records_and_credentials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = GureumUp(data).start()
    try:
        first.openstack("--os-cloud", "gureum", "project", "create", "survivor")
        token = json.loads(first.openstack("--os-cloud", "gureum", "token", "issue",
                                           "-f", "json").stdout)["id"]
        assert token
        passwords = first.credentials()
    finally:
        assert first.stop() == 0
    assert "gureum stopped." in first.log_path.read_text()
    second = GureumUp(data)
    second.port = first.port + 0  # the same address, as a user restarting would
    second.start()
    try:
        assert second.credentials() == passwords
        names = {p["Name"] for p in json.loads(second.openstack(
            "--os-cloud", "gureum", "project", "list", "-f", "json").stdout)}
        assert {"admin", "demo", "service", "survivor"} <= names
        images = json.loads(second.openstack("--os-cloud", "gureum", "image", "list",
                                             "-f", "json").stdout)
        assert [i["Name"] for i in images].count("cirros") == 1  # bootstrapped only once
    finally:
        assert second.stop() == 0


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    up = GureumUp(tmp_path / "data").start()
    assert up.proc is not None
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(30) == 0
    up.stop()
    assert "gureum stopped." in up.log_path.read_text()
