#!/bin/sh
# The gureum test guest's init (busybox ash, PID 1). Built by gureum/testimage;
# every line it prints goes to the serial console (ttyS0). See the package
# docstring for the lines tests read.
export PATH=/bin:/sbin
if [ -z "${GUREUM_INIT_LOGGED:-}" ]; then
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    dmesg -n 1
    # What follows goes to the serial port (console.log) and to the screen (VNC).
    serial=/dev/ttyS0
    [ -c $serial ] || serial=/dev/console
    GUREUM_INIT_LOGGED=1 /init </dev/null 2>&1 | tee -a /dev/tty0 2>/dev/null >$serial
    while :; do sleep 3600; done  # PID 1 never ends
fi

arg() {  # the value of kernel argument gureum.$1, or $2
    for word in $(cat /proc/cmdline); do
        case "$word" in "gureum.$1="*) echo "${word#*=}"; return ;; esac
    done
    echo "$2"
}

echo "gureum-guest: kernel $(uname -r), init starting"
echo "uptime-at-init: $(cut -d ' ' -f 1 /proc/uptime)"
trace=$(arg trace_modules 0)
while read -r module; do
    insmod "/lib/modules/$module.ko" || echo "gureum-guest: module $module did not load"
    [ "$trace" = 1 ] && echo "module $module: $(cut -d ' ' -f 1 /proc/uptime)"
done < /etc/modules-order

# Dirty pages stay in memory until a sync (or the clean power-off): a guest
# forced off loses its last write, as a real one can.
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs

i=0
while [ ! -b /dev/vda ] && [ $i -lt 20 ]; do usleep 100000; i=$((i + 1)); done

ram=0
for entry in /sys/firmware/memmap/*; do
    [ "$(cat "$entry/type")" = "System RAM" ] || continue
    ram=$((ram + $(cat "$entry/end") - $(cat "$entry/start") + 1))
done
echo "ram-mb: $(((ram + 1048575) / 1048576))"
echo "mem-total-mb: $(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))"

count=none
if [ -b /dev/vda ]; then
    echo "disk-mb: $(($(cat /sys/block/vda/size) / 2048))"
    mkdir -p /data
    opts=commit=600,noauto_da_alloc
    if ! mount -t ext4 -o $opts /dev/vda /data 2>/dev/null; then
        # Only a blank disk is formatted; anything else is left alone.
        if [ "$(dd if=/dev/vda bs=4096 count=16 2>/dev/null | tr -d '\000' | wc -c)" -eq 0 ]; then
            echo "gureum-guest: /dev/vda is blank; making a file system on it"
            mke2fs -L gureum-data /dev/vda >/dev/null && mount -t ext4 -o $opts /dev/vda /data
        fi
    fi
    if grep -q ' /data ' /proc/mounts; then
        count=$(cat /data/boot-count 2>/dev/null)
        case "$count" in '' | *[!0-9]*) count=0 ;; esac
        count=$((count + 1))
        echo "$count" > /data/boot-count  # no sync: see dirty_writeback above
    else
        echo "gureum-guest: no file system on /dev/vda; no boot counter"
    fi
else
    echo "disk-mb: 0"
fi
echo "boot-count: $count"

mkdir -p /config
cdrom=$(findfs LABEL=config-2 2>/dev/null)
for dev in $cdrom /dev/vd[b-z]; do
    [ -b "$dev" ] || continue
    mount -t iso9660 -o ro "$dev" /config 2>/dev/null || continue
    if [ -f /config/openstack/latest/meta_data.json ]; then
        meta=/config/openstack/latest/meta_data.json
        name=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' $meta)
        echo "config-drive: $dev"
        echo "instance-uuid: $(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' $meta)"
        echo "hostname: $name"
        [ -n "$name" ] && hostname "$name"
        data=/config/openstack/latest/user_data
        if [ -f $data ]; then
            head -n 50 $data | sed 's/^/user-data: /'
            [ -n "$(tail -c 1 $data)" ] && echo  # a last line without its newline
        fi
        break
    fi
    umount /config
done

ip link set lo up
for nic in /sys/class/net/*; do
    name=${nic##*/}
    [ "$name" = lo ] && continue
    echo "nic: $name $(cat "$nic/address")"
    ip link set "$name" up
    if [ "$(arg dhcp 1)" = 1 ]; then
        # Until a lease comes (the network's DHCP server may start after the guest),
        # asking for the interface MTU (26) and classless static routes (121) too.
        udhcpc -i "$name" -s /etc/udhcpc.script -t 3 -T 2 -A 3 -q -O mtu \
            -O staticroutes >/dev/null 2>&1 &
    fi
done

# network_data.json of the config drive (Nova's; written one key a line): each link's
# MTU is applied to the NIC with its MAC ("GUREUM-NETDATA eth0 mtu 1450"), and each
# network is printed by type; a static IPv4 one (no DHCP) is configured
# ("GUREUM-NETDATA eth0 ipv4 10.0.0.5/24", its gateway the default route).
netdata=/config/openstack/latest/network_data.json
if [ -f $netdata ]; then
    mkdir -p /tmp
    awk -F'"' '
        /^ "/ { section = $2 }
        section == "links" && $2 == "id" { id = $4 }
        section == "links" && $2 == "ethernet_mac_address" { mac = $4 }
        section == "links" && $2 == "mtu" { split($3, v, /[ :,]+/); mtu = v[2] }
        section == "links" && /^  }/ { print "link", id, mac, mtu; id = mac = mtu = "" }
        section == "networks" && /^   "/ { f[$2] = $4 }
        section == "networks" && $2 == "gateway" { g = $4 }
        section == "networks" && $2 == "network" && $4 == "0.0.0.0" { gw = g }
        section == "networks" && /^  }/ {
            print "net", f["link"], f["type"], f["ip_address"], f["netmask"], gw
            delete f; gw = ""
        }' $netdata | while read -r kind a b c d e; do
        if [ "$kind" = link ]; then
            for nic in /sys/class/net/*; do
                [ "$(cat "$nic/address")" = "$b" ] || continue
                echo "${nic##*/}" >"/tmp/link-$a"
                [ "$c" = null ] && continue
                ip link set dev "${nic##*/}" mtu "$c"
                echo "GUREUM-NETDATA ${nic##*/} mtu $(cat "$nic/mtu")"
            done
            continue
        fi
        nic=$(cat "/tmp/link-$a" 2>/dev/null) || continue
        if [ "$b" = ipv4 ]; then
            len=$(echo "$d" | awk -F. '{ n = 0; for (i = 1; i <= 4; i++) {
                for (bit = 128; bit >= 1 && $i >= bit; bit /= 2) { n++; $i -= bit } }
                print n }')
            ip addr add "$c/$len" dev "$nic"
            [ -n "$e" ] && ip route replace default via "$e" dev "$nic"
            echo "GUREUM-NETDATA $nic ipv4 $c/$len"
        else
            echo "GUREUM-NETDATA $nic $b${c:+ $c}"
        fi
    done
fi

# Addresses to ping, from the kernel command line (gureum.ping=a,b) and from lines
# "gureum.ping=a" of the user data: each is pinged every 2 seconds and the result
# printed as "GUREUM-PING <address> ok|fail".
targets="$(arg ping '' | tr ',' ' ')"
if [ -f /config/openstack/latest/user_data ]; then
    targets="$targets $(sed -n 's/^gureum\.ping=//p' /config/openstack/latest/user_data \
        | tr ',\r' '  ')"
fi
for target in $targets; do
    (
        while :; do
            if ping -c 1 -W 1 "$target" >/dev/null 2>&1; then
                echo "GUREUM-PING $target ok"
            else
                echo "GUREUM-PING $target fail"
            fi
            sleep 2
        done
    ) &
done

if [ "$(arg ignore_acpi 0)" = 1 ]; then
    echo "acpi: ignored (gureum.ignore_acpi=1)"
else
    i=0
    while [ -z "$(ls /dev/input/ 2>/dev/null | grep event)" ] && [ $i -lt 20 ]; do
        usleep 100000; i=$((i + 1))
    done
    acpid -c /etc/acpi -l /dev/null
    echo "acpi: power button powers off"
fi

echo "uptime-at-ready: $(cut -d ' ' -f 1 /proc/uptime)"
echo "GUREUM-READY"
# Disks plugged or unplugged later (volumes) are reported with the tick:
# "GUREUM-DISK vdb <bytes> <serial>" and "GUREUM-DISK-GONE vdb".
block_disks() { for d in /sys/block/vd*; do [ -e "$d" ] && printf ' %s' "${d##*/}"; done; }
disk_sizes() { for d in /sys/block/vd*; do [ -e "$d" ] && printf ' %s:%s' "${d##*/}" "$(cat "$d/size")"; done; }
disks=$(block_disks)
v6=""
sizes=$(disk_sizes)
tick=0
while :; do
    sleep 1
    tick=$((tick + 1))
    echo "tick $tick"
    # Global IPv6 addresses (SLAAC from a router's advertisements), once each, with
    # the IPv6 MTU the advertisement set: "GUREUM-IP6 eth0 fd00::5/64 mtu 1450".
    v6now=$(ip -6 -o addr show scope global 2>/dev/null | grep -v tentative \
        | awk '{ print $2, $4 }')
    if [ "$v6now" != "$v6" ]; then
        echo "$v6now" | while read -r dev addr; do
            [ -n "$addr" ] || continue
            case "$v6" in *"$dev $addr"*) continue ;; esac
            echo "GUREUM-IP6 $dev $addr mtu $(cat "/proc/sys/net/ipv6/conf/$dev/mtu")"
        done
        v6=$v6now
    fi
    # A disk that stays but changes size (a volume extended, or swapped for a larger
    # one): "GUREUM-DISK-SIZE vdb <bytes>".
    now_sizes=$(disk_sizes)
    if [ "$now_sizes" != "$sizes" ]; then
        for e in $now_sizes; do
            case " $sizes " in *" $e "*) ;; *" ${e%%:*}:"*)
                echo "GUREUM-DISK-SIZE ${e%%:*} $((${e#*:} * 512))" ;;
            esac
        done
        sizes=$now_sizes
    fi
    now=$(block_disks)
    [ "$now" = "$disks" ] && continue
    for n in $now; do
        case " $disks " in *" $n "*) ;; *)
            echo "GUREUM-DISK $n $(($(cat "/sys/block/$n/size") * 512))" \
                "$(cat "/sys/block/$n/serial" 2>/dev/null)" ;;
        esac
    done
    for n in $disks; do
        case " $now " in *" $n "*) ;; *) echo "GUREUM-DISK-GONE $n" ;; esac
    done
    disks=$now
done
