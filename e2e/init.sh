#!/bin/busybox sh
# /init of the end-to-end and boot-benchmark VMs. One device manager runs
# (the @@MANAGER@@ line is replaced): hotplugd for the e2e test; for the benchmark also
# systemd-udevd or the classic modprobe loop. No /sbin/modprobe is set for the
# kernel to call. Records go to ttyS0 (a file on the host); ttyS1 is a command
# channel: "dump" prints /proc/modules and every device's MODALIAS,
# "run CMD" runs CMD with sh and prints its output and status,
# "poweroff" ends the VM. "@@T start|triggered|settled <uptime>" lines time a manager.
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
stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3<>/dev/ttyS1
echo "@@READY" >&3
while read -r cmd <&3; do
  case "$cmd" in
    dump)
      {
        echo "@@MODULES"
        cat /proc/modules
        echo "@@MODALIASES"
        find /sys/devices -name uevent -type f -exec grep -H '^MODALIAS=' {} + 2>/dev/null
        echo "@@END"
      } >&3
      ;;
    run\ *)
      {
        echo "@@RUN"
        sh -c "${cmd#run }" 2>&1
        echo "@@STATUS $?"
      } >&3
      ;;
    poweroff)
      poweroff -f
      ;;
  esac
done
