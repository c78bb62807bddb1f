/**
 * The one assembler of index parts, and the checks every index source shares.
 *
 * A reader (depmod's text: from-depmod.ts; a .ko tree's modinfo:
 * from-modinfo.ts) describes what it found as an `IndexSource`; `assembleIndex`
 * turns that into `IndexParts` the same way for both, in one order:
 *   1. loadable modules, in the source's order;
 *   2. their dependencies (a dependency no module provides keeps its path,
 *      or none: loading it then fails with a record);
 *   3. modules.builtin: a name there is built in, also over a loadable entry
 *      of the same name (warned) — the only source of built-in names, as in
 *      libkmod (kmod_lookup_alias_is_builtin reads modules.builtin.bin);
 *   4. alias patterns (modules.alias or each module's `alias=`), then the
 *      built-in aliases (the `alias=` entries of modules.builtin.modinfo,
 *      which depmod turns into modules.builtin.alias.bin); a name only an
 *      alias knows is added without a path. modules.builtin.modinfo's other
 *      entries name no module: it also lists the parameters of built-in code
 *      that is not a module (apparmor, random, printk, ...), and libkmod
 *      answers a lookup of such a name with nothing. A module that only the
 *      built-in aliases name (debugfs for fs-debugfs) stays without a path
 *      here; the index treats it as built in when found by such an alias
 *      (ModuleIndex.isBuiltin), as libkmod does;
 *   5. softdeps, last.
 * A meta.pb is decoded already assembled (meta/read.ts); it goes through the
 * same checks (`checkDecodedModules`).
 */
import { HotplugError } from '../../errors.js';
import { moduleNameFromPath } from '../module-file.js';
import { ClassTable } from '../glob.js';
import { AliasCompiler, compileAliases } from './alias-compiler.js';
import { type AliasLine, type LineWarning, type SoftdepSpec } from './depmod.js';
import { type CompiledAliases, type IndexParts, type ModuleRecord } from './module-index.js';
import { checkModulePath, checkNoCycles, modulePathProblem } from './module-path.js';

/** A loadable module as a reader found it. */
export interface LoadableModule {
  name: string;
  /** Relative to the module directory (or absolute where depmod allows it). */
  path: string;
  /** Nearest first: module paths or names, as the source's `depsBy` says. */
  deps: readonly string[];
  /** A line number for warnings (0: none). */
  line: number;
}

/** Alias lines as a reader streams them to the compiler. */
export interface AliasStream {
  file: string;
  /** Bytes of pattern text expected (sizes the trie up front). */
  sizeHint: number;
  forEach: (each: (pattern: string, module: string) => void) => void;
}

/**
 * What one reader hands the assembler. Each callback is called once, in the
 * order of the file comment, so that a reader's parse warnings keep their
 * place among the assembler's own.
 */
export interface IndexSource {
  /** Where the index came from (a directory), for messages. */
  source: string;
  /** Warnings so far; the assembler appends its own. */
  warnings: LineWarning[];
  /** The file dependency problems are reported against. */
  depFile: string;
  /**
   * 'path' (modules.dep): a dependency is the path of a module file, found by
   * that path, else by the name in it, else added with that path. 'name'
   * (modinfo `depends=`): found by name, else added without a path.
   */
  depsBy: 'path' | 'name';
  loadable: () => LoadableModule[];
  builtin?: (() => { file: string; names: readonly string[] } | undefined) | undefined;
  /** The `alias=` entries of modules.builtin.modinfo. */
  builtinModinfo?: (() => { file: string; aliases: AliasLine[] } | undefined) | undefined;
  aliases: AliasStream;
  softdeps?: (() => Map<string, SoftdepSpec>) | undefined;
  /** modules.symbols as alias lines, read only when a `symbol:` query arrives (undefined: there is none). */
  symbols?: (() => AliasStream | undefined) | undefined;
}

/** Modules by name while an index is assembled; `add` returns the existing index for a known name. */
class ModuleTable {
  readonly modules: ModuleRecord[] = [];
  readonly byName = new Map<string, number>();

  add(name: string, path: string | null, builtin: boolean): number {
    let i = this.byName.get(name);
    if (i === undefined) {
      i = this.modules.length;
      this.modules.push({ name, path, builtin, deps: [] });
      this.byName.set(name, i);
    }
    return i;
  }

  /** Mark a module built in (modules.builtin), also when a module file provides it (warned). */
  addBuiltin(name: string, file: string, warnings: LineWarning[]): void {
    const m = this.modules[this.add(name, '', true)]!;
    if (m.builtin) return;
    if (m.path !== null) warnings.push({ file, line: 0, problem: `${name} is both built in and loadable; treated as built in` });
    m.builtin = true;
    m.path = '';
  }
}

export function assembleIndex(src: IndexSource): IndexParts {
  const { warnings } = src;
  const table = new ModuleTable();
  const { modules, byName } = table;
  // One bad entry costs that module, never the index (libkmod reads the
  // lines it can). Dependencies are checked with their module: a module whose
  // dependency is refused could not be loaded anyway.
  const byPath = src.depsBy === 'path';
  const usable = src.loadable().filter((d) => {
    const problem = (byPath ? [d.path, ...d.deps] : [d.path]).map((p) => modulePathProblem(p)).find((p) => p !== null);
    if (problem !== undefined) warnings.push({ file: src.depFile, line: d.line, problem: `${problem}; module ${d.name} skipped` });
    return problem === undefined;
  });
  const pathIndex = new Map<string, number>();
  for (const d of usable) pathIndex.set(d.path, table.add(d.name, d.path, false));
  const resolve = (dep: string): number => {
    if (!byPath) return table.add(dep, null, false);
    let i = pathIndex.get(dep);
    if (i === undefined) {
      // A dependency without a line of its own still has a path.
      const name = moduleNameFromPath(dep)!;
      i = byName.get(name) ?? table.add(name, dep, false);
      pathIndex.set(dep, i);
    }
    return i;
  };
  for (const d of usable) {
    const m = modules[byName.get(d.name)!]!;
    for (const dep of d.deps) m.deps.push(resolve(dep));
  }
  checkNoCycles(modules, src.depFile);
  const builtin = src.builtin?.();
  if (builtin !== undefined) for (const name of builtin.names) table.addBuiltin(name, builtin.file, warnings);
  const info = src.builtinModinfo?.();
  const classes = new ClassTable();
  const moduleIndex = (name: string): number => table.add(name, null, false);
  const compiler = new AliasCompiler(classes, src.aliases.file, warnings, src.aliases.sizeHint);
  src.aliases.forEach((pattern, module) => compiler.add(pattern, moduleIndex(module)));
  const aliases = compiler.finish();
  const builtinAliases = compileAliases(info?.aliases ?? [], moduleIndex, classes, info?.file ?? src.source, warnings, 256);
  const softdeps = src.softdeps?.() ?? new Map<string, SoftdepSpec>();
  const symbols = src.symbols;
  return {
    modules,
    aliases,
    builtinAliases,
    classes,
    softdeps,
    loadSymbols:
      symbols === undefined
        ? undefined
        : (): CompiledAliases => {
            const stream = symbols();
            if (stream === undefined) return compileAliases([], moduleIndex, classes, '', warnings, 16);
            const c = new AliasCompiler(classes, stream.file, warnings, stream.sizeHint);
            stream.forEach((pattern, module) => c.add(pattern, moduleIndex(module)));
            return c.finish(1024);
          },
    warnings,
    source: src.source,
  };
}

/**
 * The checks for modules decoded from an already assembled index (meta.pb):
 * a name each, paths by the one path rule (relative only), dependencies in
 * range. Throws the first problem. (The caller checks for cycles once its
 * other checks are done: checkNoCycles.) The index cache's own list is
 * checked less (meta/read.ts ownModules).
 */
export function checkDecodedModules(list: (ModuleRecord & { path: string })[], source: string): ModuleRecord[] {
  if (list.length === 0) throw new HotplugError('E_INDEX_CORRUPT', 'meta.pb lists no modules', { file: source });
  // In place (the records are the decoder's): `builtin` is an empty path.
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    if (m.name === '') throw new HotplugError('E_INDEX_CORRUPT', `module #${i} has no name`, { file: source });
    if (m.path !== '') checkModulePath(m.path, source);
    for (const dep of m.deps) {
      if (dep >= list.length) {
        throw new HotplugError('E_INDEX_DEP_RANGE', `module ${m.name} depends on index ${dep}, out of range (${list.length} modules)`, { file: source });
      }
    }
    m.builtin = m.path === '';
  }
  return list;
}

/**
 * modules.symbols for an index decoded from a file (the index cache), compiled
 * on the first `symbol:` query as assembleIndex compiles it: a module named
 * there and nowhere else is added without a file.
 */
export function symbolsLoader(
  modules: ModuleRecord[],
  classes: ClassTable,
  warnings: LineWarning[],
  symbols: () => AliasStream | undefined,
): () => CompiledAliases {
  return () => {
    const byName = new Map<string, number>();
    modules.forEach((m, i) => byName.set(m.name, i));
    const moduleIndex = (name: string): number => {
      let i = byName.get(name);
      if (i === undefined) {
        i = modules.push({ name, path: null, builtin: false, deps: [] }) - 1;
        byName.set(name, i);
      }
      return i;
    };
    const stream = symbols();
    if (stream === undefined) return compileAliases([], moduleIndex, classes, '', warnings, 16);
    const c = new AliasCompiler(classes, stream.file, warnings, stream.sizeHint);
    stream.forEach((pattern, module) => c.add(pattern, moduleIndex(module)));
    return c.finish(1024);
  };
}
