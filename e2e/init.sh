#!/bin/busybox sh
# /init of the end-to-end and boot-benchmark VMs. One device manager runs
# (the @@MANAGER@@ line is replaced): hotplugd for the e2e test; for the benchmark also
# systemd-udevd or the classic modprobe loop. No /sbin/modprobe is set for the
# kernel to call. Records go to ttyS0 (a file on the host); ttyS1 is the
# command channel of e2e/agent.sh (dump, run CMD, poweroff).
# "@@T start|triggered|settled <uptime>" lines time a manager.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo > /proc/sys/kernel/modprobe
uptime_s() { cut -d' ' -f1 /proc/uptime; }
echo "@@E2E boot uptime=$(uptime_s)" > /dev/ttyS0
@@MANAGER@@
exec sh /agent.sh /dev/ttyS1 "poweroff -f"
