"""Host filters: each answers "may this host take this request?" and why not."""

from __future__ import annotations

from collections.abc import Callable

from gureum.scheduler.model import HostState, RequestSpec

Filter = Callable[[HostState, RequestSpec], bool]


def compute_filter(h: HostState, r: RequestSpec) -> bool:
    """The compute service is enabled and up."""
    return h.enabled and h.up


def retry_filter(h: HostState, r: RequestSpec) -> bool:
    """Not a host that already failed this request (or the one it is leaving)."""
    return h.host not in r.ignore_hosts


def availability_zone_filter(h: HostState, r: RequestSpec) -> bool:
    return r.availability_zone is None or h.availability_zone == r.availability_zone


def requested_destination_filter(h: HostState, r: RequestSpec) -> bool:
    """2.74 host/hypervisor_hostname and the admin-only "az:host:node" form."""
    for host, node in ((r.force_host, r.force_node), (r.requested_host, r.requested_node)):
        if host is not None and h.host != host:
            return False
        if node is not None and h.node != node:
            return False
    return True


def ram_filter(h: HostState, r: RequestSpec) -> bool:
    return h.free_memory_mb >= r.memory_mb


def disk_filter(h: HostState, r: RequestSpec) -> bool:
    return h.free_disk_gb >= r.disk_gb


def vcpu_filter(h: HostState, r: RequestSpec) -> bool:
    return h.free_vcpus >= r.vcpus


def server_group_affinity_filter(h: HostState, r: RequestSpec) -> bool:
    if r.group_policy != "affinity" or not r.group_hosts:
        return True
    return h.host in r.group_hosts


def server_group_anti_affinity_filter(h: HostState, r: RequestSpec) -> bool:
    if r.group_policy != "anti-affinity":
        return True
    # max_server_per_host (2.64 rules) allows that many members per host.
    return h.host not in r.group_hosts or r.group_max_server_per_host > 1


def same_host_filter(h: HostState, r: RequestSpec) -> bool:
    return not r.same_host or h.host in r.same_host


def different_host_filter(h: HostState, r: RequestSpec) -> bool:
    return h.host not in r.different_host


def image_properties_filter(h: HostState, r: RequestSpec) -> bool:
    """img_hv_type / hypervisor_type must match the host's hypervisor when given."""
    wanted = r.image_properties.get("img_hv_type") or r.image_properties.get(
        "hypervisor_type")
    if not wanted:
        return True
    aliases = {"qemu": {"qemu", "kvm"}, "kvm": {"qemu", "kvm"}}
    return h.hypervisor_type in aliases.get(str(wanted).lower(), {str(wanted).lower()})


def aggregate_extra_specs_filter(h: HostState, r: RequestSpec) -> bool:
    """Flavor extra specs "aggregate_instance_extra_specs:k=v" need an aggregate with k=v."""
    prefix = "aggregate_instance_extra_specs:"
    for key, value in r.extra_specs.items():
        if key.startswith(prefix) and h.aggregate_metadata.get(key[len(prefix):]) != value:
            return False
    return True


DEFAULT_FILTERS: tuple[Filter, ...] = (
    compute_filter, retry_filter, availability_zone_filter, requested_destination_filter,
    ram_filter, disk_filter, vcpu_filter, server_group_affinity_filter,
    server_group_anti_affinity_filter, same_host_filter, different_host_filter,
    image_properties_filter, aggregate_extra_specs_filter,
)


def filter_hosts(hosts: list[HostState], r: RequestSpec,
                 filters: tuple[Filter, ...] = DEFAULT_FILTERS
                 ) -> tuple[list[HostState], dict[str, int]]:
    """The hosts passing every filter, and how many hosts each filter removed."""
    removed: dict[str, int] = {}
    current = hosts
    for f in filters:
        kept = [h for h in current if f(h, r)]
        if len(kept) != len(current):
            removed[f.__name__] = len(current) - len(kept)
        current = kept
        if not current:
            break
    return current, removed
