#!/usr/bin/env bash
# Install the built .deb on this (throwaway) machine as an admin would, upgrade
# it, remove and purge it, and check what a user gets and that nothing the
# admin owns is touched. Prints each check.
# Usage: scripts/verify-package.sh [A.deb [B.deb]]
#   A: default dist/package/hotplugd_*.deb (and its tarball beside it);
#   B: the upgrade, default: built here from this checkout with version A+verify1
#      (every bundle chunk gets another name: the upgrade replaces them all).
# Needs root, dpkg, debhelper's init-system-helpers, systemd (systemd-analyze),
# man-db, lintian, unshare/mount, xz, zstd.
#
# Where systemd is not PID 1, the maintainer scripts' systemd part runs in a
# private mount namespace whose /run holds /run/systemd/system (what they test
# for) and with a systemctl on PATH that records its calls and answers
# is-enabled from the real enablement links: no unit is started on this host.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:-$(ls dist/package/hotplugd_*.deb)}
B=${2:-}
tarball=$(ls "$(dirname "$A")"/hotplugd-*-linux-*.tar.gz 2>/dev/null | head -n 1 || true)
ok() { printf 'verify-package: ok   %s\n' "$*"; }
fail() { printf 'verify-package: FAIL %s\n' "$*" >&2; exit 1; }

if dpkg -s hotplugd >/dev/null 2>&1; then fail "hotplugd is already installed; remove it first"; fi
work=$(mktemp -d)
# A policy-rc.d of the machine's own (container images ship one that forbids
# every start) is set aside for the check and put back afterwards.
saved_policy=
if [ -e /usr/sbin/policy-rc.d ]; then saved_policy=$work/policy-rc.d.saved; mv /usr/sbin/policy-rc.d "$saved_policy"; fi
daemon_pid=
admin_rule=/etc/udev/rules.d/80-drivers.rules
made_admin_rule=
cleanup() {
  [ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
  rm -f /usr/sbin/policy-rc.d
  [ -z "$saved_policy" ] || mv "$saved_policy" /usr/sbin/policy-rc.d
  dpkg --purge hotplugd >/dev/null 2>&1 || true
  if [ -n "$made_admin_rule" ]; then rm -f "$admin_rule"; rmdir /etc/udev/rules.d /etc/udev 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- lintian: no error, no warning that packaging/debian/hotplugd.lintian-overrides does not justify.
lint=$(lintian --pedantic -I --info "$A" 2>&1 | grep -v '^running with root privileges' || true)
bad=$(printf '%s\n' "$lint" | grep -E '^(E|W): ' || true)
[ -z "$bad" ] || fail "lintian $A: $bad"
ok "lintian --pedantic -I: no error, no un-overridden warning ($(printf '%s\n' "$lint" | grep -c '^O: ' || true) overridden)"

# --- The tarball unpacks at / of a merged-/usr system without replacing its links.
if [ -n "$tarball" ]; then
  scratch=$work/merged
  mkdir -p "$scratch/usr/lib" "$scratch/usr/bin" "$scratch/usr/sbin"
  for d in lib bin sbin; do ln -s "usr/$d" "$scratch/$d"; done
  top=$(tar -tzf "$tarball" | grep -E '^(\./)?(lib|lib64|bin|sbin)(/|$)' || true)
  [ -z "$top" ] || fail "$tarball has top-level entries: $top"
  tar -xzf "$tarball" -C "$scratch"
  for d in lib bin sbin; do [ "$(readlink "$scratch/$d")" = "usr/$d" ] || fail "tar -xzf $tarball -C / replaced /$d"; done
  [ -f "$scratch/usr/lib/systemd/system/hotplugd.service" ] || fail "$tarball: no usr/lib/systemd/system/hotplugd.service"
  ok "tar -xzf $(basename "$tarball") into a merged-/usr root: lib, bin, sbin still links; unit in /usr/lib/systemd/system"
fi

# --- The upgrade's package.
if [ -z "$B" ]; then
  va=$(dpkg-deb -f "$A" Version)
  node scripts/package.mjs --version "$va+verify1" --out "$work/b" >/dev/null 2>"$work/b.log" || { cat "$work/b.log" >&2; fail "building version $va+verify1"; }
  B=$(ls "$work"/b/hotplugd_*.deb)
fi
dpkg --compare-versions "$(dpkg-deb -f "$B" Version)" gt "$(dpkg-deb -f "$A" Version)" || fail "$B is not newer than $A"

# --- An admin's own 80-drivers.rules.
if [ -e "$admin_rule" ]; then
  admin_sum=$(sha256sum "$admin_rule")
else
  mkdir -p /etc/udev/rules.d
  printf '# admin custom rules: keep me\n' >"$admin_rule"
  made_admin_rule=1
  admin_sum=$(sha256sum "$admin_rule")
fi
admin_kept() {
  [ "$(sha256sum "$admin_rule" 2>/dev/null)" = "$admin_sum" ] && [ ! -L "$admin_rule" ] || fail "$1: $admin_rule was changed"
}

snapshot() {
  # Every path the package could touch, before and after.
  { find /usr/lib/hotplugd /usr/bin/hotplugd /lib/systemd/system /usr/lib/systemd/system /etc/systemd/system /etc/udev \
    /usr/share/man/man8 /usr/share/bash-completion/completions /usr/share/doc/hotplugd /usr/share/hotplugd \
    /usr/share/lintian/overrides /var/cache/hotplugd /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked /run/hotplugd /run/udev/rules.d -xdev 2>/dev/null || true; } | sort
}
snapshot >"$work/before"

# --- The maintainer scripts' environment: real systemd, or the namespace above.
fake=$work/fakebin
mkdir -p "$fake"
calls=$work/systemctl.calls
real_systemctl=$(command -v systemctl)
cat >"$fake/systemctl" <<EOF
#!/bin/sh
# Records the call. Offline work on unit files (deb-systemd-helper's
# "systemctl --root=/ preset", enable, disable) is the real systemctl's;
# is-enabled from the enablement links; is-active: never; the rest: nothing.
echo "systemctl \$*" >>"$calls"
for a in "\$@"; do last=\$a; done
case " \$* " in
  *" --root="*|*" preset "*|*" enable "*|*" disable "*) exec "$real_systemctl" "\$@" ;;
  *" is-enabled "*) if [ -e "/etc/systemd/system/sysinit.target.wants/\$last" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  *" is-active "*) exit 3 ;;
esac
exit 0
EOF
chmod 755 "$fake/systemctl"
pid1=$(cat /proc/1/comm)
dpkg_() {
  # dpkg as the maintainer scripts would see it under systemd.
  if [ "$pid1" = systemd ]; then
    dpkg "$@" >/dev/null
  else
    unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && PATH="$0:$PATH" exec dpkg "$@" >/dev/null' "$fake" "$@"
  fi
}
[ "$pid1" = systemd ] || ok "systemd is not PID 1 ($pid1): the maintainer scripts see a /run/systemd/system and a recording systemctl"

enabled() { [ -L /etc/systemd/system/sysinit.target.wants/hotplugd.service ]; }

# --- policy-rc.d exit 101 (an image build, a chroot): installed and enabled, not started.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
: >"$calls"
dpkg_ -i "$A"
rm -f /usr/sbin/policy-rc.d
admin_kept "dpkg -i"
enabled || fail "dpkg -i did not enable hotplugd.service"
if [ "$pid1" = systemd ]; then
  ! systemctl --quiet is-active hotplugd.service || fail "policy-rc.d 101: hotplugd.service was started"
else
  ! grep -Eq 'systemctl .*(start|restart) ' "$calls" || fail "policy-rc.d 101: $(cat "$calls")"
fi
ok "dpkg -i $(basename "$A") with policy-rc.d exit 101: enabled, not started; $admin_rule kept"

# --- What a user gets.
unit=/lib/systemd/system/hotplugd.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
[ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
ok "systemd-analyze verify $unit (with the man page check)"
grep -qx 'ExecReload=/usr/bin/hotplugd reload --control /run/hotplugd/control' "$unit" || fail "$unit: ExecReload is not the reload client"
ok "ExecReload runs the hotplugd reload client"
[ ! -e /etc/udev/rules.d/80-drivers.rules ] || [ -n "$made_admin_rule" ] || admin_kept "install"
! dpkg -L hotplugd | grep -q '^/etc/' || fail "the package ships files in /etc: $(dpkg -L hotplugd | grep '^/etc/')"
ok "nothing shipped in /etc"

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
warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
[ -z "$warn" ] || fail "man --warnings -l $page: $warn"
ok "man -w hotplugd: $page; man --warnings: none"
bash -c 'source /usr/share/bash-completion/completions/hotplugd && COMP_WORDS=(hotplugd ma) COMP_CWORD=1 && _hotplugd && [ "${COMPREPLY[*]}" = match ]' \
  || fail "bash completion"
ok "bash completion: hotplugd ma<TAB> -> match"

# --- The unit's udev mask helper: a link in /run/udev/rules.d, someone else's file kept.
rules=$work/run-udev-rules
HOTPLUGD_UDEV_RULES_DIR=$rules /usr/lib/hotplugd/udev-rule mask
[ "$(readlink "$rules/80-drivers.rules")" = /usr/lib/hotplugd/udev-mask.rules ] || fail "udev-rule mask made no link to /usr/lib/hotplugd/udev-mask.rules"
! grep -v '^#' /usr/lib/hotplugd/udev-mask.rules | grep -q . || fail "udev-mask.rules holds a rule"
HOTPLUGD_UDEV_RULES_DIR=$rules /usr/lib/hotplugd/udev-rule unmask
[ ! -e "$rules/80-drivers.rules" ] && [ ! -L "$rules/80-drivers.rules" ] || fail "udev-rule unmask left the link"
echo '# runtime rule' >"$rules/80-drivers.rules"
HOTPLUGD_UDEV_RULES_DIR=$rules /usr/lib/hotplugd/udev-rule mask
HOTPLUGD_UDEV_RULES_DIR=$rules /usr/lib/hotplugd/udev-rule unmask
[ "$(cat "$rules/80-drivers.rules")" = '# runtime rule' ] || fail "udev-rule replaced a file it did not make"
rm "$rules/80-drivers.rules"
ln -s /dev/null "$rules/80-drivers.rules" # an admin's own mask
HOTPLUGD_UDEV_RULES_DIR=$rules /usr/lib/hotplugd/udev-rule mask
HOTPLUGD_UDEV_RULES_DIR=$rules /usr/lib/hotplugd/udev-rule unmask
[ "$(readlink "$rules/80-drivers.rules")" = /dev/null ] || fail "udev-rule unmask removed an admin's mask"
ok "udev-rule mask/unmask: /run/udev/rules.d/80-drivers.rules -> /usr/lib/hotplugd/udev-mask.rules while running; a file or mask it did not make is kept"

# --- Version A's daemon, started by hand, survives the upgrade to B until it is restarted.
# A module tree with a .ko.xz and a .ko.zst (not modules: whatever kernel this is
# rejects them, after hotplugd decompressed them), a fake /sys whose devices
# appear only after the upgrade.
m=$work/modules/verify
mkdir -p "$m/kernel" "$work/sys/devices" "$work/sys/module" "$work/sys/kernel" "$work/proc" "$work/cache"
printf 'not a kernel module: hotplugd verify-package\n' >"$work/blob"
xz -c "$work/blob" >"$m/kernel/hpdxz.ko.xz"
zstd -q -c "$work/blob" >"$m/kernel/hpdzst.ko.zst"
printf 'kernel/hpdxz.ko.xz:\nkernel/hpdzst.ko.zst:\n' >"$m/modules.dep"
printf 'alias hpdverify:xz hpdxz\nalias hpdverify:zst hpdzst\n' >"$m/modules.alias"
: >"$m/modules.builtin"; : >"$m/modules.softdep"; : >"$m/modules.symbols"
printf '0\n' >"$work/sys/kernel/uevent_seqnum"
# The real /proc (the daemon finds its netlink descriptor there), plus an
# empty modules file where this kernel has none (load mode needs it).
for e in /proc/*; do ln -s "$e" "$work/proc/${e#/proc/}"; done
[ -e "$work/proc/modules" ] || : >"$work/proc/modules"
sock=$work/control
/usr/bin/hotplugd run --mode load --modules-dir "$m" --sysfs "$work/sys" --procfs "$work/proc" --cmdline '' --config-dir '' \
  --cache-dir "$work/cache" --control "$sock" --metrics-listen 127.0.0.1:0 --log-format json >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do grep -q '"msg":"coldplug"' "$work/daemon.log" && break; sleep 0.1; done
grep -q '"msg":"coldplug"' "$work/daemon.log" || fail "version A's daemon did not start: $(cat "$work/daemon.log")"
for _ in $(seq 1 100); do ls "$work"/cache/*.idx >/dev/null 2>&1 && break; sleep 0.1; done
port=$(grep -o '"url":"http://127.0.0.1:[0-9]*' "$work/daemon.log" | grep -o '[0-9]*$')
old_chunks=$(cd /usr/lib/hotplugd/dist/src/chunks && ls)
ok "version A's daemon runs (pid $daemon_pid, load mode, metrics on 127.0.0.1:$port)"

: >"$calls"
dpkg_ -i "$B"
admin_kept "upgrade"
if [ "$pid1" = systemd ]; then
  : # the guest end-to-end test checks the restart under systemd (MainPID changes)
else
  grep -q 'systemctl --quiet --system restart hotplugd.service' "$calls" || fail "upgrade: no deb-systemd-invoke restart: $(cat "$calls")"
fi
ok "dpkg -i $(basename "$B") (upgrade): the maintainer scripts restart hotplugd.service; $admin_rule kept"
gone=0
for c in $old_chunks; do [ -e "/usr/lib/hotplugd/dist/src/chunks/$c" ] || gone=$((gone + 1)); done
[ "$gone" -eq "$(echo "$old_chunks" | wc -l)" ] || fail "the upgrade kept some of A's chunks: the survival check below would prove nothing"
ok "the upgrade replaced all $gone of A's bundle chunks"

# Every path that could load code later, on A's daemon (its files are gone).
kill -0 "$daemon_pid" || fail "A's daemon died in the upgrade"
rm -f "$work"/cache/*.idx # the reload below reads depmod's files again and writes the cache again
for n in xz zst; do mkdir -p "$work/sys/devices/hpd$n"; printf 'MODALIAS=hpdverify:%s\n' "$n" >"$work/sys/devices/hpd$n/uevent"; done
hotplugd reload --control "$sock" >/dev/null || fail "reload on A's daemon after the upgrade"
hotplugd settle --control "$sock" --timeout 30 || fail "settle on A's daemon after the upgrade"
hotplugd status --control "$sock" >/dev/null || fail "status on A's daemon after the upgrade"
hotplugd why --control "$sock" hpdverify:xz >/dev/null || fail "why on A's daemon after the upgrade"
hotplugd metrics --control "$sock" | grep -q '^hotplugd_build_info' || fail "metrics on A's daemon after the upgrade"
timeout 2 hotplugd monitor --control "$sock" >"$work/monitor" 2>&1 || [ $? -eq 124 ] || fail "monitor on A's daemon: $(cat "$work/monitor")"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
grep -q '^hotplugd_build_info' <&3 || fail "HTTP metrics scrape on A's daemon after the upgrade"
exec 3<&-
for _ in $(seq 1 100); do ls "$work"/cache/*.idx >/dev/null 2>&1 && break; sleep 0.1; done
ls "$work"/cache/*.idx >/dev/null 2>&1 || fail "A's daemon wrote no index cache after the upgrade: $(tail -n 5 "$work/daemon.log")"
for mod in hpdxz hpdzst; do
  rec=$(grep "\"module\":\"$mod\"" "$work/daemon.log" | tail -n 1)
  [ -n "$rec" ] || fail "A's daemon did not try $mod: $(tail -n 5 "$work/daemon.log")"
  # The kernel refused it (any errno: ENOSYS, ENOEXEC, ...): it was decompressed first.
  printf '%s' "$rec" | grep -q '"code":"E[A-Z]*"' && ! printf '%s' "$rec" | grep -q '"code":"E_' || fail "$mod on A's daemon: $rec"
done
if grep -Eq 'ERR_MODULE_NOT_FOUND|Cannot find module' "$work/daemon.log"; then fail "A's daemon could not import: $(grep -E 'ERR_MODULE_NOT_FOUND|Cannot find module' "$work/daemon.log" | head -n 3)"; fi
kill -0 "$daemon_pid" || fail "A's daemon died"
kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=
ok "A's daemon after the upgrade: .ko.xz and .ko.zst decompressed, reload, settle, status, why, metrics, monitor, an HTTP scrape, a cache write"

# --- An admin's disable survives a reinstall (and an upgrade path's configure).
systemctl disable --quiet hotplugd.service 2>/dev/null || rm -f /etc/systemd/system/sysinit.target.wants/hotplugd.service
enabled && fail "systemctl disable left the link"
dpkg_ -i "$B"
enabled && fail "a reinstall enabled hotplugd.service again after the admin's disable"
ok "systemctl disable survives a reinstall"

# --- Remove, purge: only what the package made goes; the admin's rule stays.
: >"$calls"
dpkg_ -r hotplugd
admin_kept "dpkg -r"
[ "$pid1" = systemd ] || grep -q 'systemctl stop hotplugd.service' "$calls" || fail "dpkg -r did not stop hotplugd.service: $(cat "$calls")"
ok "dpkg -r hotplugd: stopped; $admin_rule kept"
mkdir -p /var/cache/hotplugd && printf x >/var/cache/hotplugd/debian-verify.idx
dpkg_ --purge hotplugd
admin_kept "dpkg --purge"
ok "dpkg --purge hotplugd: $admin_rule kept byte for byte"
snapshot >"$work/after"
if ! diff -u "$work/before" "$work/after"; then fail "files left behind or lost (diff above)"; fi
ok "nothing left behind ($(wc -l <"$work/before") paths compared)"
