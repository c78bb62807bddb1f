import { describe, expect, it } from 'vitest';
import { growTo, lowerBound, sortUnique } from '../../../../src/core/match/arrays.js';

describe('lowerBound', () => {
  it('finds the first element not below the key, within the given range only', () => {
    const a = Uint32Array.of(1, 3, 3, 7, 9);
    expect(lowerBound(a, 0, 5, 3)).toBe(1);
    expect(lowerBound(a, 0, 5, 4)).toBe(3);
    expect(lowerBound(a, 0, 5, 10)).toBe(5);
    expect(lowerBound(a, 0, 5, 0)).toBe(0);
    expect(lowerBound(a, 2, 4, 1)).toBe(2);
    expect(lowerBound(a, 0, 3, 9)).toBe(3);
  });
});

describe('growTo', () => {
  it('at least doubles, reaches the asked size and keeps the contents', () => {
    const a = Uint32Array.of(5, 6);
    expect([...growTo(a, 3)]).toEqual([5, 6, 0, 0]);
    expect(growTo(a, 9).length).toBe(9);
    expect(growTo(new Uint32Array(0), 1).length).toBe(1);
  });
});

describe('sortUnique', () => {
  it('sorts numerically and drops repeats in place', () => {
    const xs = [10, 2, 10, 1, 2];
    expect(sortUnique(xs)).toBe(xs);
    expect(xs).toEqual([1, 2, 10]);
  });
});
