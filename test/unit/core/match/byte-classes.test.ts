import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern } from '../../../../src/core/glob.js';
import { computeByteClasses } from '../../../../src/core/match/byte-classes.js';

const byte = (s: string): number => s.charCodeAt(0);

describe('computeByteClasses', () => {
  it('gives each literal byte its own class and groups the others by bracket membership', () => {
    const classes = new ClassTable();
    const tokens = ['a[0-4]', 'b[3-9]', 'c*'].map((p) => compilePattern(p, classes)!).join('');
    const { byteClass, count } = computeByteClasses(Uint32Array.from(tokens, (ch) => ch.charCodeAt(0)), classes);
    const cls = (s: string): number => byteClass[byte(s)]!;
    expect(new Set([cls('a'), cls('b'), cls('c')]).size).toBe(3);
    expect(cls('0')).toBe(cls('2')); // in [0-4] only
    expect(cls('3')).toBe(cls('4')); // in both
    expect(cls('5')).toBe(cls('9')); // in [3-9] only
    expect(new Set([cls('0'), cls('3'), cls('5'), cls('z')]).size).toBe(4);
    expect(cls('z')).toBe(byteClass[255]);
    // a, b, c, [0-4] only, both, [3-9] only, neither
    expect(count).toBe(7);
  });
});
