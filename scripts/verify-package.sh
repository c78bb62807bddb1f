#!/usr/bin/env bash
# Install the built .deb on this (throwaway) machine, check what a user gets,
# remove and purge it, and check that nothing is left behind. Prints each check.
# Usage: scripts/verify-package.sh [PATH.deb]   (default: dist/package/hotplugd_*.deb)
# Needs root, dpkg, systemd (systemd-analyze), man-db. Does not start the daemon
# unless systemd is PID 1 (the package's postinst starts it only then).
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls dist/package/hotplugd_*.deb)}
ok() { printf 'verify-package: ok   %s\n' "$*"; }
fail() { printf 'verify-package: FAIL %s\n' "$*" >&2; exit 1; }

if dpkg -s hotplugd >/dev/null 2>&1; then fail "hotplugd is already installed; remove it first"; fi
snapshot() {
  # Every path the package could touch, before and after.
  { find /usr/lib/hotplugd /usr/bin/hotplugd /lib/systemd/system /etc/systemd/system /etc/udev/rules.d \
    /usr/share/man/man8 /usr/share/bash-completion/completions /usr/share/doc/hotplugd /usr/share/hotplugd \
    /var/cache/hotplugd /run/hotplugd -xdev 2>/dev/null || true; } | sort
}
before=$(mktemp) after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
snapshot >"$before"

dpkg -i "$deb" >/dev/null
ok "dpkg -i $deb"
trap 'dpkg --purge hotplugd >/dev/null 2>&1 || true; rm -f "$before" "$after"' EXIT

unit=/lib/systemd/system/hotplugd.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
[ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
ok "systemd-analyze verify $unit (with the man page check)"

version=$(hotplugd --version)
[ "$version" = "hotplugd $(dpkg-query -W -f='${Version}' hotplugd)" ] || fail "hotplugd --version says '$version'"
ok "hotplugd --version: $version"

hotplugd run --help | grep -q '^Usage: hotplugd run' || fail "hotplugd run --help"
ok "hotplugd run --help"

index=/usr/share/hotplugd/example/debian-6.1.0-56-amd64
got=$(hotplugd match --modules-dir "$index" --cmdline '' --config-dir '' 'virtio:d00000001v00001AF4')
[ "$got" = virtio_net ] || fail "hotplugd match against $index says '$got'"
ok "hotplugd match --modules-dir $index virtio:d00000001v00001AF4: $got"

page=$(man -w hotplugd) || fail "man -w hotplugd"
ok "man -w hotplugd: $page"

[ "$(readlink /etc/udev/rules.d/80-drivers.rules)" = /dev/null ] || fail "udev's 80-drivers.rules is not masked"
ok "/etc/udev/rules.d/80-drivers.rules -> /dev/null"

bash -c 'source /usr/share/bash-completion/completions/hotplugd && COMP_WORDS=(hotplugd ma) COMP_CWORD=1 && _hotplugd && [ "${COMPREPLY[*]}" = match ]' \
  || fail "bash completion"
ok "bash completion: hotplugd ma<TAB> -> match"

dpkg -r hotplugd >/dev/null
ok "dpkg -r hotplugd"
dpkg --purge hotplugd >/dev/null
ok "dpkg --purge hotplugd"
snapshot >"$after"
if ! diff -u "$before" "$after"; then fail "files left behind or lost (diff above)"; fi
ok "nothing left behind ($(wc -l <"$before") paths compared)"
trap 'rm -f "$before" "$after"' EXIT
