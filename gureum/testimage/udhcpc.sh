#!/bin/sh
# udhcpc's hook: configure the lease it got (address, MTU, routes) and say so on the
# console: "dhcp: eth0 <ip>/<len>", then "GUREUM-IP eth0 <ip>/<len>" and
# "GUREUM-MTU eth0 <mtu>" (the interface's MTU once the lease's option 26 is applied).
say() { for tty in /dev/ttyS0 /dev/tty0; do echo "$*" >$tty; done 2>/dev/null; }
case "$1" in
bound | renew)
    ip addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$staticroutes" ]; then
        # Option 121 replaces the router option (RFC 3442): pairs "destination gateway".
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            ip route replace "$1" via "$2" dev "$interface"
            shift 2
        done
    elif [ -n "$router" ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
    say "dhcp: $interface $ip/${mask:-24}"
    say "GUREUM-IP $interface $ip/${mask:-24}"
    say "GUREUM-MTU $interface $(cat "/sys/class/net/$interface/mtu")"
    ;;
esac
exit 0
