#!/bin/sh
# udhcpc's hook: configure the lease it got and say so on the console.
case "$1" in
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "dhcp: $interface $ip/${mask:-24}" > /dev/ttyS0
    ;;
esac
exit 0
