/**
 * Small array facts the matcher's files share: the byte alphabet, the one
 * way a typed array grows, the one binary search over sorted edge tokens, and
 * the sorted, duplicate-free value lists every lookup returns.
 */

/** Input bytes are 0..255; tokens below this are literal bytes (glob.ts puts wildcards above). */
export const BYTE_ALPHABET = 256;

/** The empty answer, shared (callers never mutate an answer). */
export const EMPTY: readonly number[] = Object.freeze([]);

/**
 * A copy of `a` with room for at least `min` elements, at least twice as
 * long: growing by doubling keeps appends amortised O(1).
 */
export function growTo(a: Uint32Array, min: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(Math.max(min, a.length * 2));
  b.set(a);
  return b;
}

/** The first index in sorted `a[lo..hi)` whose element is >= `x` (`hi` when none is). */
export function lowerBound(a: Uint32Array, lo: number, hi: number, x: number): number {
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (a[m]! < x) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** Sorts `xs` ascending and drops repeats, in place; returns `xs`. */
export function sortUnique(xs: number[]): number[] {
  xs.sort((a, b) => a - b);
  let w = 0;
  for (let i = 0; i < xs.length; i++) if (i === 0 || xs[i] !== xs[i - 1]) xs[w++] = xs[i]!;
  xs.length = w;
  return xs;
}
