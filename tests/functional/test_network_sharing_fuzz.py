"""Fuzzing subnet pools, subnets from pools, address scopes and RBAC policies: never a 500.

Bodies are shaped like the real ones (prefixes, prefix lengths, quotas, targets)
with wrong types, bounds out of order and odd CIDRs mixed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Api, InProcessCloud, make_settings

N = "/network/v2.0"
cidrs = st.one_of(
    st.builds(lambda ip, n: f"{ip}/{n}", st.ip_addresses(v=4).map(str), st.integers(-1, 33)),
    st.builds(lambda ip, n: f"{ip}/{n}", st.ip_addresses(v=6).map(str), st.integers(0, 129)),
    st.sampled_from(["10.140.0.0/16", "10.140.0.0/24", "2001:db8:140::/48", "0.0.0.0/0",
                     "10.140.0.0", "x", ""]))
lengths = st.one_of(st.integers(-2, 130), st.sampled_from(["24", "x", None, 1.5]))
pool_bodies = st.fixed_dictionaries({"prefixes": st.one_of(st.lists(cidrs, max_size=3),
                                                          cidrs)}, optional={
    "name": st.text(max_size=8), "default_prefixlen": lengths, "min_prefixlen": lengths,
    "max_prefixlen": lengths, "default_quota": st.one_of(st.integers(-1, 5000), st.none()),
    "is_default": st.booleans(), "shared": st.booleans(),
    "address_scope_id": st.sampled_from(["SCOPE", "nope", None])})
subnet_bodies = st.fixed_dictionaries({}, optional={
    "cidr": cidrs, "prefixlen": lengths, "ip_version": st.sampled_from([4, 6, "4", 5]),
    "use_default_subnetpool": st.booleans()})
rbac_bodies = st.fixed_dictionaries({}, optional={
    "object_type": st.sampled_from(["network", "qos_policy", "", None]),
    "object_id": st.sampled_from(["NET", "nope", ""]),
    "action": st.sampled_from(["access_as_shared", "access_as_external", "x"]),
    "target_tenant": st.sampled_from(["*", "PROJECT", "", "other", None, 5])})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cloud = InProcessCloud(make_settings(tmp_path_factory.mktemp("poolfuzz"))).start()
    api = Api(cloud.url)
    admin = api.token("admin", cloud.admin_password, "admin")
    demo = api.token("demo", cloud.demo_password, "demo")
    scope = api.request("POST", f"{N}/address-scopes", demo, json={"address_scope": {
        "name": "fuzz", "ip_version": 4}}).json()["address_scope"]
    net = api.request("GET", f"{N}/networks?name=private", demo).json()["networks"][0]
    yield {"api": api, "tokens": (admin, demo), "scope": scope["id"], "net": net}
    api.close()
    cloud.stop()


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pool=pool_bodies, subnets=st.lists(subnet_bodies, max_size=3), update=pool_bodies,
       rbac=rbac_bodies, as_admin=st.booleans())
def test_pools_and_policies_never_500(env: dict[str, Any], pool: dict[str, Any],
                                      subnets: list[dict[str, Any]], update: dict[str, Any],
                                      rbac: dict[str, Any], as_admin: bool) -> None:
    api: Api = env["api"]
    token = env["tokens"][0 if as_admin else 1]
    if pool.get("address_scope_id") == "SCOPE":
        pool["address_scope_id"] = env["scope"]
    r = api.request("POST", f"{N}/subnetpools", token, json={"subnetpool": pool})
    assert r.status_code in (201, 400, 403, 404, 409), r.text
    net = api.request("POST", f"{N}/networks", token, json={"network": {
        "name": "fuzzed"}}).json()["network"]
    try:
        pool_id = r.json()["subnetpool"]["id"] if r.status_code == 201 else None
        for body in subnets:
            payload = {"network_id": net["id"], **body}
            if pool_id is not None and not body.get("use_default_subnetpool"):
                payload["subnetpool_id"] = pool_id
            r = api.request("POST", f"{N}/subnets", token, json={"subnet": payload})
            assert r.status_code in (201, 400, 403, 404, 409), r.text
        if pool_id is not None:
            r = api.request("PUT", f"{N}/subnetpools/{pool_id}", token,
                            json={"subnetpool": {k: v for k, v in update.items()
                                                 if k != "shared"}})
            assert r.status_code in (200, 400, 403, 404, 409), r.text
        body = {k: ({"NET": net["id"]}.get(v, v) if k == "object_id" else
                    {"PROJECT": net["project_id"]}.get(v, v) if k == "target_tenant"
                    else v) for k, v in rbac.items()}
        r = api.request("POST", f"{N}/rbac-policies", token, json={"rbac_policy": body})
        assert r.status_code in (201, 400, 403, 404, 409), r.text
    finally:
        for sn in api.request("GET", f"{N}/subnets?network_id={net['id']}",
                              token).json()["subnets"]:
            api.request("DELETE", f"{N}/subnets/{sn['id']}", token)
        r = api.request("DELETE", f"{N}/networks/{net['id']}", token)
        assert r.status_code == 204, r.text
        if pool_id is not None:
            r = api.request("DELETE", f"{N}/subnetpools/{pool_id}", token)
            assert r.status_code == 204, r.text
