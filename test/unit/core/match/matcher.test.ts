import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern, normalizeAlias } from '../../../../src/core/glob.js';
import { Matcher } from '../../../../src/core/match/index.js';
import { glibcFnmatch, randomString, rng } from '../../../support/helpers.js';

/** libkmod's rule, straight from its definition: literal prefix, then glibc fnmatch on the rest. */
function libkmodMatches(pattern: string, key: string): boolean {
  const w = pattern.search(/[*?[]/);
  if (w < 0) return pattern === key;
  return key.startsWith(pattern.slice(0, w)) && glibcFnmatch(pattern.slice(w), key.slice(w));
}

function randomPatterns(seed: number, count: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  while (out.length < count) {
    const p = normalizeAlias(randomString(r, 'ab:*?*[a-b][!a]c', 10).replace(/\[([^\]]*)$/, '$1'));
    if (p !== null) out.push(p);
  }
  return out;
}

describe('Matcher', () => {
  it('returns exactly the patterns that libkmod would match, on random pattern sets', () => {
    for (let round = 0; round < 20; round++) {
      const patterns = randomPatterns(1000 + round, 60);
      const classes = new ClassTable();
      const entries = patterns.flatMap((p, i) => {
        const tokens = compilePattern(p, classes);
        return tokens === null ? [] : [{ tokens, value: i }];
      });
      const m = Matcher.build(entries, classes);
      const r = rng(77 + round);
      for (let q = 0; q < 300; q++) {
        const key = randomString(r, 'abc:[]!_', 9);
        const expected = patterns.map((p, i) => (libkmodMatches(p, key) ? i : -1)).filter((i) => i >= 0);
        expect(m.match(key), `key ${JSON.stringify(key)}`).toEqual(expected);
      }
    }
  });

  it('gives the same answers when its DFA cache is tiny and keeps being flushed', () => {
    const patterns = randomPatterns(4242, 200);
    const classes = new ClassTable();
    const entries = patterns.map((p, i) => ({ tokens: compilePattern(p, classes)!, value: i })).filter((e) => e.tokens !== null);
    const big = Matcher.build(entries, classes, 100000);
    const tiny = Matcher.build(entries, classes, 16);
    const r = rng(5);
    for (let q = 0; q < 2000; q++) {
      const key = randomString(r, 'abc:', 12);
      expect(tiny.match(key)).toEqual(big.match(key));
    }
    expect(tiny.stats().dfaFlushes).toBeGreaterThan(0);
    expect(tiny.stats().dfaStates).toBeLessThanOrEqual(16);
  });

  it('does not blow up on patterns made of many stars', () => {
    const classes = new ClassTable();
    const star = compilePattern('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b', classes)!;
    const m = Matcher.build([{ tokens: star, value: 0 }], classes);
    expect(m.match('a'.repeat(5000))).toEqual([]);
    expect(m.match('a'.repeat(5000) + 'b')).toEqual([0]);
  });

  it('returns every module whose pattern matches, each once', () => {
    const classes = new ClassTable();
    const entries = [
      { tokens: compilePattern('usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*', classes)!, value: 1 },
      { tokens: compilePattern('usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*', classes)!, value: 1 },
      { tokens: compilePattern('usb:v13FDp3940d0[0-2]*dc*dsc*dp*ic*isc*ip*in*', classes)!, value: 0 },
    ];
    const m = Matcher.build(entries, classes);
    expect(m.match('usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00')).toEqual([0, 1]);
  });

  it('rebuilds from its own stored arrays and byte classes (fromOwn) answering as the original; checks their shape, not every edge', () => {
    const classes = new ClassTable();
    const patterns = ['pci:v*d[0-9]*', 'usb:v1p2*', 'acpi*:PNP0303:*', 'of:N*T[Ll]*', 'x?y'];
    const m = Matcher.build(patterns.map((p, i) => ({ tokens: compilePattern(p, classes)!, value: i })), classes);
    const t = m.compiled();
    const keys = ['pci:v8086d5', 'usb:v1p2q', 'acpiX:PNP0303:', 'of:NfooTl', 'xzy', 'nothing'];
    const own = Matcher.fromOwn(t, classes, patterns.length, 64, m.byteClasses().byteClass);
    expect(own).toBeInstanceOf(Matcher);
    expect(keys.map((k) => (own as Matcher).match(k))).toEqual(keys.map((k) => m.match(k)));
    expect((own as Matcher).byteClasses()).toEqual(m.byteClasses());
    expect(Matcher.fromOwn(t, classes, patterns.length, 64, new Uint8Array(255))).toBe('byte classes are not 256 bytes');
    expect(Matcher.fromOwn({ ...t, valueStart: t.valueStart.subarray(1) }, classes, patterns.length)).toBe('array lengths disagree');
    expect(Matcher.fromOwn(t, classes, 2)).toMatch(/^value \d+ out of range$/);
    // What fromOwn leaves to the writer (and the CRC): an edge pointing backwards is refused by fromCompiled only.
    const back = { ...t, edgeTarget: t.edgeTarget.slice() };
    back.edgeTarget[3] = 0;
    expect(Matcher.fromCompiled(back, classes, patterns.length)).toBe('edge target out of range');
    expect(Matcher.fromOwn(back, classes, patterns.length)).toBeInstanceOf(Matcher);
  });
});
