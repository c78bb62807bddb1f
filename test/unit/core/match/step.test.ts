import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern } from '../../../../src/core/glob.js';
import { TrieBuilder } from '../../../../src/core/match/builder.js';
import { NodeStepper } from '../../../../src/core/match/step.js';
import { Trie } from '../../../../src/core/match/trie.js';

describe('NodeStepper', () => {
  it('opens a group from a literal node with its wildcard edges and star closure, sorted and without repeats', () => {
    const classes = new ClassTable();
    const b = new TrieBuilder();
    for (const p of ['x*a', 'x?', 'x[ab]', 'xa', 'x**b']) b.insert(compilePattern(p, classes)!, 0);
    const trie = new Trie(b.layout());
    const stepper = new NodeStepper(trie, classes);
    const x = trie.literalChild(0, 'x'.charCodeAt(0));
    const n = stepper.open(x, 'a'.charCodeAt(0));
    const set = [...stepper.scratch.subarray(0, n)];
    expect(set).toEqual([...new Set(set)].sort((p, q) => p - q));
    // Not the literal child 'xa' (the literal walk's), but '?', '[ab]', 'x*a''s a, and the stars that stay alive.
    expect(set).not.toContain(trie.literalChild(x, 'a'.charCodeAt(0)));
    const values: number[] = [];
    for (const node of set) trie.appendValues(node, values);
    expect(values).toHaveLength(3); // x*a, x?, x[ab] accept "xa"
  });

  it('steps a node set on a byte, keeping `*` nodes alive', () => {
    const classes = new ClassTable();
    const b = new TrieBuilder();
    b.insert(compilePattern('q*z', classes)!, 0);
    const trie = new Trie(b.layout());
    const stepper = new NodeStepper(trie, classes);
    const star = trie.starClosure(trie.literalChild(0, 'q'.charCodeAt(0)))[0]!;
    let n = stepper.step(Uint32Array.of(star), 0, 1, 'y'.charCodeAt(0));
    expect([...stepper.scratch.subarray(0, n)]).toEqual([star]);
    n = stepper.step(Uint32Array.of(star), 0, 1, 'z'.charCodeAt(0));
    expect([...stepper.scratch.subarray(0, n)]).toEqual([star, star + 1]);
  });
});
