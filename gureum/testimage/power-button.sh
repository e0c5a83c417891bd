#!/bin/sh
# Run by busybox acpid on the ACPI power button: write what is buffered, power off.
say() { for tty in /dev/ttyS0 /dev/tty0; do echo "$*" >$tty; done 2>/dev/null; }
say "acpi: power button: syncing and powering off"
sync
umount /data 2>/dev/null
sync
say "gureum-guest: powered off cleanly"
poweroff -f
