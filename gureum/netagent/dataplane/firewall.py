"""nftables rulesets of the linuxbridge data plane, as text (``nft -f`` syntax).

Security groups (one host's bound ports, those with port security on):

- ``bridge <table>``: anti-spoofing on the bridge ports, stateless, before anything
  else sees the frame (prerouting, priority -200): a frame from a port's tap must
  carry the port's MAC (or an allowed address pair's), its IPv4/IPv6 source must be
  one of the port's addresses (or a pair's; DHCP's 0.0.0.0 and IPv6 link-local
  too), its ARP must claim only those, and it never answers as a DHCP server or
  sends router advertisements.
- ``inet <table>``: the rules. This kernel has no connection tracking in
  the bridge family, so bridged IP traffic is filtered where bridge netfilter
  (br_netfilter, ``bridge-nf-call-iptables=1``) hands it to the inet family's
  forward hook, with conntrack. There the bridge ports are not visible (the input
  and output devices are the bridge), so a port's traffic is told by its MAC:
  ``ether saddr`` leaving it (its egress rules), ``ether daddr`` reaching it (its
  ingress rules), which the anti-spoofing above makes trustworthy. For a port whose
  groups are stateful, established and related traffic passes; DHCP to the port and
  IPv6 neighbour discovery pass; anything else reaching a port needs an ingress
  rule, anything leaving it an egress rule. A chain lets traffic on by returning
  (never ``accept``, which would end the base chain), so traffic between two ports of
  the host passes the sender's egress and the receiver's ingress both, whichever of
  the two is looked at first. A port whose groups are stateless
  (``stateful: false``) has no established/related exception: a reply needs a rule
  of its own, as Neutron's stateless security groups.

A router namespace's NAT (``ip <table>`` inside the namespace): SNAT of what leaves
the gateway leg to the gateway address when SNAT is on, floating IPs 1:1 (DNAT in,
SNAT out), port forwardings (DNAT of a protocol port).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gureum.netagent.state import ICMP_PROTOCOLS, PORT_PROTOCOLS, protocol_number

SG_TABLE = "gureum_sg"  # + the host's key
NAT_TABLE = "gureum_nat"


def _q(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _chain_id(port_id: str) -> str:
    return "p" + "".join(c for c in port_id if c.isalnum())[:24]


def _addresses(port: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """The port's (and its allowed address pairs') IPv4 and IPv6 addresses or
    prefixes, and MACs."""
    v4: list[str] = []
    v6: list[str] = []
    macs = [str(port["mac_address"]).lower()]
    entries = [str(f["ip_address"]) for f in port.get("fixed_ips", [])]
    for pair in port.get("allowed_address_pairs", []) or []:
        if pair.get("ip_address"):
            entries.append(str(pair["ip_address"]))
        mac = str(pair.get("mac_address") or "").lower()
        if mac and mac not in macs:
            macs.append(mac)
    for entry in entries:
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        (v4 if net.version == 4 else v6).append(text)
    return sorted(set(v4)), sorted(set(v6)), macs


def rule_match(rule: dict[str, Any], peer: str) -> str | None:
    """One security group rule as an nft match (``peer``: saddr for ingress, daddr for
    egress); None when it cannot match anything here.

    The protocol is matched by its IP protocol number (``meta l4proto 132``), so every
    protocol Neutron takes passes, whether nft has a name for it or not (dccp,
    udplite, vrrp, "112"); ICMP on an IPv6 rule is ICMPv6. A port range matches the
    transport header's destination port (``th dport``: TCP, UDP, DCCP, SCTP and
    UDP-Lite all carry it at the same place) and only for those protocols; an ICMP
    rule's "range" is its type and code."""
    v6 = str(rule.get("ethertype") or "IPv4") == "IPv6"
    family = "ip6" if v6 else "ip"
    parts = [f"meta nfproto {'ipv6' if v6 else 'ipv4'}"]
    prefix = rule.get("remote_ip_prefix")
    if prefix:
        try:
            net = ipaddress.ip_network(str(prefix), strict=False)
        except ValueError:
            return None
        if net.version != (6 if v6 else 4):
            return None
        if net.prefixlen:
            parts.append(f"{family} {peer} {net}")
    try:
        number = protocol_number(rule.get("protocol"))
    except (KeyError, ValueError):
        return None
    if number is None:
        return " ".join(parts)
    if number == 1 and v6:
        number = 58
    if (number == 58) != v6 and number in ICMP_PROTOCOLS:
        return None  # ICMPv6 on an IPv4 rule
    parts.append(f"meta l4proto {number}")
    lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
    if number in PORT_PROTOCOLS and lo is not None:
        hi = hi if hi is not None else lo
        parts.append(f"th dport {int(lo)}" if int(lo) == int(hi)
                     else f"th dport {int(lo)}-{int(hi)}")
    elif number in ICMP_PROTOCOLS and lo is not None:
        kind = "icmpv6" if number == 58 else "icmp"
        parts.append(f"{kind} type {int(lo)}")
        if hi is not None:
            parts.append(f"{kind} code {int(hi)}")
    return " ".join(parts)


def security_groups(ports: list[dict[str, Any]]) -> tuple[str, str]:
    """The bodies of the ``bridge`` (anti-spoofing) and ``inet`` (rules) tables for the
    host's bound ports. Ports without port security are not filtered."""
    bridge_dispatch: list[str] = []
    bridge_chains: list[str] = []
    inet_dispatch: list[str] = []
    inet_chains: list[str] = []
    for port in sorted(ports, key=lambda p: str(p["id"])):
        if not port.get("port_security_enabled", True):
            continue
        cid = _chain_id(str(port["id"]))
        taps = sorted({str(t) for t in port.get("taps", [port.get("tap")]) if t})
        v4, v6, macs = _addresses(port)
        mac = str(port["mac_address"]).lower()
        # -- anti-spoofing (bridge family)
        if taps:
            bridge_dispatch.append(f"iifname {_set([_q(t) for t in taps])} jump spoof_{cid}")
            lines = [f"ether saddr != {_set(macs)} drop",
                     f"ether type arp arp saddr ether != {_set(macs)} drop"]
            arp_ok = ["0.0.0.0", *v4]
            lines.append(f"ether type arp arp saddr ip != {_set(arp_ok)} drop")
            lines.append("ether type ip udp sport 67 drop")
            lines.append("ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 "
                         "udp dport 67 return")
            lines.append(f"ether type ip ip saddr != {_set(v4)} drop" if v4
                         else "ether type ip drop")
            lines.append("ether type ip6 icmpv6 type nd-router-advert drop")
            lines.append("ether type ip6 udp sport 547 drop")
            lines.append(f"ether type ip6 ip6 saddr != {_set(['::', 'fe80::/10', *v6])} drop")
            bridge_chains.append(f"chain spoof_{cid} {{\n" + "\n".join(lines) + "\n}")
        # -- the rules (inet family)
        for each in [mac, *[m for m in macs if m != mac]]:  # allowed pairs' MACs too
            inet_dispatch.append(f"ether saddr {each} jump egress_{cid}")
            inet_dispatch.append(f"ether daddr {each} jump ingress_{cid}")
        # Stateless groups: no connection state is looked at, so a reply passes only
        # when a rule lets it (conntrack still sees the traffic, so a stateful peer
        # gets its own replies).
        stateful = bool(port.get("stateful", True))
        egress = ["ct state invalid drop",
                  "ct state established,related return"] if stateful else []
        ingress = ["ct state invalid drop",
                   "ct state established,related return"] if stateful else []
        egress += ["meta nfproto ipv4 udp sport 68 udp dport 67 return",
                   "meta nfproto ipv6 udp sport 546 udp dport 547 return"]
        ingress += ["meta nfproto ipv4 udp sport 67 udp dport 68 return",
                   "meta nfproto ipv6 udp sport 547 udp dport 546 return",
                   "meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, "
                   "nd-neighbor-advert, nd-router-advert } return"]
        egress.append("meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, "
                      "nd-neighbor-advert, nd-router-solicit } return")
        for rule in port.get("security_group_rules", []):
            if str(rule.get("direction")) == "egress":
                match = rule_match(rule, "daddr")
                if match is not None:
                    egress.append(f"{match} return")
            else:
                match = rule_match(rule, "saddr")
                if match is not None:
                    ingress.append(f"{match} return")
        egress.append("drop")
        ingress.append("drop")
        inet_chains.append(f"chain egress_{cid} {{\n" + "\n".join(egress) + "\n}")
        inet_chains.append(f"chain ingress_{cid} {{\n" + "\n".join(ingress) + "\n}")
    bridge = "\n".join([
        "chain prerouting {\ntype filter hook prerouting priority -200; policy accept;\n"
        + "\n".join(bridge_dispatch) + "\n}", *bridge_chains])
    inet = "\n".join([
        "chain forward {\ntype filter hook forward priority 0; policy accept;\n"
        + "\n".join(inet_dispatch) + "\n}",
        "chain input {\ntype filter hook input priority 0; policy accept;\n"
        + "\n".join(d for d in inet_dispatch if "saddr" in d) + "\n}",
        *inet_chains])
    return bridge, inet


def router_nat(router: dict[str, Any], gateway_dev: str | None) -> str:
    """The body of a router namespace's ``ip`` NAT table."""
    pre: list[str] = []
    out: list[str] = []
    post: list[str] = []
    ext = router.get("external")
    gw_ip = _first_v4(ext.get("fixed_ips", [])) if ext else None
    if gateway_dev and ext:
        dev = _q(gateway_dev)
        for fip in sorted(router.get("floating_ips", []),
                          key=lambda f: str(f["floating_ip_address"])):
            public, private = fip["floating_ip_address"], fip["fixed_ip_address"]
            if not (public and private) or ":" in str(public):
                continue
            pre.append(f"ip daddr {public} dnat to {private}")
            out.append(f"ip daddr {public} dnat to {private}")
            post.append(f"ip saddr {private} oifname {dev} snat to {public}")
        for pf in router.get("port_forwardings", []):
            proto = str(pf.get("protocol") or "tcp").lower()
            if proto not in ("tcp", "udp"):
                continue
            target = f"{pf['internal_ip_address']}:{int(pf['internal_port'])}"
            public = pf.get("floating_ip_address")
            where = f"ip daddr {public}" if public else f"iifname {dev}"
            pre.append(f"{where} {proto} dport {int(pf['external_port'])} dnat to {target}")
        if router.get("enable_snat") and gw_ip:
            post.append(f"oifname {dev} ct status dnat accept")
            post.append(f"oifname {dev} snat to {gw_ip}")
    return "\n".join([
        "chain prerouting {\ntype nat hook prerouting priority dstnat; policy accept;\n"
        + "\n".join(pre) + "\n}",
        "chain output {\ntype nat hook output priority -100; policy accept;\n"
        + "\n".join(out) + "\n}",
        "chain postrouting {\ntype nat hook postrouting priority srcnat; policy accept;\n"
        + "\n".join(post) + "\n}"])


def _first_v4(fixed_ips: list[dict[str, Any]]) -> str | None:
    for f in fixed_ips:
        if ":" not in str(f["ip_address"]):
            return str(f["ip_address"])
    return None
