/** Shared test helpers: fixture paths and a glibc fnmatch oracle. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

export const FIXTURE_ABI = '6.1.0-56-amd64';
export const FIXTURE_DIR = fileURLToPath(new URL(`../fixtures/debian-${FIXTURE_ABI}`, import.meta.url));

/** Lines of a fixture file (without the trailing empty line). */
export function fixtureLines(name: string): string[] {
  const text = readFileSync(`${FIXTURE_DIR}/${name}`, 'latin1');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

let fnmatchFn: ((p: string, s: string, flags: number) => number) | undefined;
/** glibc's own fnmatch(3), through koffi: the reference for pattern semantics. */
export function glibcFnmatch(pattern: string, key: string): boolean {
  fnmatchFn ??= koffi.load('libc.so.6').func('int fnmatch(const char *pattern, const char *string, int flags)') as (
    p: string,
    s: string,
    flags: number,
  ) => number;
  return fnmatchFn(pattern, key, 0) === 0;
}

/** A small deterministic PRNG (xorshift32) for reproducible random tests. */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** A random string over an alphabet. */
export function randomString(r: (n: number) => number, alphabet: string, maxLen: number): string {
  let out = '';
  const n = r(maxLen + 1);
  for (let i = 0; i < n; i++) out += alphabet[r(alphabet.length)];
  return out;
}
