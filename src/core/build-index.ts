/**
 * Index parts from depmod's text files, and the checks every index source
 * shares (paths inside the module directory, no dependency cycles).
 */
import { HotplugError } from '../errors.js';
import {
  type AliasLine,
  type LineWarning,
  forEachAlias,
  parseBuiltinFile,
  parseBuiltinModinfo,
  parseDepFile,
  parseSoftdepFile,
  moduleNameFromPath,
} from './depmod.js';
import { ClassTable } from './glob.js';
import { AliasCompiler, compileAliases, type IndexParts, type ModuleRecord } from './index.js';

export interface DepmodTexts {
  /** Directory the texts came from, for messages. */
  dir: string;
  alias: string;
  dep: string;
  builtin?: string | undefined;
  softdep?: string | undefined;
  builtinModinfo?: string | undefined;
  /** modules.symbols, read on demand. */
  symbols?: (() => string | undefined) | undefined;
}

const DOTDOT = /(^|\/)\.\.(\/|$)/;

/**
 * The one rule for module paths from any index (depmod's modules.dep, meta.pb)
 * and for the loader: what is wrong with `path`, or null. libkmod
 * (kmod_module_parse_depline) uses a path starting with `/` as is (depmod
 * writes those for `external` directories of depmod.d) and joins any other to
 * the module directory. hotplugd also refuses a `..` component anywhere and a
 * NUL: a relative path must stay inside the module directory, and an index is
 * never a way to reach an arbitrary file. `allowAbsolute` is false for
 * sources whose paths are relative by definition (meta.pb).
 */
export function modulePathProblem(path: string, allowAbsolute = true): string | null {
  if (path === '') return 'empty module path';
  if (path.includes('\0')) return 'module path contains a NUL byte';
  if (DOTDOT.test(path)) return 'module path has a ".." component';
  if (!allowAbsolute && path.startsWith('/')) return 'module path is absolute';
  return null;
}

/** The file to load for an index path (see modulePathProblem), or null when the path is refused. */
export function resolveModulePath(modulesDir: string, path: string): string | null {
  if (modulePathProblem(path) !== null) return null;
  if (path.startsWith('/')) return path;
  return modulesDir.endsWith('/') ? modulesDir + path : `${modulesDir}/${path}`;
}

/** Throws E_PATH_ESCAPE for a path that modulePathProblem refuses (sources that refuse a bad file whole: meta.pb). */
export function checkModulePath(path: string, source: string, allowAbsolute = false): void {
  const problem = modulePathProblem(path, allowAbsolute);
  if (problem !== null) {
    throw new HotplugError('E_PATH_ESCAPE', `module path "${path}": ${problem}`, { file: source });
  }
}

/** Throws E_INDEX_DEP_CYCLE naming the modules on a cycle. */
export function checkNoCycles(modules: readonly ModuleRecord[], source: string): void {
  const state = new Uint8Array(modules.length); // 0 new, 1 on stack, 2 done
  for (let root = 0; root < modules.length; root++) {
    if (state[root] !== 0) continue;
    const stack: [number, number][] = [[root, 0]];
    state[root] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = modules[top[0]]!.deps;
      if (top[1] < deps.length) {
        const d = deps[top[1]++]!;
        if (state[d] === 1) {
          const cycle = stack.slice(stack.findIndex(([m]) => m === d)).map(([m]) => modules[m]!.name);
          throw new HotplugError('E_INDEX_DEP_CYCLE', `dependency cycle: ${[...cycle, modules[d]!.name].join(' -> ')}`, {
            file: source,
          });
        }
        if (state[d] === 0) {
          state[d] = 1;
          stack.push([d, 0]);
        }
      } else {
        state[top[0]] = 2;
        stack.pop();
      }
    }
  }
}

/** Modules by name while an index is assembled; `add` returns the existing index for a known name. */
export class ModuleTable {
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

  /** Mark a module built in (built-in wins over a stray loadable entry, with a warning). */
  addBuiltin(name: string, file: string, warnings: LineWarning[]): void {
    const m = this.modules[this.add(name, '', true)]!;
    if (!m.builtin) {
      warnings.push({ file, line: 0, problem: `${name} is both built in and loadable; treated as built in` });
      m.builtin = true;
      m.path = '';
    }
  }
}

export function indexFromDepmod(t: DepmodTexts): IndexParts {
  const warnings: LineWarning[] = [];
  const table = new ModuleTable();
  const { modules, byName } = table;
  const add = table.add.bind(table);
  const depFile = `${t.dir}/modules.dep`;
  const depLines = parseDepFile(t.dep, depFile, warnings);
  const byPath = new Map<string, number>();
  // One bad line costs that module, never the index (libkmod reads the
  // lines it can). Dependencies are checked with their line: a module whose
  // dependency is refused could not be loaded anyway.
  const usable = depLines.filter((d) => {
    const problem = [d.path, ...d.deps].map((p) => modulePathProblem(p)).find((p) => p !== null);
    if (problem !== undefined) warnings.push({ file: depFile, line: d.line, problem: `${problem}; module ${d.name} skipped` });
    return problem === undefined;
  });
  for (const d of usable) byPath.set(d.path, add(d.name, d.path, false));
  for (const d of usable) {
    const m = modules[byName.get(d.name)!]!;
    for (const dep of d.deps) {
      let i = byPath.get(dep);
      if (i === undefined) {
        // A dependency without a line of its own still has a path.
        const name = moduleNameFromPath(dep)!;
        i = byName.get(name) ?? add(name, dep, false);
        byPath.set(dep, i);
      }
      m.deps.push(i);
    }
  }
  checkNoCycles(modules, depFile);
  let builtinAliasLines: AliasLine[] = [];
  if (t.builtin !== undefined) {
    const file = `${t.dir}/modules.builtin`;
    for (const name of parseBuiltinFile(t.builtin, file, warnings)) table.addBuiltin(name, file, warnings);
  }
  if (t.builtinModinfo !== undefined) {
    const info = parseBuiltinModinfo(t.builtinModinfo, `${t.dir}/modules.builtin.modinfo`, warnings);
    for (const name of info.names) add(name, '', true);
    builtinAliasLines = info.aliases;
  }
  const classes = new ClassTable();
  const moduleIndex = (name: string): number => add(name, null, false);
  const aliasFile = `${t.dir}/modules.alias`;
  const compiler = new AliasCompiler(classes, aliasFile, warnings, t.alias.length >> 2);
  forEachAlias(t.alias, aliasFile, warnings, (pattern, module) => compiler.add(pattern, moduleIndex(module)));
  const aliases = compiler.finish();
  const builtinAliases = compileAliases(builtinAliasLines, moduleIndex, classes, `${t.dir}/modules.builtin.modinfo`, warnings, 256);
  const softdeps = t.softdep !== undefined ? parseSoftdepFile(t.softdep, `${t.dir}/modules.softdep`, warnings) : new Map();
  const readSymbols = t.symbols;
  return {
    modules,
    aliases,
    builtinAliases,
    classes,
    softdeps,
    loadSymbols: readSymbols
      ? () => {
          const text = readSymbols();
          if (text === undefined) return compileAliases([], moduleIndex, classes, '', warnings, 16);
          const file = `${t.dir}/modules.symbols`;
          const symbols = new AliasCompiler(classes, file, warnings, text.length >> 2);
          forEachAlias(text, file, warnings, (pattern, module) => symbols.add(pattern, moduleIndex(module)));
          return symbols.finish(1024);
        }
      : undefined,
    warnings,
    source: t.dir,
  };
}
