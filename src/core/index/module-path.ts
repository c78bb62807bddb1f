/**
 * The rules every module list obeys, whatever its source and also in the
 * loader: a module path stays inside the module directory (one rule,
 * `modulePathProblem`), and dependencies have no cycle.
 */
import { HotplugError } from '../../errors.js';
import { type ModuleRecord } from './module-index.js';


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

/**
 * Throws E_INDEX_DEP_CYCLE naming the modules on a cycle. An iterative
 * depth-first search whose stack is two typed arrays (module, next
 * dependency to visit): it runs at every index load, over every module.
 */
export function checkNoCycles(modules: readonly ModuleRecord[], source: string): void {
  const n = modules.length;
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  const stackNode = new Uint32Array(n);
  const stackNext = new Uint32Array(n);
  for (let root = 0; root < n; root++) {
    if (state[root] !== 0) continue;
    let sp = 0;
    stackNode[sp] = root;
    stackNext[sp++] = 0;
    state[root] = 1;
    while (sp > 0) {
      const top = stackNode[sp - 1]!;
      const deps = modules[top]!.deps;
      const k = stackNext[sp - 1]!;
      if (k < deps.length) {
        stackNext[sp - 1] = k + 1;
        const d = deps[k]!;
        if (state[d] === 1) {
          const path = Array.from(stackNode.subarray(0, sp));
          const cycle = path.slice(path.indexOf(d)).map((m) => modules[m]!.name);
          throw new HotplugError('E_INDEX_DEP_CYCLE', `dependency cycle: ${[...cycle, modules[d]!.name].join(' -> ')}`, {
            file: source,
          });
        }
        if (state[d] === 0) {
          state[d] = 1;
          stackNode[sp] = d;
          stackNext[sp++] = 0;
        }
      } else {
        state[top] = 2;
        sp--;
      }
    }
  }
}
