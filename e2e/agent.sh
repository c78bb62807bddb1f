# The e2e command channel, run by the VM's shell (busybox sh in the initramfs
# guests, dash in the systemd guest) on a serial line that the host reaches
# as a unix socket (e2e/vm.ts). Usage: sh agent.sh TTY POWEROFF-COMMAND
# Protocol, one command a line:
#   dump      /proc/modules and every device's MODALIAS, then @@END
#   run CMD   CMD's output (stdout and stderr) after @@RUN, then "@@STATUS N"
#   poweroff  runs POWEROFF-COMMAND
# "@@READY" is written once the loop listens.
tty=$1
off=$2
stty -F "$tty" raw -echo 2>/dev/null
exec 3<>"$tty"
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
        sh -c "${cmd#run }" 2>&1 </dev/null
        echo "@@STATUS $?"
      } >&3
      ;;
    poweroff)
      $off
      ;;
  esac
done
