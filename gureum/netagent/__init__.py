"""The network agent: one per host, bus only (never the database).

It heartbeats to the conductor as Neutron's three agents of a host (L3, DHCP,
Linux bridge), asks the conductor for what its host should carry
(``network_state(host)``, a ``HostNetState``: see ``state.py``), and hands that
to its data plane (``dataplane/``), which converges the host on it: bridges,
taps, dnsmasq, router namespaces with SNAT and floating IPs, security groups.
It asks again on a period and whenever the conductor casts "network changed".
"""

# Neutron's binary names and agent_type strings, as `openstack network agent list` shows.
L3_BINARY = "neutron-l3-agent"
DHCP_BINARY = "neutron-dhcp-agent"
L2_BINARY = "neutron-linuxbridge-agent"
L3_AGENT = "L3 agent"
DHCP_AGENT = "DHCP agent"
L2_AGENT = "Linux bridge agent"

# (binary, agent_type, topic) of the agents one network agent process stands for.
AGENTS = (
    (L3_BINARY, L3_AGENT, "l3_agent"),
    (DHCP_BINARY, DHCP_AGENT, "dhcp_agent"),
    (L2_BINARY, L2_AGENT, "N/A"),
)

# The bus topic the network agents serve (server = host).
TOPIC = "network-agent"
