/**
 * build-meta's .ko tree reader assembles built-in modules the way the index
 * from depmod's files does (core/index/assemble.ts): the same order, the same
 * warnings, the same built-in/loadable decision.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { indexFromDepmod } from '../../../src/core/index/from-depmod.js';
import { type IndexParts, ModuleIndex } from '../../../src/core/index/module-index.js';
import { scanModuleTree } from '../../../src/sys/modtree.js';
import { buildElf } from '../../support/elf.js';

/** A 64-bit little-endian ELF object whose only sections are a string table and .modinfo. */
function elfWithModinfo(records: string[]): Buffer {
  return buildElf(Buffer.from('\0.modinfo\0'), [{ name: 1, data: Buffer.from(records.map((r) => `${r}\0`).join('')) }]);
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Tree {
  /** Loadable modules: name -> its dependencies. */
  loadable: Record<string, string[]>;
  builtin: string[];
  /** modules.builtin.modinfo aliases: module -> pattern. */
  builtinAliases: [string, string][];
}

async function fromTree(t: Tree): Promise<IndexParts> {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-modtree-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'kernel'));
  for (const [name, deps] of Object.entries(t.loadable)) {
    writeFileSync(join(dir, 'kernel', `${name}.ko`), elfWithModinfo([`name=${name}`, `depends=${deps.join(',')}`]));
  }
  writeFileSync(join(dir, 'modules.builtin'), t.builtin.map((n) => `kernel/${n}.ko\n`).join(''));
  writeFileSync(join(dir, 'modules.builtin.modinfo'), t.builtinAliases.map(([m, a]) => `${m}.alias=${a}\0`).join(''));
  return (await scanModuleTree(dir)).parts;
}

function fromDepmod(t: Tree): IndexParts {
  return indexFromDepmod({
    dir: '/depmod',
    alias: '',
    dep: Object.entries(t.loadable)
      .map(([name, deps]) => `kernel/${name}.ko:${deps.map((d) => ` kernel/${d}.ko`).join('')}\n`)
      .join(''),
    builtin: t.builtin.map((n) => `kernel/${n}.ko\n`).join(''),
    builtinModinfo: t.builtinAliases.map(([m, a]) => `${m}.alias=${a}\0`).join(''),
  });
}

/** What an index says about its modules (those with a file or built in), in index order, and its warnings without file names. */
function shape(p: IndexParts): { modules: string[]; problems: string[] } {
  const index = new ModuleIndex(p);
  return {
    modules: p.modules.filter((m) => m.path !== null || index.isBuiltin(m.name)).map((m) => `${m.name}:${index.isBuiltin(m.name) ? 'builtin' : 'loadable'}`),
    problems: p.warnings.map((w) => w.problem),
  };
}

describe('the .ko tree reader (build-meta)', () => {
  it('keeps a module whose .ko it read loadable when only modules.builtin.modinfo names it, as depmod and kmod do', async () => {
    const tree: Tree = { loadable: { a: [] }, builtin: [], builtinAliases: [['a', 'acpi*:ABC0001:*']] };
    const parts = await fromTree(tree);
    expect(shape(parts)).toEqual({ modules: ['a:loadable'], problems: [] });
    expect(shape(parts)).toEqual(shape(fromDepmod(tree)));
  });

  it('treats a module named in modules.builtin as built in over its .ko, with the same warning as from depmod files', async () => {
    const tree: Tree = { loadable: { a: [] }, builtin: ['a'], builtinAliases: [] };
    const parts = await fromTree(tree);
    expect(shape(parts)).toEqual({ modules: ['a:builtin'], problems: ['a is both built in and loadable; treated as built in'] });
    expect(shape(parts)).toEqual(shape(fromDepmod(tree)));
  });

  it('orders built-in modules as the index from depmod files does: modules.builtin, then those only a built-in alias names', async () => {
    const tree: Tree = { loadable: { a: [], b: ['a'] }, builtin: ['z', 'y'], builtinAliases: [['x', 'pci:v1*'], ['z', 'pci:v2*']] };
    const parts = await fromTree(tree);
    expect(shape(parts).modules).toEqual(['a:loadable', 'b:loadable', 'z:builtin', 'y:builtin', 'x:builtin']);
    expect(shape(parts)).toEqual(shape(fromDepmod(tree)));
  });

  it('makes a dependency that no file provides but a built-in alias names built in, without a warning', async () => {
    const parts = await fromTree({ loadable: { a: ['x'] }, builtin: [], builtinAliases: [['x', 'pci:v1*']] });
    expect(shape(parts)).toEqual({ modules: ['a:loadable', 'x:builtin'], problems: [] });
    expect(parts.modules[0]!.deps).toEqual([1]);
  });
});
