import { describe, expect, it } from 'vitest';
import { type ModuleRecord } from '../../../../src/core/index/module-index.js';
import { checkNoCycles } from '../../../../src/core/index/module-path.js';
import { HotplugError } from '../../../../src/errors.js';

const mods = (deps: number[][]): ModuleRecord[] => deps.map((d, i) => ({ name: `m${i}`, path: `m${i}.ko`, builtin: false, deps: d }));

function problem(modules: ModuleRecord[]): string | null {
  try {
    checkNoCycles(modules, 'idx');
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(HotplugError);
    expect((e as HotplugError).code).toBe('E_INDEX_DEP_CYCLE');
    return (e as HotplugError).message;
  }
}

describe('checkNoCycles', () => {
  it('accepts shared dependencies (a diamond) and modules without any', () => {
    expect(problem(mods([[1, 2], [3], [3], [], []]))).toBeNull();
  });

  it('names the modules on the cycle, from where it closes', () => {
    expect(problem(mods([[1], [2], [3], [1]]))).toBe('idx: dependency cycle: m1 -> m2 -> m3 -> m1');
    expect(problem(mods([[], [1]]))).toBe('idx: dependency cycle: m1 -> m1');
  });

  it('walks a 100,000-module chain without recursion, and finds the cycle that closes it', () => {
    const chain = Array.from({ length: 100_000 }, (_, i) => (i + 1 < 100_000 ? [i + 1] : []));
    expect(problem(mods(chain))).toBeNull();
    chain[99_999] = [0];
    expect(problem(mods(chain))).toMatch(/^idx: dependency cycle: m0 -> m1 -> .* -> m99999 -> m0$/);
  });
});
