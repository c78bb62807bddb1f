import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern } from '../../../../src/core/glob.js';
import { TrieBuilder } from '../../../../src/core/match/builder.js';

describe('TrieBuilder', () => {
  it('shares prefixes, numbers nodes in preorder and keeps each node\'s values sorted and unique', () => {
    const b = new TrieBuilder();
    b.insert('ab', 5);
    b.insert('ac', 1);
    b.insert('ab', 2);
    b.insert('ab', 5);
    const t = b.layout();
    // root -a-> 1 -b-> 2, 1 -c-> 3
    expect([...t.edgeStart]).toEqual([0, 1, 3, 3, 3]);
    expect([...t.edgeTarget]).toEqual([1, 2, 3]);
    expect(String.fromCharCode(...t.edgeToken)).toBe('abc');
    expect([...t.valueStart]).toEqual([0, 0, 0, 2, 3]);
    expect([...t.values]).toEqual([2, 5, 1]);
  });

  it('sorts a node\'s edges by token whatever the insertion order (literals, then wildcards)', () => {
    const classes = new ClassTable();
    const b = new TrieBuilder();
    for (const p of ['x[ab]', 'x*', 'x?', 'xz', 'xa']) b.insert(compilePattern(p, classes)!, 0);
    const t = b.layout();
    const x = t.edgeTarget[0]!;
    const tokens = [...t.edgeToken.subarray(t.edgeStart[x], t.edgeStart[x + 1])];
    expect(tokens).toEqual([...tokens].sort((p, q) => p - q));
    expect(tokens).toHaveLength(5);
  });

  it('grows past its first allocation', () => {
    const b = new TrieBuilder(1);
    for (let i = 0; i < 5000; i++) b.insert(`k${i}`, i);
    const m = b.finish(new ClassTable());
    expect(m.patternCount()).toBe(5000);
    expect(m.match('k4321')).toEqual([4321]);
  });
});
