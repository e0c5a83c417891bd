"""`gureum host drain|restore HOST`: a compute host's maintenance in one command each.

The command is a client of the cloud's API, as the `openstack` CLI is: it signs
in as an admin from clouds.yaml (``--os-cloud`` or ``OS_CLOUD``), from the
``OS_*`` variables, or from the clouds.yaml `gureum up` wrote in the data
directory, and starts the operation with ``POST /compute/v2.1/gureum-host-operations``.
The conductor runs it (gureum/workflows/drain.py); this command prints each
instance as it is done and a summary at the end. Its state is the operation's
row, not this process: after kill -9 of the command (the drain goes on) or of
the cloud (the conductor resumes it), running the command again picks up the
same operation and shows it to the end. Ctrl-C pauses it after the instance in
flight; running the command again continues.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from gureum.config import Settings
from gureum.errors import ConfigError, GureumError

POLL = 0.5
POLICIES = ("live", "cold", "stop")
FINAL = ("done", "failed", "skipped")
VERBS = {"live": "live-migrating", "cold": "migrating", "stop": "stopping",
         "start": "starting"}


def add_parser(sub: Any, common: Any) -> None:
    host = sub.add_parser("host", help="drain a compute host for maintenance, restore it")
    hsub = host.add_subparsers(dest="host_command", required=True, metavar="ACTION")
    drain = hsub.add_parser(
        "drain", help="disable HOST's compute service and move every instance off it "
        "(resumable: run it again to continue)")
    restore = hsub.add_parser(
        "restore", help="enable HOST's compute service and move back what the drain moved")
    for p in (drain, restore):
        common(p)
        p.add_argument("host", metavar="HOST")
        p.add_argument("--os-cloud", metavar="NAME", help="the cloud in clouds.yaml "
                       "(default: OS_CLOUD, else the OS_* variables, else the data "
                       "directory's clouds.yaml, cloud 'gureum')")
    drain.add_argument("--policy", choices=POLICIES, help="what to do with each instance: "
                       "live-migrate (default; stopped ones are moved cold), cold-migrate "
                       "(and confirm) or stop")
    drain.add_argument("--per-server", action="append", default=[], metavar="SERVER=POLICY",
                       help="another policy for one server (name or id); repeatable")
    drain.add_argument("--target", metavar="HOST", help="move everything to this host "
                       "(default: the scheduler chooses)")
    drain.add_argument("--reason", metavar="TEXT", help="the compute service's disabled "
                       "reason (default: maintenance)")


@dataclass
class Api:
    """An admin's session with the Compute API."""

    http: httpx.Client
    compute: str
    token: str

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, f"{self.compute}{path}",
                              headers={"X-Auth-Token": self.token}, **kw)
        if r.status_code >= 400:
            raise GureumError(_fault(r))
        return r.json()


def _fault(r: httpx.Response) -> str:
    try:
        body = r.json()
        (inner,) = body.values()
        return f"{inner.get('message')} (HTTP {r.status_code})"
    except (ValueError, AttributeError, TypeError):
        return f"HTTP {r.status_code}: {r.text[:200]}"


# -- credentials -------------------------------------------------------------------------

def _clouds_files(settings: Settings) -> list[Path]:
    given = os.environ.get("OS_CLIENT_CONFIG_FILE")
    files = [Path(given)] if given else []
    files += [Path.cwd() / "clouds.yaml", Path.home() / ".config/openstack/clouds.yaml",
              Path("/etc/openstack/clouds.yaml")]
    return [*files, settings.data_dir / "clouds.yaml"]


def _load_cloud(path: Path, name: str) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    cloud = (data.get("clouds") or {}).get(name)
    return dict(cloud) if isinstance(cloud, dict) else None


def find_cloud(settings: Settings, name: str | None) -> dict[str, Any]:
    """The cloud's auth settings, as the `openstack` CLI would find them."""
    name = name or os.environ.get("OS_CLOUD")
    if name:
        for path in _clouds_files(settings):
            if path.exists() and (cloud := _load_cloud(path, name)) is not None:
                return cloud
        raise ConfigError(f"no cloud {name!r} in any clouds.yaml "
                          f"({', '.join(str(p) for p in _clouds_files(settings))})")
    env = os.environ
    if env.get("OS_AUTH_URL"):
        return {"auth": {"auth_url": env["OS_AUTH_URL"], "username": env.get("OS_USERNAME"),
                         "password": env.get("OS_PASSWORD"),
                         "project_name": env.get("OS_PROJECT_NAME"),
                         "user_domain_name": env.get("OS_USER_DOMAIN_NAME", "Default"),
                         "project_domain_name": env.get("OS_PROJECT_DOMAIN_NAME",
                                                        "Default")},
                "region_name": env.get("OS_REGION_NAME"),
                "interface": env.get("OS_INTERFACE", "public"),
                "cacert": env.get("OS_CACERT"), "verify": env.get("OS_INSECURE") is None}
    local = settings.data_dir / "clouds.yaml"
    if local.exists() and (cloud := _load_cloud(local, "gureum")) is not None:
        return cloud
    raise ConfigError("no credentials: give --os-cloud (or OS_CLOUD) and a clouds.yaml, "
                      f"the OS_* variables, or the data directory of `gureum up` ({local})")


def sign_in(cloud: dict[str, Any]) -> Api:
    auth = cloud.get("auth") or {}
    verify: Any = cloud.get("cacert") or cloud.get("verify", True)
    http = httpx.Client(timeout=30, verify=verify)
    url = str(auth.get("auth_url") or "").rstrip("/")
    if not url:
        raise ConfigError("the cloud has no auth_url")
    if not url.endswith("/v3"):
        url += "/v3"
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth.get("username"), "password": auth.get("password"),
        "domain": {"name": auth.get("user_domain_name") or "Default"}}}},
        "scope": {"project": {"name": auth.get("project_name"),
                              "domain": {"name": auth.get("project_domain_name")
                                         or "Default"}}}}}
    try:
        r = http.post(f"{url}/auth/tokens", json=body)
    except httpx.HTTPError as exc:
        raise GureumError(f"cannot reach the cloud at {url}: {exc}") from None
    if r.status_code != 201:
        raise GureumError(f"signing in failed: {_fault(r)}")
    interface = cloud.get("interface") or "public"
    region = cloud.get("region_name")
    for service in r.json()["token"].get("catalog", []):
        if service.get("type") != "compute":
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") == interface and (
                    not region or endpoint.get("region_id") == region
                    or endpoint.get("region") == region):
                base = str(endpoint["url"]).rstrip("/")
                if not base.endswith("/v2.1"):
                    base += "/v2.1"
                return Api(http, base, r.headers["X-Subject-Token"])
    raise GureumError("the cloud's catalog has no compute endpoint")


# -- the commands ------------------------------------------------------------------------

def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    body: dict[str, Any] = {"host": args.host, "kind": args.host_command}
    if args.host_command == "drain":
        per_server: dict[str, str] = {}
        for given in args.per_server:
            server, _, policy = given.rpartition("=")
            if not server or policy not in POLICIES:
                raise ConfigError(f"--per-server {given!r}: SERVER=POLICY, POLICY one of "
                                  f"{', '.join(POLICIES)}")
            per_server[server] = policy
        for key, value in (("policy", args.policy), ("target", args.target),
                           ("reason", args.reason)):
            if value is not None:
                body[key] = value
        if per_server:
            body["per_server"] = per_server
    api = sign_in(find_cloud(settings, args.os_cloud))
    op = api.call("POST", "/gureum-host-operations", json={"operation": body})["operation"]
    return Watch(api, op, out).follow()


class Watch:
    """Prints an operation's instances as they finish, then its summary."""

    def __init__(self, api: Api, op: dict[str, Any], out: TextIO) -> None:
        self.api = api
        self.op = op
        self.out = out
        self.shown: set[str] = set()
        self.moving: set[str] = set()
        self.started = time.monotonic()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def follow(self) -> int:
        op = self.op
        host, kind = op["host"], op["kind"]
        finished = [i for i in op["items"] if i["status"] in FINAL]
        if kind == "drain":
            self.say(f"{host}: compute service disabled ({op['reason']}); draining "
                     f"(policy {op['policy']}{', target ' + op['target'] if op['target'] else ''})"
                     + (f", continuing after {len(finished)} of {len(op['items'])}"
                        if finished else ""))
        else:
            self.say(f"{host}: compute service enabled; moving back what drain "
                     f"{op['drain_id']} moved" if op["drain_id"] else
                     f"{host}: compute service enabled; no drain to undo")
        paused = False
        while True:
            try:
                op = self.api.call("GET", f"/gureum-host-operations/{op['id']}")["operation"]
                self._print_items(op)
                if op["status"] in ("done", "failed", "paused", "restored"):
                    break
                time.sleep(POLL)
            except KeyboardInterrupt:
                if paused:
                    self.say("stopped watching; the cloud pauses it after the instance in "
                             "flight")
                    return 130
                paused = True
                self.say(f"pausing the {kind} of {host} after the instance in flight "
                         "(Ctrl-C again to stop watching)…")
                signal.signal(signal.SIGINT, signal.default_int_handler)
                self.api.call("PUT", f"/gureum-host-operations/{op['id']}",
                              json={"operation": {"status": "paused"}})
        return self._summary(op)

    def _print_items(self, op: dict[str, Any]) -> None:
        items = op["items"]
        total = len(items)
        for item in items:
            if item["status"] == "running" and item["instance_id"] not in self.moving:
                self.moving.add(item["instance_id"])  # a long move shows it has begun
                self.say(f"  {item['name'] or item['instance_id']}: "
                         f"{VERBS.get(item['policy'], item['policy'])}…")
            if item["status"] not in FINAL or item["instance_id"] in self.shown:
                continue
            self.shown.add(item["instance_id"])
            self.say(f"{len(self.shown)}/{total} {_line(item, op['kind'])}")

    def _summary(self, op: dict[str, Any]) -> int:
        host, kind = op["host"], op["kind"]
        items = op["items"]
        failed = [i for i in items if i["status"] == "failed"]
        done = [i for i in items if i["status"] == "done"]
        took = f"{time.monotonic() - self.started:.1f} s"
        again = f"`gureum host {kind} {host}`"
        if op["status"] == "paused":
            left = len([i for i in items if i["status"] not in FINAL])
            self.say(f"{kind} of {host} paused: {len(done)} done, {left} left. Run {again} "
                     "to continue" + (f", or `gureum host restore {host}` to move back "
                                      "what moved." if kind == "drain" else "."))
            return 130
        if failed:
            self.say(f"{kind} of {host} ended with {len(failed)} of {len(items)} instances "
                     "not done:")
            for item in failed:
                self.say(f"  {item['name']} ({item['instance_id']}): {item['message']}")
            self.say(f"Fix what stopped them (see `openstack server show` and `openstack "
                     f"server event list`), then run {again} again: it goes on from here"
                     + (f". The host is not empty: do not stop {host}'s compute service "
                        "yet." if kind == "drain" else "."))
            return 1
        if kind == "drain":
            self.say(f"{host} drained in {took}: {_tally(done) or 'no instance on it'}. "
                     "Its compute service "
                     f"stays disabled; after the maintenance run `gureum host restore {host}`.")
        else:
            self.say(f"{host} restored in {took}: {_tally(done) or 'nothing to move back'}; "
                     "its compute service is enabled.")
        return 0


def _line(item: dict[str, Any], kind: str) -> str:
    took = f" ({item['seconds']} s)" if item.get("seconds") is not None else ""
    name = item["name"] or item["instance_id"]
    if item["status"] == "failed":
        return f"{name} FAILED ({item['policy']}): {item['message']}"
    if item["status"] == "skipped":
        return f"{name} skipped: {item['message']}"
    outcome = item["outcome"] or "done"
    if outcome in ("live-migrated", "cold-migrated"):
        back = " back" if kind == "restore" else ""
        return f"{name} {outcome}{back} to {item['dest']}{took}"
    if item.get("message"):
        return f"{name} {outcome}: {item['message']}{took}"
    return f"{name} {outcome}{took}"


def _tally(items: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        outcome = item["outcome"] or "done"
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {what}" for what, n in counts.items())
