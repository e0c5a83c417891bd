"""Two `gureum conductor` processes share Block Storage work: one lease per copy.

`gureum api` and two `gureum conductor` processes run on RabbitMQ and a database
server (tests/e2e/test_distributed.py's setting). A volume is made from an image;
the first conductor's copy sits in its temporary file a while (``[volume]
copy_delay``). While it does, the second conductor starts: its recovery finds the
unfinished volume but leaves it to the owner, whose lease is live. Then the owner is killed
with SIGKILL mid-copy: once its lease has expired the survivor takes the copy over
and finishes it, exactly once, and no temporary file is left behind.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_distributed import Distributed, database_url, wait_for  # noqa: F401
from tests.harness import Api, toml_text

pytestmark = pytest.mark.e2e

COPY = 20.0  # seconds the first conductor's copy holds its data in the temporary file
LEASE = 3.0


def demo_token(api: Api, clouds: Path) -> str:
    auth = yaml.safe_load(clouds.read_text())["clouds"]["gureum-demo"]["auth"]
    return api.token("demo", auth["password"], "demo")


def test_a_dead_conductors_volume_copy_is_finished_once_by_another(
        tmp_path: Path, database_url: str) -> None:  # noqa: F811
    cloud = Distributed(tmp_path, database_url)
    text = cloud.config.read_text()
    lease = toml_text({"conductor": {"work_lease": LEASE}})
    # The first conductor copies slowly (the window to kill it in); the second does not.
    slow = tmp_path / "slow.toml"
    slow.write_text(text + "\n" + lease + "\n" + toml_text({"volume": {"copy_delay": COPY}}))
    cloud.config.write_text(text + "\n" + lease)
    cloud.manage("db", "upgrade")
    cloud.manage("bootstrap")
    api: Api | None = None

    def conductor(name: str, config: Path) -> None:
        argv = cloud.args("conductor", "--host", name)
        argv[argv.index("--config") + 1] = str(config)
        cloud.role(name, argv, "gureum conductor running")
    try:
        cloud.role("api", cloud.args("api"), "gureum api listening")
        conductor("cond-a", slow)
        api = Api(cloud.url)
        token = demo_token(api, cloud.data / "clouds.yaml")
        r = api.request("POST", "/image/v2/images", token, json={
            "name": "claim-src", "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        image_id = r.json()["id"]
        r = api.request("PUT", f"/image/v2/images/{image_id}/file", token,
                        content=b"\7" * (1 << 20),
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        r = api.request("POST", "/volume/v3/volumes", token, json={"volume": {
            "size": 1, "imageRef": image_id, "name": "claimed"}})
        assert r.status_code == 202, r.text
        volume_id = r.json()["volume"]["id"]
        claimed = re.compile(rf"volume work on volume {volume_id} claimed by")
        volumes = cloud.data / "volumes"

        def parts() -> list[Path]:
            return list(volumes.glob(f".volume-{volume_id}*.part"))

        def owner() -> str | None:
            found = [n for n in cloud.roles if n.startswith("cond-")
                     and claimed.search(cloud.roles[n].log.read_text())]
            return found[0] if len(found) == 1 else None

        first = wait_for("the conductor to claim the copy", owner, timeout=30)
        assert first == "cond-a"
        wait_for("the copy's temporary file", parts, timeout=10)

        # A second conductor starts mid-copy: its recovery leaves the copy to its owner.
        conductor("cond-b", cloud.config)
        other = "cond-b"
        time.sleep(1.0)
        assert not claimed.search(cloud.roles[other].log.read_text())
        assert parts(), "the owner's copy is still running"

        cloud.roles[first].kill()
        assert parts(), "killed mid-copy: its temporary file is left"
        before = len(cloud.roles[other].log.read_text())
        client = api

        def status() -> str:
            r = client.request("GET", f"/volume/v3/volumes/{volume_id}", token)
            return str(r.json()["volume"]["status"])
        wait_for("the survivor to finish the copy", lambda: status() == "available",
                 timeout=LEASE + COPY + 30)
        log = cloud.roles[other].log.read_text()
        assert len(claimed.findall(log)) == 1, log[-3000:]  # once, after the kill
        assert claimed.search(log[before:])
        assert f"taking over the volume work on volume {volume_id}" in log[before:]
        assert not parts()
        assert list(volumes.glob(f"volume-{volume_id}*"))
        r = api.request("GET", f"/volume/v3/volumes/{volume_id}", token)
        assert r.json()["volume"]["bootable"] == "true"
    except BaseException:
        print(cloud.logs())
        raise
    finally:
        if api is not None:
            api.close()
        cloud.stop()
