import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern } from '../../../../src/core/glob.js';
import { TrieBuilder } from '../../../../src/core/match/builder.js';
import { type CompiledTrie, Trie, validateTrie } from '../../../../src/core/match/trie.js';

function layoutOf(patterns: string[], classes = new ClassTable()): { t: ReturnType<TrieBuilder['layout']>; classes: ClassTable } {
  const b = new TrieBuilder();
  patterns.forEach((p, i) => b.insert(compilePattern(p, classes)!, i));
  return { t: b.layout(), classes };
}

/** A copy whose arrays the test may damage. */
function copy(t: CompiledTrie): CompiledTrie {
  return {
    edgeStart: t.edgeStart.slice(),
    edgeToken: t.edgeToken.slice(),
    edgeTarget: t.edgeTarget.slice(),
    isStar: t.isStar.slice(),
    valueStart: t.valueStart.slice(),
    values: t.values.slice(),
  };
}

describe('validateTrie', () => {
  it('accepts what TrieBuilder lays out', () => {
    const { t, classes } = layoutOf(['pci:v*d[0-9]*', 'usb:v1p2', 'acpi*:PNP0303:*']);
    const used = validateTrie(t, classes, 3);
    expect(used).toBeInstanceOf(Uint8Array);
    // The tokens it found on its way: the literal bytes, `*` (257) and the one bracket set (258).
    const tokens = [...(used as Uint8Array)].flatMap((u, tok) => (u === 1 ? [tok] : []));
    expect(tokens.filter((tok) => tok < 256).map((c) => String.fromCharCode(c)).join('')).toBe('0123:NPabcdipsuv');
    expect(tokens.filter((tok) => tok >= 256)).toEqual([257, 258]);
  });

  it('names the problem in damaged arrays instead of accepting them', () => {
    const { t, classes } = layoutOf(['ab*c', 'ab?d', 'x']);
    const cases: [string, (d: CompiledTrie) => void][] = [
      ['no nodes', (d) => (d.isStar = new Uint8Array(0))],
      ['array lengths disagree', (d) => (d.valueStart = d.valueStart.subarray(1))],
      ['edge arrays disagree', (d) => (d.edgeTarget = d.edgeTarget.subarray(1))],
      ['value arrays disagree', (d) => (d.values = d.values.subarray(1))],
      ['edge target out of range', (d) => (d.edgeTarget[1] = 0)],
      ['edges not sorted', (d) => d.edgeToken.subarray(0, 2).reverse()],
      ['value 3 out of range', (d) => (d.values[0] = 3)],
      ['token 999 out of range', (d) => (d.edgeToken[d.edgeToken.length - 1] = 999)],
      ['star flags disagree', (d) => (d.isStar[d.isStar.indexOf(1)] = 0)],
    ];
    for (const [problem, damage] of cases) {
      const d = copy(t);
      damage(d);
      expect(validateTrie(d, classes, 3), problem).toBe(problem);
    }
  });

  it('refuses an edge offset far past the arrays without walking to it', () => {
    const { t, classes } = layoutOf(['ab', 'ac']);
    const d = copy(t);
    d.edgeStart[1] = 0xffffffff;
    expect(validateTrie(d, classes, 2)).toBe('edge offsets out of range');
  });
});

describe('Trie', () => {
  it('walks literal children, star closures and node values', () => {
    const classes = new ClassTable();
    const { t } = layoutOf(['ab', 'a**', 'ab'], classes);
    const trie = new Trie(t);
    const a = trie.literalChild(0, 'a'.charCodeAt(0));
    const ab = trie.literalChild(a, 'b'.charCodeAt(0));
    expect(trie.literalChild(a, 'z'.charCodeAt(0))).toBe(-1);
    const closure = trie.starClosure(a);
    expect(closure).toHaveLength(2);
    const values: number[] = [];
    trie.appendValues(ab, values);
    trie.appendValues(closure[1]!, values);
    expect(values).toEqual([0, 2, 1]);
    expect(trie.valueCount(closure[0]!)).toBe(0);
  });

  it('finds the injection points: the literal-path nodes a wildcard, ? or bracket edge leaves', () => {
    const { t } = layoutOf(['pci:v*', 'pci:v0000*d?', 'usb:[ab]x', 'plain', '*']);
    const trie = new Trie(t);
    const at = (path: string): number => [...path].reduce((n, ch) => trie.literalChild(n, ch.charCodeAt(0)), 0);
    expect(['', 'pci:v', 'pci:v0000', 'usb:'].map((p) => trie.opensWild(at(p)))).toEqual([true, true, true, true]);
    expect(['p', 'pci:', 'pci:v0', 'plain', 'usb'].map((p) => trie.opensWild(at(p)))).toEqual([false, false, false, false, false]);
  });

  it('walks a 100,000-token path without recursion', () => {
    const b = new TrieBuilder();
    b.insert('a'.repeat(100_000), 0);
    const trie = new Trie(b.layout());
    let deepest = 0;
    trie.walkPaths(trie.edgesFrom(0, 0), (_path, depth) => (deepest = Math.max(deepest, depth)));
    expect(deepest).toBe(100_000);
  });
});
