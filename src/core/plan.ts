/**
 * Load order for a module, as kmod's probe list builds it
 * (__kmod_module_get_probe_list): the module's dependencies in reverse
 * modules.dep order (deepest first), each with its own dependencies and
 * softdeps; then the module's `pre:` softdeps, the module, its `post:`
 * softdeps. Softdep targets are looked up like aliases (every match). Each
 * module appears once.
 */
import { type ModuleIndex } from './index.js';

export type StepRole = 'target' | 'dependency' | 'softdep-pre' | 'softdep-post';

export interface PlanStep {
  name: string;
  /** Relative path; '' built-in; null when no index names a file for it. */
  path: string | null;
  builtin: boolean;
  role: StepRole;
  /** The module this step is loaded for (absent for the target). */
  dependencyOf?: string;
}

export function loadOrder(index: ModuleIndex, target: string): PlanStep[] {
  const out: PlanStep[] = [];
  const visited = new Set<string>();
  const visit = (name: string, role: StepRole, of: string | undefined): void => {
    if (visited.has(name)) return;
    visited.add(name);
    const m = index.moduleByName(name);
    const deps = m?.deps ?? [];
    for (let i = deps.length - 1; i >= 0; i--) visit(index.modules[deps[i]!]!.name, 'dependency', name);
    const soft = index.softdeps(name);
    for (const pre of soft?.pre ?? []) for (const n of index.lookup(pre).names) visit(n, 'softdep-pre', name);
    const step: PlanStep = { name, path: m ? m.path : null, builtin: m?.builtin ?? false, role };
    if (of !== undefined) step.dependencyOf = of;
    out.push(step);
    for (const post of soft?.post ?? []) for (const n of index.lookup(post).names) visit(n, 'softdep-post', name);
  };
  visit(target, 'target', undefined);
  return out;
}
