"""What the linuxbridge data plane would write, without root: dnsmasq's host entries,
options and command line (DHCPv4 and DHCPv6), radvd's configuration, the security
groups' nftables rules, a router's NAT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gureum.netagent.dataplane import dnsmasq, firewall, radvd

SUBNET = {"id": "s1", "cidr": "192.168.50.0/24", "ip_version": 4,
          "gateway_ip": "192.168.50.1", "enable_dhcp": True, "dns_nameservers": ["8.8.8.8"],
          "host_routes": [{"destination": "10.0.0.0/8", "nexthop": "192.168.50.254"}],
          "allocation_pools": []}
NETWORK: dict[str, Any] = {
    "id": "n1", "mtu": 1450, "bridge": "brqn1", "dhcp": True,
    "subnets": [SUBNET, {**SUBNET, "id": "s6", "cidr": "fd00::/64", "ip_version": 6}],
    "dhcp_ports": [], "ports": [
        {"id": "p1", "mac_address": "FA:16:3E:00:00:01", "device_owner": "compute:nova",
         "fixed_ips": [{"subnet_id": "s1", "ip_address": "192.168.50.5"}],
         "extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": "10.0.0.9",
                              "ip_version": 4}]},
        {"id": "d1", "mac_address": "fa:16:3e:00:00:02", "device_owner": "network:dhcp",
         "fixed_ips": [{"subnet_id": "s1", "ip_address": "192.168.50.2"}],
         "extra_dhcp_opts": []}]}


def test_dnsmasq_hosts_options_and_command_line(tmp_path: Path) -> None:
    assert dnsmasq.hosts_file(NETWORK) == \
        "fa:16:3e:00:00:01,set:port-p1,host-192-168-50-5,192.168.50.5\n"
    assert dnsmasq.opts_file(NETWORK) == "tag:port-p1,option:tftp-server,10.0.0.9\n"
    args = dnsmasq.arguments(NETWORK, tmp_path, "ns-d1")
    assert "--dhcp-range=set:subnet-s1,192.168.50.0,static,255.255.255.0,86400s" in args
    assert not [a for a in args if "fd00" in a]  # IPv6 subnets: no DHCPv4 range
    forced = [a.split("=", 1)[1] for a in args if a.startswith("--dhcp-option-force=")]
    assert forced == ["tag:subnet-s1,option:router,192.168.50.1",
                      "tag:subnet-s1,option:mtu,1450",
                      "tag:subnet-s1,option:dns-server,8.8.8.8",
                      "tag:subnet-s1,option:classless-static-route,"
                      "10.0.0.0/8,192.168.50.254,0.0.0.0/0,192.168.50.1"]
    assert f"--pid-file={tmp_path / 'pid'}" in args and "--interface=ns-d1" in args


def v6_network(mode: str) -> dict[str, Any]:
    v6 = {**SUBNET, "id": "s6", "cidr": "fd00:1::/64", "ip_version": 6,
          "gateway_ip": "fd00:1::1", "dns_nameservers": ["fd00::53", "8.8.8.8"],
          "host_routes": [], "ipv6_ra_mode": mode, "ipv6_address_mode": mode}
    p1 = {**NETWORK["ports"][0], "extra_dhcp_opts": [],
          "fixed_ips": [{"subnet_id": "s6", "ip_address": "fd00:1::5"}]}
    return {**NETWORK, "subnets": [v6], "ports": [p1]}


def test_dnsmasq_serves_dhcpv6_for_the_dhcpv6_address_modes_only(tmp_path: Path) -> None:
    stateful = v6_network("dhcpv6-stateful")
    assert [s["id"] for s in dnsmasq.dhcp_subnets(stateful)] == ["s6"]
    assert dnsmasq.hosts_file(stateful) == "fa:16:3e:00:00:01,host-fd00-1--5,[fd00:1::5]\n"
    args = dnsmasq.arguments(stateful, tmp_path, "ns-d1")
    assert "--dhcp-range=set:subnet-s6,fd00:1::,static,64,86400s" in args
    forced = [a.split("=", 1)[1] for a in args if a.startswith("--dhcp-option-force=")]
    assert forced == ["tag:subnet-s6,option6:dns-server,[fd00::53]"]  # no MTU, no router
    assert "--enable-ra" not in args  # radvd advertises
    # Stateless: a range for the options, no host entries (SLAAC makes the address).
    stateless = v6_network("dhcpv6-stateless")
    assert dnsmasq.hosts_file(stateless) == ""
    assert "--dhcp-range=set:subnet-s6,fd00:1::,static,64,86400s" in \
        dnsmasq.arguments(stateless, tmp_path, "ns-d1")
    # SLAAC, or DHCP off: dnsmasq has nothing to do.
    assert dnsmasq.dhcp_subnets(v6_network("slaac")) == []
    off = v6_network("dhcpv6-stateful")
    off["subnets"] = [{**off["subnets"][0], "enable_dhcp": False}]
    assert dnsmasq.dhcp_subnets(off) == []


def test_radvd_flags_follow_the_ra_mode() -> None:
    def conf(*modes: str | None) -> str:
        subnets = [{"cidr": f"fd00:{i}::/64", "ipv6_ra_mode": m,
                    "dns_nameservers": ["fd00::53", "8.8.8.8"]}
                   for i, m in enumerate(modes, 1)]
        return radvd.config([{"device": "qr-1", "mtu": 1450, "subnets": subnets}])

    slaac = conf("slaac")
    assert slaac == (
        "interface qr-1\n{\n    AdvSendAdvert on;\n    MinRtrAdvInterval 30;\n"
        "    MaxRtrAdvInterval 100;\n    AdvManagedFlag off;\n"
        "    AdvOtherConfigFlag off;\n    AdvLinkMTU 1450;\n    prefix fd00:1::/64\n"
        "    {\n        AdvOnLink on;\n        AdvAutonomous on;\n    };\n"
        "    RDNSS fd00::53\n    {\n    };\n};\n")
    stateless = conf("dhcpv6-stateless")
    assert "AdvManagedFlag off;" in stateless and "AdvOtherConfigFlag on;" in stateless
    assert "AdvAutonomous on;" in stateless and "RDNSS" not in stateless
    stateful = conf("dhcpv6-stateful")
    assert "AdvManagedFlag on;" in stateful and "AdvOtherConfigFlag on;" in stateful
    assert "AdvAutonomous off;" in stateful
    # A subnet without ipv6_ra_mode is some other router's to advertise.
    assert conf(None) == "" and conf() == ""
    assert "fd00:2::/64" not in conf("slaac", None)


def rule(**kw: Any) -> dict[str, Any]:
    return {"direction": "ingress", "ethertype": "IPv4", "protocol": None,
            "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None, **kw}


def test_security_group_rule_matches() -> None:
    assert firewall.rule_match(rule(), "saddr") == "meta nfproto ipv4"
    assert firewall.rule_match(rule(protocol="tcp", port_range_min=22, port_range_max=22,
                                    remote_ip_prefix="10.0.0.0/8"), "saddr") == \
        "meta nfproto ipv4 ip saddr 10.0.0.0/8 meta l4proto 6 th dport 22"
    assert firewall.rule_match(rule(protocol="udp", port_range_min=1000,
                                    port_range_max=2000), "saddr") == \
        "meta nfproto ipv4 meta l4proto 17 th dport 1000-2000"
    assert firewall.rule_match(rule(protocol="icmp", port_range_min=8), "saddr") == \
        "meta nfproto ipv4 meta l4proto 1 icmp type 8"
    assert firewall.rule_match(rule(ethertype="IPv6", protocol="icmp", port_range_min=128,
                                    port_range_max=0), "daddr") == \
        "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 icmpv6 code 0"
    assert firewall.rule_match(rule(ethertype="IPv6", protocol="ipv6-icmp"), "daddr") == \
        "meta nfproto ipv6 meta l4proto 58"
    # An IPv6 prefix on an IPv4 rule matches nothing.
    assert firewall.rule_match(rule(remote_ip_prefix="fd00::/64"), "saddr") is None


def test_every_neutron_protocol_is_matched_by_number() -> None:
    """Protocols nft has no name for (or Neutron spells its own way) are matched by
    number: a rule for them allows, never silently drops out."""
    for proto, number in (("dccp", 33), ("udplite", 136), ("sctp", 132), ("vrrp", 112),
                          ("112", 112), ("132", 132), ("gre", 47), ("ipip", 4),
                          ("ah", 51), ("255", 255), ("TCP", 6), (47, 47)):
        assert firewall.rule_match(rule(protocol=proto), "saddr") == \
            f"meta nfproto ipv4 meta l4proto {number}", proto
    for anything in (None, "", "any", "0", "ip", "hopopt"):
        assert firewall.rule_match(rule(protocol=anything), "saddr") == "meta nfproto ipv4"
    # Ports only for the protocols that have them, whatever the name.
    for proto in ("dccp", "udplite", "sctp", "132", "33"):
        assert firewall.rule_match(rule(protocol=proto, port_range_min=5000,
                                        port_range_max=5010), "daddr").endswith(
            " th dport 5000-5010"), proto
    assert firewall.rule_match(rule(protocol="vrrp", port_range_min=1, port_range_max=2),
                               "saddr") == "meta nfproto ipv4 meta l4proto 112"
    # Nothing it cannot read: not a protocol, out of range, ICMPv6 on IPv4.
    for bad in ("bogus", "256", "-1"):
        assert firewall.rule_match(rule(protocol=bad), "saddr") is None, bad
    assert firewall.rule_match(rule(protocol="ipv6-icmp"), "saddr") is None


def test_security_groups_filter_ports_with_port_security_only() -> None:
    port = {"id": "p1", "mac_address": "fa:16:3e:00:00:01", "taps": ["tapp1-c01"],
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "192.168.50.5"}],
            "port_security_enabled": True,
            "allowed_address_pairs": [{"ip_address": "192.168.50.100/32",
                                       "mac_address": "fa:16:3e:00:00:99"}],
            "security_group_rules": [rule(protocol="icmp"), rule(direction="egress")]}
    off = {**port, "id": "p2", "mac_address": "fa:16:3e:00:00:02", "taps": ["tapp2-c01"],
           "port_security_enabled": False}
    bridge, inet = firewall.security_groups([port, off])
    assert 'iifname { "tapp1-c01" } jump spoof_pp1' in bridge
    assert "ether saddr != { fa:16:3e:00:00:01, fa:16:3e:00:00:99 } drop" in bridge
    assert "ip saddr != { 192.168.50.100, 192.168.50.5 } drop" in bridge
    assert "tapp2" not in bridge and "00:02" not in inet
    assert "ether daddr fa:16:3e:00:00:01 jump ingress_pp1" in inet
    assert "ether saddr fa:16:3e:00:00:99 jump egress_pp1" in inet  # the pair's MAC
    assert "meta nfproto ipv4 meta l4proto 1 return" in inet
    assert "ct state established,related return" in inet
    assert " accept\n" not in inet  # an allowed packet still meets the other port's chain
    assert inet.count("\ndrop\n") == 2  # the ingress and egress chains end in drop


def test_stateless_ports_get_no_established_exception() -> None:
    """A port whose groups are stateless: replies need a rule of their own (no
    conntrack exception), while a stateful port beside it keeps its own."""
    base = {"fixed_ips": [{"subnet_id": "s1", "ip_address": "192.168.50.5"}],
            "port_security_enabled": True, "allowed_address_pairs": [],
            "security_group_rules": [rule(protocol="tcp", port_range_min=22,
                                          port_range_max=22)]}
    stateless = {**base, "id": "p1", "mac_address": "fa:16:3e:00:00:01",
                 "taps": ["tapp1-c01"], "stateful": False}
    stateful = {**base, "id": "p2", "mac_address": "fa:16:3e:00:00:02",
                "taps": ["tapp2-c01"], "stateful": True}
    _bridge, inet = firewall.security_groups([stateless, stateful])
    chains = {c.split(" {", 1)[0]: c for c in inet.split("chain ")[1:]}
    for name in ("ingress_pp1", "egress_pp1"):
        assert "ct state" not in chains[name], chains[name]
        assert chains[name].rstrip("}\n").endswith("drop")
    assert "meta l4proto 6 th dport 22 return" in chains["ingress_pp1"]
    assert "udp sport 67 udp dport 68 return" in chains["ingress_pp1"]  # DHCP still
    assert "ct state established,related return" in chains["ingress_pp2"]
    assert "ct state established,related return" in chains["egress_pp2"]


def test_router_nat() -> None:
    router = {"id": "r1", "enable_snat": True,
              "external": {"fixed_ips": [{"subnet_id": "pub", "ip_address": "172.24.4.10"}]},
              "floating_ips": [{"floating_ip_address": "172.24.4.20",
                                "fixed_ip_address": "192.168.50.5", "port_id": "p1"}],
              "port_forwardings": [{"floating_ip_address": "172.24.4.30", "protocol": "tcp",
                                    "external_port": 2222, "internal_ip_address":
                                    "192.168.50.6", "internal_port": 22}]}
    nat = firewall.router_nat(router, "qg-x")
    assert "ip daddr 172.24.4.20 dnat to 192.168.50.5" in nat
    assert 'ip saddr 192.168.50.5 oifname "qg-x" snat to 172.24.4.20' in nat
    assert "ip daddr 172.24.4.30 tcp dport 2222 dnat to 192.168.50.6:22" in nat
    assert 'oifname "qg-x" snat to 172.24.4.10' in nat
    assert "snat to 172.24.4.10" not in firewall.router_nat({**router, "enable_snat": False},
                                                           "qg-x")
