#!/bin/sh
# udhcpc's hook: configure the lease it got and say so on the console.
case "$1" in
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    for tty in /dev/ttyS0 /dev/tty0; do
        echo "dhcp: $interface $ip/${mask:-24}" >$tty
    done 2>/dev/null
    ;;
esac
exit 0
