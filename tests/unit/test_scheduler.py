"""Filters and weighers are pure functions: test them as such."""

from __future__ import annotations

from dataclasses import replace

from gureum.scheduler.filters import filter_hosts
from gureum.scheduler.model import HostState, RequestSpec
from gureum.scheduler.weighers import weigh


def host(name: str, free_ram: int = 4096, **kw: object) -> HostState:
    base = HostState(host=name, node=name, node_id=int(name[1:]), enabled=True, up=True,
                     availability_zone="nova", vcpus_total=16, memory_mb_total=8192,
                     disk_gb_total=100, memory_mb_used=8192 - free_ram)
    return replace(base, **kw)  # type: ignore[arg-type]


def spec(**kw: object) -> RequestSpec:
    return replace(RequestSpec("i1", "p1", 1, 512, 1), **kw)  # type: ignore[arg-type]


def names(hosts: list[HostState]) -> list[str]:
    return [h.host for h in hosts]


def test_disabled_down_and_full_hosts_are_filtered_with_reasons() -> None:
    hosts = [host("c01", enabled=False), host("c02", up=False), host("c03", free_ram=100),
             host("c04")]
    passed, removed = filter_hosts(hosts, spec())
    assert names(passed) == ["c04"]
    assert removed == {"compute_filter": 2, "ram_filter": 1}


def test_availability_zone_and_forced_host() -> None:
    hosts = [host("c01"), host("c02", availability_zone="az2"), host("c03",
                                                                     availability_zone="az2")]
    assert names(filter_hosts(hosts, spec(availability_zone="az2"))[0]) == ["c02", "c03"]
    assert names(filter_hosts(hosts, spec(force_host="c03"))[0]) == ["c03"]
    assert names(filter_hosts(hosts, spec(requested_host="c01",
                                          availability_zone="az2"))[0]) == []


def test_group_policies() -> None:
    hosts = [host("c01"), host("c02"), host("c03")]
    anti = spec(group_policy="anti-affinity", group_hosts=frozenset({"c01"}))
    assert names(filter_hosts(hosts, anti)[0]) == ["c02", "c03"]
    aff = spec(group_policy="affinity", group_hosts=frozenset({"c02"}))
    assert names(filter_hosts(hosts, aff)[0]) == ["c02"]
    # The first member of an affinity group may go anywhere.
    assert names(filter_hosts(hosts, spec(group_policy="affinity"))[0]) == ["c01", "c02",
                                                                             "c03"]
    soft = spec(group_policy="soft-anti-affinity", group_hosts=frozenset({"c03"}))
    assert names(weigh(hosts, soft))[-1] == "c03"


def test_same_and_different_host_hints_and_retries() -> None:
    hosts = [host("c01"), host("c02"), host("c03")]
    assert names(filter_hosts(hosts, spec(same_host=frozenset({"c02"})))[0]) == ["c02"]
    assert names(filter_hosts(hosts, spec(different_host=frozenset({"c02"})))[0]) == [
        "c01", "c03"]
    assert names(filter_hosts(hosts, spec(ignore_hosts=frozenset({"c01"})))[0]) == [
        "c02", "c03"]


def test_image_hypervisor_type_and_aggregate_specs() -> None:
    hosts = [host("c01", hypervisor_type="qemu"), host("c02", hypervisor_type="fake",
                                                       aggregate_metadata={"ssd": "true"})]
    assert names(filter_hosts(hosts, spec(image_properties={"img_hv_type": "kvm"}))[0]) == [
        "c01"]
    wants_ssd = spec(extra_specs={"aggregate_instance_extra_specs:ssd": "true"})
    assert names(filter_hosts(hosts, wants_ssd)[0]) == ["c02"]


def test_spread_and_pack() -> None:
    hosts = [host("c01", free_ram=1000), host("c02", free_ram=3000), host("c03",
                                                                          free_ram=2000)]
    assert names(weigh(hosts, spec(), "spread")) == ["c02", "c03", "c01"]
    assert names(weigh(hosts, spec(), "pack")) == ["c01", "c03", "c02"]
