import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern, normalizeAlias, tokensMatch } from '../../../src/core/glob.js';
import { glibcFnmatch, randomString, rng } from '../../support/helpers.js';

describe('normalizeAlias', () => {
  it('maps dashes to underscores outside brackets only', () => {
    expect(normalizeAlias('usb-storage')).toBe('usb_storage');
    expect(normalizeAlias('a-[0-9]-b')).toBe('a_[0-9]_b');
  });

  it('rejects a closing bracket outside brackets and an unclosed bracket, as libkmod does', () => {
    expect(normalizeAlias('foo]')).toBeNull();
    expect(normalizeAlias('foo[ab')).toBeNull();
    expect(normalizeAlias('[a]]')).toBeNull();
  });
});

describe('compilePattern', () => {
  it('keeps the part before the first wildcard literal, backslash included (libkmod trie walk)', () => {
    const classes = new ClassTable();
    const t = compilePattern('a\\b*', classes)!;
    expect(tokensMatch(t, 'a\\bxyz', classes)).toBe(true);
    expect(tokensMatch(t, 'abxyz', classes)).toBe(false);
  });

  it('understands multi-range brackets that real kernels use', () => {
    const classes = new ClassTable();
    const t = compilePattern('usb:v0D96p5200d00[1-9A-E]*', classes)!;
    expect(tokensMatch(t, 'usb:v0D96p5200d00Bxx', classes)).toBe(true);
    expect(tokensMatch(t, 'usb:v0D96p5200d00Fxx', classes)).toBe(false);
    expect(tokensMatch(t, 'usb:v0D96p5200d000xx', classes)).toBe(false);
  });

  it('never matches with a trailing backslash after a wildcard', () => {
    expect(compilePattern('a*\\', new ClassTable())).toBeNull();
  });
});

describe('fnmatch semantics against glibc', () => {
  it('agrees with glibc fnmatch(3) on 30,000 random patterns and strings', () => {
    const r = rng(12345);
    const disagreements: string[] = [];
    for (let i = 0; i < 30000; i++) {
      const pattern = randomString(r, 'ab[]!^-\\*?:c', 10);
      const key = randomString(r, 'ab[]!^-\\:c', 8);
      const classes = new ClassTable();
      const tokens = compilePattern(pattern, classes, false);
      const ours = tokens !== null && tokensMatch(tokens, key, classes);
      if (ours !== glibcFnmatch(pattern, key)) disagreements.push(`${JSON.stringify(pattern)} vs ${JSON.stringify(key)}: ours=${ours}`);
    }
    expect(disagreements).toEqual([]);
  });
});
