import { describe, expect, it } from 'vitest';
import { TrieBuilder } from '../../../../src/core/match/builder.js';
import { DfaCache, hashSet } from '../../../../src/core/match/dfa-cache.js';
import { Trie } from '../../../../src/core/match/trie.js';

function cache(maxStates: number): DfaCache {
  const b = new TrieBuilder();
  for (let i = 0; i < 40; i++) b.insert(`p${i}`, i);
  return new DfaCache(new Trie(b.layout()), 3, maxStates);
}

describe('DfaCache', () => {
  it('interns equal node sets as one state, with the empty set as state 0', () => {
    const c = cache(64);
    expect(c.intern(new Uint32Array(0))).toBe(0);
    const s = c.intern(Uint32Array.of(2, 5));
    expect(c.intern(Uint32Array.of(2, 5))).toBe(s);
    expect(c.intern(Uint32Array.of(2, 6))).not.toBe(s);
    expect(c.stateCount).toBe(3);
  });

  it('answers the values of a state\'s nodes, ascending and unique', () => {
    const b = new TrieBuilder();
    b.insert('a', 3);
    b.insert('b', 1);
    b.insert('a', 1);
    const c = new DfaCache(new Trie(b.layout()), 3, 64); // nodes: root 0, 'a' 1, 'b' 2
    expect(c.accept(c.intern(Uint32Array.of(1, 2)))).toEqual([1, 3]);
    expect(c.accept(0)).toEqual([]);
  });

  it('says it is full at maxStates and keeps only the dead state after a reset', () => {
    const c = cache(16);
    for (let i = 1; c.stateCount < 16; i++) c.intern(Uint32Array.of(i));
    expect(c.full()).toBe(true);
    c.trans[5] = 1;
    c.reset();
    expect(c.full()).toBe(false);
    expect(c.stateCount).toBe(1);
    expect(c.trans[5]).toBe(-1);
  });

  it('admits a set the second time its hash is seen, not the first', () => {
    const c = cache(64);
    const h = hashSet(Uint32Array.of(7, 8, 9));
    expect(c.admit(h)).toBe(false);
    expect(c.admit(h)).toBe(true);
  });
});
