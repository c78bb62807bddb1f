#!/usr/bin/env bash
# Runs a command (the test suite) while a hotplugd daemon serves the machine's
# default places, as on an admin's machine where the package is installed and
# running: the control socket /run/hotplugd/control and the index cache
# /var/cache/hotplugd. Tests must neither use nor disturb them.
#
# Needs root. Runs in a private mount namespace with tmpfs over both
# directories, so that the machine's own /run/hotplugd and /var/cache/hotplugd
# (a real daemon's, or an installed package's) are not touched either.
# Afterwards checks that the daemon still answers and that nothing but its own
# cache file appeared in its cache directory.
#
#   scripts/with-running-daemon.sh npm test
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${HOTPLUGD_IN_PRIVATE_NS:-}" != 1 ]; then
  export HOTPLUGD_IN_PRIVATE_NS=1
  exec unshare --mount --propagation private "$0" "$@"
fi
# Mount points made here are removed again at the end (the package check that
# follows in CI compares the file system before and after).
made=()
for d in /run/hotplugd /var/cache/hotplugd; do
  [ -d "$d" ] || { mkdir -p "$d"; made+=("$d"); }
done
mount -t tmpfs -o mode=0755 hotplugd-run /run/hotplugd
mount -t tmpfs -o mode=0755 hotplugd-cache /var/cache/hotplugd
[ -f dist/src/cli.js ] || npm run build >/dev/null
log=$(mktemp)
# Dry-run on the Debian index shipped in test/fixtures, with the default control
# socket and index cache (written after its first settle), the real uevent
# socket and /sys: what an installed daemon holds.
env -u HOTPLUGD_CACHE_DIR node dist/src/cli.js run --mode dry-run --modules-dir test/fixtures/debian-6.1.0-56-amd64 --log-format json >"$log" 2>&1 &
daemon=$!
finish() {
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  umount /run/hotplugd /var/cache/hotplugd 2>/dev/null || true
  for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
}
trap finish EXIT
for _ in $(seq 1 100); do [ -S /run/hotplugd/control ] && break; sleep 0.1; done
node dist/src/cli.js status --control /run/hotplugd/control >/dev/null || { echo "with-running-daemon: the daemon did not start:" >&2; cat "$log" >&2; exit 1; }
echo "with-running-daemon: a hotplugd daemon (pid $daemon) serves /run/hotplugd/control and /var/cache/hotplugd during: $*"
rc=0
"$@" || rc=$?
if ! node dist/src/cli.js status --control /run/hotplugd/control >/dev/null; then
  echo "with-running-daemon: the machine's daemon no longer answers on /run/hotplugd/control after: $*" >&2
  rc=1
fi
foreign=$(find /var/cache/hotplugd /run/hotplugd -mindepth 1 ! -name '*.idx' ! -name control -printf '%p\n')
if [ -n "$foreign" ]; then
  echo "with-running-daemon: files appeared in the daemon's directories:" >&2
  echo "$foreign" >&2
  rc=1
fi
exit "$rc"
