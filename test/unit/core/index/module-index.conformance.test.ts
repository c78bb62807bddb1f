/**
 * The full alias set of a real Debian kernel (test/fixtures, made by
 * test/conformance/regenerate.sh) and a 55,000-query corpus, answered by
 * libkmod itself: hotplugd must give the same module set for every query.
 */
import { describe, expect, it } from 'vitest';
import { loadIndex } from '../../../../src/sys/indexfs.js';
import { FIXTURE_DIR, fixtureLines } from '../../../support/helpers.js';

describe('conformance with libkmod on Debian 6.1', () => {
  const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
  const corpus = fixtureLines('corpus.txt');
  const golden = fixtureLines('golden.txt');

  it('has a golden answer for every query of a corpus of at least 20,000', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(20000);
    expect(golden.length).toBe(corpus.length);
  });

  it('loads the whole alias set without skipping a line', () => {
    expect(index.aliasCount).toBeGreaterThan(26000);
    expect(index.warnings).toEqual([]);
  });

  it('agrees with libkmod on the set of modules for every query', () => {
    const disagreements: string[] = [];
    for (let i = 0; i < corpus.length; i++) {
      const query = corpus[i]!;
      const [gq, names = ''] = golden[i]!.split('\t');
      expect(gq).toBe(query);
      const expected = names.split(' ').filter((n) => n !== '').sort();
      const ours = [...index.lookup(query).names].sort();
      if (ours.join(' ') !== expected.join(' ')) {
        disagreements.push(`${JSON.stringify(query.slice(0, 120))}: libkmod [${expected.join(' ')}] hotplugd [${ours.join(' ')}]`);
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('covers every kind of answer: matches, misses, several modules, symbols and names', () => {
    const kinds = new Set(corpus.slice(0, 60000).map((q) => index.lookup(q).source));
    expect([...kinds].sort()).toEqual(expect.arrayContaining(['alias', 'builtin-alias', 'name', 'none', 'symbol']));
    expect(golden.some((l) => (l.split('\t')[1] ?? '').includes(' '))).toBe(true);
  });
});
