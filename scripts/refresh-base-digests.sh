#!/bin/sh
# Pin the Dockerfile's base images to the digests their registry serves now.
#
#   scripts/refresh-base-digests.sh [--dry-run] [DOCKERFILE]
#
# For each `FROM NAME:TAG@sha256:OLD` line, asks the registry for TAG's
# digest (the multi-platform index, as `docker pull NAME:TAG` resolves it)
# with the first tool found: `docker buildx imagetools inspect`, `crane
# digest`, or `skopeo inspect --raw` (the sha256 of the raw manifest). Then
# rewrites those FROM lines, and the org.opencontainers.image.base.digest
# label that names the same digest, in place. --dry-run prints what would
# change. Needs a reachable registry (Docker Hub for node and debian).
set -eu
dry=
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
file=${1:-$(dirname "$0")/../Dockerfile}
[ -f "$file" ] || { echo "refresh-base-digests: $file: no such file" >&2; exit 2; }

resolve() {
  if docker buildx version >/dev/null 2>&1; then
    docker buildx imagetools inspect --format '{{.Manifest.Digest}}' "$1"
  elif command -v crane >/dev/null 2>&1; then
    crane digest "$1"
  elif command -v skopeo >/dev/null 2>&1; then
    echo "sha256:$(skopeo inspect --raw "docker://$1" | sha256sum | cut -d' ' -f1)"
  else
    echo "refresh-base-digests: needs docker buildx, crane or skopeo" >&2
    return 2
  fi
}

changed=0
for ref in $(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]*@sha256:[0-9a-f]\{64\}\).*/\1/p' "$file"); do
  image=${ref%@*}
  old=${ref#*@}
  new=$(resolve "$image")
  case $new in
    sha256:????????????????????????????????????????????????????????????????) ;;
    *) echo "refresh-base-digests: $image: the registry answered \"$new\", not a sha256 digest" >&2; exit 1 ;;
  esac
  if [ "$new" = "$old" ]; then
    echo "$image: $old (current)"
    continue
  fi
  echo "$image: $old -> $new"
  changed=1
  if [ -z "$dry" ]; then
    # The FROM line and any label naming the old digest.
    sed -i "s|$image@$old|$image@$new|; s|\"$old\"|\"$new\"|" "$file"
  fi
done
[ -n "$dry" ] && [ "$changed" = 1 ] && echo "(dry run: $file not changed)"
exit 0
