#!/bin/sh
# Fetch a Debian kernel package from the Debian registry, unpack it and run
# depmod, cached outside git. Prints the unpacked root (ROOT/lib/modules/ABI).
#   scripts/fetch-kernel.sh [ABI]      default ABI: 6.1.0-56-amd64
# If that ABI is no longer served, the newest linux-image-6.1.0-*-amd64 is used
# (a notice goes to stderr). Needs apt-get, dpkg and depmod (Debian's kmod).
set -eu
ABI=${1:-6.1.0-56-amd64}
CACHE=${HOTPLUGD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hotplugd}
mkdir -p "$CACHE"
if ! apt-cache show "linux-image-$ABI" >/dev/null 2>&1; then
  NEWEST=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -n 1)
  [ -n "$NEWEST" ] || { echo "fetch-kernel: no linux-image-6.1.0-*-amd64 in apt (run apt-get update)" >&2; exit 111; }
  echo "fetch-kernel: linux-image-$ABI is not served; using $NEWEST" >&2
  ABI=${NEWEST#linux-image-}
fi
DIR="$CACHE/$ABI"
if [ ! -f "$DIR/.done" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  (cd "$DIR" && apt-get download "linux-image-$ABI" >&2 2>/dev/null || (cd "$DIR" && apt-get download "linux-image-$ABI" >&2))
  dpkg -x "$DIR"/linux-image-*.deb "$DIR/root"
  depmod -b "$DIR/root" "$ABI"
  rm -f "$DIR"/linux-image-*.deb
  touch "$DIR/.done"
fi
echo "$DIR/root"
