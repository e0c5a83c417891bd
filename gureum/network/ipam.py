"""IP address management: subnet arithmetic, allocation pools, and handing out addresses.

The arithmetic (CIDRs, gateways, pools, EUI-64) is pure; ``allocate`` writes
the allocation rows. Each row is unique per (subnet, address) and is inserted
in a savepoint, so two requests racing for one address on any database end
with one winner and a 409 (or the next free address) for the other.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.errors import StaleRead
from gureum.network import errors as e
from gureum.network import models as m

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
ROUTER_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                 "network:ha_router_replicated_interface", "network:router_gateway")
MAX_FIXED_IPS_PER_PORT = 5


# -- arithmetic -----------------------------------------------------------------------

def parse_ip(value: Any, field: str) -> IPAddress:
    if not isinstance(value, str):
        raise e.invalid_attribute(field, f"'{value}' is not a valid IP address")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise e.invalid_attribute(field, f"'{value}' is not a valid IP address") from None


def parse_cidr(value: Any, field: str = "cidr") -> IPNetwork:
    """A subnet CIDR. As in Neutron, host bits are accepted ("10.99.99.0/16") and the
    subnet gets the network form ("10.99.0.0/16"); a missing prefix length or a
    form Neutron would not print back ("10.0.0.0/024") is refused with its advice.
    """
    if not isinstance(value, str) or "/" not in value:
        raise e.invalid_attribute(field, f"'{value}' is not a valid IP subnet")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise e.invalid_attribute(field, f"'{value}' is not a valid IP subnet") from None
    address, _, length = value.partition("/")
    if net.version == 4 and (length != str(net.prefixlen)
                             or str(ipaddress.ip_address(address)) != address):
        raise e.invalid_attribute(
            field, f"'{value}' isn't a recognized IP subnet cidr, '{net}' is recommended")
    return net


def version_of(net: IPNetwork) -> int:
    return 4 if isinstance(net, ipaddress.IPv4Network) else 6


def usable_range(net: IPNetwork) -> tuple[int, int]:
    """First and last address a port may get: no network address, no IPv4 broadcast."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.num_addresses <= 2 and version_of(net) == 4:
        return first, last  # /31 and /32 (RFC 3021): every address is a host
    if version_of(net) == 4:
        return first + 1, last - 1
    return first + 1, last


def default_gateway(net: IPNetwork) -> str | None:
    first, last = usable_range(net)
    if first > last:
        return None
    return str(ipaddress.ip_address(first))


def check_gateway(net: IPNetwork, gateway: str, field: str = "gateway_ip") -> str:
    ip = parse_ip(gateway, field)
    first, last = usable_range(net)
    if ip.version != net.version or not first <= int(ip) <= last:
        raise e.invalid_input(f"Gateway is not valid on subnet: {gateway} is not a host "
                              f"address of {net}", field)
    return str(ip)


def default_pools(net: IPNetwork, gateway: str | None) -> list[dict[str, str]]:
    first, last = usable_range(net)
    if first > last:
        return []
    ranges = [(first, last)]
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        ranges = [(a, b) for a, b in ((first, gw - 1), (gw + 1, last)) if a <= b]
    return [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))}
            for a, b in ranges]


def pool_label(pool: dict[str, Any]) -> str:
    return f"{pool.get('start')}-{pool.get('end')}"


def check_pools(net: IPNetwork, pools: list[dict[str, Any]], gateway: str | None
                ) -> list[dict[str, str]]:
    """Validated pools in address order, or the Neutron error for the first bad one."""
    first, last = usable_range(net)
    parsed: list[tuple[int, int, dict[str, Any]]] = []
    for pool in pools:
        try:
            start = ipaddress.ip_address(pool["start"])
            end = ipaddress.ip_address(pool["end"])
        except (KeyError, TypeError, ValueError):
            raise e.typed_bad_request("InvalidAllocationPool", f"The allocation pool "
                                      f"{pool_label(pool)} is not valid.",
                                      "allocation_pools") from None
        if start.version != net.version or end.version != net.version or \
                int(start) > int(end):
            raise e.typed_bad_request("InvalidAllocationPool", f"The allocation pool "
                                      f"{pool_label(pool)} is not valid.",
                                      "allocation_pools")
        if int(start) < first or int(end) > last:
            raise e.typed_bad_request("OutOfBoundsAllocationPool", f"The allocation pool "
                                      f"{pool_label(pool)} spans beyond the subnet cidr "
                                      f"{net}.", "allocation_pools")
        parsed.append((int(start), int(end), pool))
    parsed.sort(key=lambda p: p[0])
    for (_, a_end, a), (b_start, _, b) in itertools.pairwise(parsed):
        if b_start <= a_end:
            raise e.conflict("OverlappingAllocationPools", "Found overlapping allocation "
                             f"pools: {pool_label(a)} {pool_label(b)} for subnet {net}.")
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        for low, high, pool in parsed:
            if low <= gw <= high:
                raise e.conflict("GatewayConflictWithAllocationPools", f"Gateway ip "
                                 f"{gateway} conflicts with allocation pool "
                                 f"{pool_label(pool)}.")
    return [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))}
            for a, b, _ in parsed]


def in_pools(ip: IPAddress, pools: Iterable[dict[str, str]]) -> bool:
    return any(int(ipaddress.ip_address(p["start"])) <= int(ip)
               <= int(ipaddress.ip_address(p["end"])) for p in pools)


def eui64(net: IPNetwork, mac: str) -> str:
    """The SLAAC address a guest with this MAC configures itself on a /64."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    return str(ipaddress.ip_address(int(net.network_address) | int.from_bytes(bytes(iid), "big")))


def is_auto_address(subnet: m.Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in AUTO_ADDRESS_MODES


# -- allocation -----------------------------------------------------------------------

def used_addresses(s: Session, subnet_id: str) -> set[int]:
    rows = s.scalars(select(m.IPAllocation.ip_address)
                     .where(m.IPAllocation.subnet_id == subnet_id))
    return {int(ipaddress.ip_address(ip)) for ip in rows}


def free_addresses(subnet: m.Subnet, used: set[int]) -> Iterator[str]:
    """Free addresses in pool order (lowest first, as operators expect to see them)."""
    gateway = int(ipaddress.ip_address(subnet.gateway_ip)) if subnet.gateway_ip else None
    for pool in subnet.allocation_pools:
        start = int(ipaddress.ip_address(pool["start"]))
        end = int(ipaddress.ip_address(pool["end"]))
        current = start
        while current <= end:
            if current not in used and current != gateway:
                yield str(ipaddress.ip_address(current))
            current += 1


def _insert(s: Session, port: m.Port, subnet: m.Subnet, ip: str, position: int) -> bool:
    """Insert one allocation in a savepoint; False when the address was taken."""
    try:
        with s.begin_nested():
            s.add(m.IPAllocation(port_id=port.id, subnet_id=subnet.id,
                                 network_id=subnet.network_id, ip_address=ip,
                                 position=position))
            s.flush()
    except IntegrityError:
        return False
    return True


# A request that loses this many races in a row starts again in a new transaction
# (StaleRead): on MariaDB's repeatable reads only a new one sees every address the
# winners took. Each loss means another request got an address.
MAX_ALLOCATION_ATTEMPTS = 8


def _allocate_any(s: Session, port: m.Port, subnet: m.Subnet, position: int) -> str | None:
    used = used_addresses(s, subnet.id)
    for _attempt in range(MAX_ALLOCATION_ATTEMPTS):
        ip = next(free_addresses(subnet, used), None)
        if ip is None:
            return None
        if _insert(s, port, subnet, ip, position):
            return ip
        # A racing request took it first: skip it and what others have taken since.
        used.add(int(ipaddress.ip_address(ip)))
        used |= used_addresses(s, subnet.id)
    raise StaleRead(f"Unable to allocate an address on subnet {subnet.id}: too many "
                    "concurrent requests; try again.",
                    neutron_type="IpAddressGenerationFailure")


def check_requested_ip(subnet: m.Subnet, ip: IPAddress, device_owner: str) -> None:
    net = ipaddress.ip_network(subnet.cidr)
    first, last = usable_range(net)
    if ip.version != net.version or not first <= int(ip) <= last:
        raise e.typed_bad_request("InvalidIpForSubnet", f"IP address {ip} is not a valid IP "
                                  "for the specified subnet.", "fixed_ips")
    if is_auto_address(subnet) and device_owner not in ROUTER_OWNERS:
        # A router's leg takes the gateway address (Neutron's exception): it sends the
        # advertisements the others make their addresses from.
        raise e.typed_bad_request(
            "AllocationOnAutoAddressSubnet", f"IPv6 address {ip} cannot be directly "
            f"assigned to a port on subnet {subnet.id} since the subnet is configured for "
            "automatic addresses", "fixed_ips")
    if str(ip) == subnet.gateway_ip and device_owner not in ROUTER_OWNERS:
        raise e.ip_already_allocated(str(ip), subnet.id)


def resolve_requests(subnets: list[m.Subnet], network_id: str,
                     fixed_ips: list[dict[str, Any]]) -> list[tuple[m.Subnet, IPAddress | None]]:
    """Each fixed_ips entry as (subnet, exact address or None)."""
    if len(fixed_ips) > MAX_FIXED_IPS_PER_PORT:
        raise e.bad_request("Exceeded maximum amount of fixed ips per port.", "fixed_ips")
    by_id = {sn.id: sn for sn in subnets}
    out: list[tuple[m.Subnet, IPAddress | None]] = []
    for item in fixed_ips:
        subnet_id, raw_ip = item.get("subnet_id"), item.get("ip_address")
        ip = parse_ip(raw_ip, "fixed_ips") if raw_ip is not None else None
        if subnet_id is not None:
            subnet = by_id.get(subnet_id)
            if subnet is None:
                raise e.invalid_input(f"Failed to create port on network {network_id}, "
                                      f"because fixed_ips included invalid subnet "
                                      f"{subnet_id}", "fixed_ips")
        elif ip is not None:
            matches = [sn for sn in subnets if ip in ipaddress.ip_network(sn.cidr)]
            if not matches:
                raise e.typed_bad_request("InvalidIpForNetwork", f"IP address {ip} is not a "
                                          "valid IP for any of the subnets on the specified "
                                          "network.", "fixed_ips")
            subnet = matches[0]
        else:
            raise e.invalid_attribute("fixed_ips", "each entry needs subnet_id or ip_address")
        out.append((subnet, ip))
    return out


def default_requests(subnets: list[m.Subnet]) -> list[tuple[m.Subnet, IPAddress | None]]:
    """No fixed_ips given: one IPv4 address, one stateful IPv6 address, every SLAAC one."""
    out: list[tuple[m.Subnet, IPAddress | None]] = []
    v4 = [sn for sn in subnets if sn.ip_version == 4]
    v6_stateful = [sn for sn in subnets if sn.ip_version == 6 and not is_auto_address(sn)]
    if v4:
        out.append((v4[0], None))
    if v6_stateful:
        out.append((v6_stateful[0], None))
    out.extend((sn, None) for sn in subnets if is_auto_address(sn))
    return out


def allocate(s: Session, port: m.Port, requests: list[tuple[m.Subnet, IPAddress | None]],
             fallback: Iterable[m.Subnet] = (), start_position: int = 0) -> None:
    """Give the (flushed) port its addresses; 409 when taken or when a subnet is full.

    ``fallback``: other subnets an address-less request may be served from when
    its subnet is full (when the port named no subnet, any of the network's will do).
    """
    spare = list(fallback)
    for position, (subnet, ip) in enumerate(requests, start_position):
        if ip is not None:
            check_requested_ip(subnet, ip, port.device_owner)
            if not _insert(s, port, subnet, str(ip), position):
                raise e.ip_already_allocated(str(ip), subnet.id)
            continue
        if is_auto_address(subnet):
            address = eui64(ipaddress.ip_network(subnet.cidr), port.mac_address)
            if not _insert(s, port, subnet, address, position):
                raise e.ip_already_allocated(address, subnet.id)
            continue
        if _allocate_any(s, port, subnet, position) is None:
            others = [sn for sn in spare if sn is not subnet
                      and sn.ip_version == subnet.ip_version and not is_auto_address(sn)]
            if not any(_allocate_any(s, port, other, position) for other in others):
                raise e.ip_generation_failure(subnet.network_id)
    s.expire(port, ["fixed_ips"])
