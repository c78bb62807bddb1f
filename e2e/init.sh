#!/bin/busybox sh
# /init of the end-to-end VM: hotplugd is the only hotplug agent (no udev, no
# /sbin/modprobe for the kernel to call). Records go to ttyS0 (a file on the
# host); ttyS1 is a command channel: "dump" prints /proc/modules and every
# device's MODALIAS, "poweroff" ends the VM.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo > /proc/sys/kernel/modprobe
echo "@@E2E boot uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
cd /app
node dist/src/cli.js run --mode load --log-format json __HOTPLUGD_ARGS__ > /dev/ttyS0 2>&1 &
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
    poweroff)
      poweroff -f
      ;;
  esac
done
