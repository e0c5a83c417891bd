"""Issue 9's Ansible playbook (openstack.cloud collection) against `gureum up`.

tests/e2e/ansible/issue9.yml creates a network, subnet, router with an external
gateway on `public`, a security group with rules, a keypair, a volume, and a
server with a floating IP and the volume attached, checks them, tears it all
down (state: absent) and checks nothing is left; this test then looks again
with openstacksdk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openstack
import openstack.config
import openstack.connection
import pytest

from tests.harness import BIN, GureumUp

pytestmark = pytest.mark.e2e

PLAYBOOK = Path(__file__).parent / "ansible" / "issue9.yml"
# A public key the cloud only stores (nothing logs in on the fake driver).
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDFbgMxtdjFQnw0ztCUjYGbPI6W7dLaQ3h4gTHd"
              "pfLp1 ansible@gureum")
# openstack.cloud 2.5.0, the newest the `ansible` package ships for Python 3.11
# (ansible 12.3), reads openstack.version.__version__ from the sdk module, which
# openstacksdk >= 4.15 no longer imports (openstack.cloud 2.6.0, on Galaxy only,
# reads it another way). Imported at the modules' interpreter start, it is there.
SDK_VERSION_SHIM = "import openstack.version  # noqa: F401\n"


def connect(up: GureumUp) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(up.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud="gureum-demo"))


def test_playbook_builds_and_tears_down(gureum_up: GureumUp, tmp_path: Path) -> None:
    playbook = BIN / "ansible-playbook"
    if not playbook.exists():
        pytest.skip("ansible is not installed in this venv (the test extra has it: "
                    "scripts/bootstrap)")
    conn = connect(gureum_up)
    fips_before = {f.id for f in conn.network.ips()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SDK_VERSION_SHIM)
    env.update({
        "PYTHONPATH": str(shim),
        "OS_CLIENT_CONFIG_FILE": str(gureum_up.clouds_yaml),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    proc = subprocess.run(
        [str(playbook), "-i", "localhost,", "-c", "local", str(PLAYBOOK),
         "-e", f"public_key='{PUBLIC_KEY}'", "-e", "image=cirros"],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert "failed=0" in proc.stdout

    try:
        assert [s.name for s in conn.compute.servers() if s.name.startswith("ansible")] == []
        assert conn.compute.find_keypair("ansible-key") is None
        assert [v.name for v in conn.block_storage.volumes()
                if (v.name or "").startswith("ansible")] == []
        assert conn.network.find_network("ansible-net") is None
        assert conn.network.find_router("ansible-router") is None
        assert conn.network.find_security_group("ansible-sg") is None
        assert {f.id for f in conn.network.ips()} == fips_before
    finally:
        conn.close()
