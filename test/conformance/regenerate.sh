#!/bin/sh
# Regenerate the conformance fixture from a real Debian kernel: its depmod text
# files, the query corpus, and libkmod's answers (the golden file).
#   test/conformance/regenerate.sh [ABI]
# Needs: apt-get, dpkg, depmod and libkmod-dev (Debian's kmod), gcc.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$("$HERE/../../scripts/fetch-kernel.sh" "${1:-6.1.0-56-amd64}")
ABI=$(ls "$ROOT/lib/modules")
MODDIR="$ROOT/lib/modules/$ABI"
OUT="$HERE/../fixtures/debian-$ABI"
mkdir -p "$OUT"
for f in modules.alias modules.dep modules.builtin modules.softdep modules.builtin.modinfo modules.symbols; do
  cp "$MODDIR/$f" "$OUT/$f"
done
gcc -O2 -Wall -o "$HERE/kmod-lookup" "$HERE/kmod-lookup.c" -lkmod
node "$HERE/make-corpus.mjs" "$MODDIR" > "$OUT/corpus.txt"
"$HERE/kmod-lookup" "$MODDIR" < "$OUT/corpus.txt" > "$OUT/golden.txt"
rm -f "$HERE/kmod-lookup"
echo "regenerated $OUT: $(wc -l < "$OUT/corpus.txt") queries, answers from $(dpkg-query -W -f='libkmod ${Version}' libkmod2 2>/dev/null || echo libkmod)"
