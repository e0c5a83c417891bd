#!/bin/sh
# Run by busybox acpid on the ACPI power button: write what is buffered, power off.
exec </dev/null >/dev/ttyS0 2>&1
echo "acpi: power button: syncing and powering off"
sync
umount /data 2>/dev/null
sync
echo "gureum-guest: powered off cleanly"
poweroff -f
