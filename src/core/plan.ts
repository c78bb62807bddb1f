/**
 * Load order for a module, as kmod's probe list builds it
 * (__kmod_module_get_probe_list): the module's dependencies in reverse
 * modules.dep order (deepest first), each with its own dependencies and
 * softdeps; then the module's `pre:` softdeps, the module, its `post:`
 * softdeps. Softdep targets are looked up like aliases (every match). Each
 * module appears once.
 */
import { type ModuleIndex } from './index/module-index.js';

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

/** What a frame of loadOrder's walk still has to do: visit a module, or emit a step. */
type Action = { visit: string; role: StepRole; of: string | undefined } | { emit: PlanStep };

/**
 * Iterative (an explicit stack of frames, one per module being expanded), so a
 * dependency chain of any depth plans without exhausting the call stack. The
 * visit order is that of the recursive definition above: a frame lists its
 * module's actions in order (dependencies deepest first, `pre:` softdeps, the
 * module itself, `post:` softdeps), and a module already visited is skipped
 * when its turn comes, not when it is listed.
 */
export function loadOrder(index: ModuleIndex, target: string): PlanStep[] {
  const out: PlanStep[] = [];
  const visited = new Set<string>();
  const expand = (name: string, role: StepRole, of: string | undefined): Action[] => {
    const m = index.moduleByName(name);
    const actions: Action[] = [];
    const deps = m?.deps ?? [];
    for (let i = deps.length - 1; i >= 0; i--) actions.push({ visit: index.modules[deps[i]!]!.name, role: 'dependency', of: name });
    const soft = index.softdeps(name);
    for (const pre of soft?.pre ?? []) for (const n of index.lookup(pre).names) actions.push({ visit: n, role: 'softdep-pre', of: name });
    const step: PlanStep = { name, path: m ? m.path : null, builtin: index.isBuiltin(name), role };
    if (of !== undefined) step.dependencyOf = of;
    actions.push({ emit: step });
    for (const post of soft?.post ?? []) for (const n of index.lookup(post).names) actions.push({ visit: n, role: 'softdep-post', of: name });
    return actions;
  };
  visited.add(target);
  const stack: { actions: Action[]; next: number }[] = [{ actions: expand(target, 'target', undefined), next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next === frame.actions.length) {
      stack.pop();
      continue;
    }
    const a = frame.actions[frame.next++]!;
    if ('emit' in a) {
      out.push(a.emit);
    } else if (!visited.has(a.visit)) {
      visited.add(a.visit);
      stack.push({ actions: expand(a.visit, a.role, a.of), next: 0 });
    }
  }
  return out;
}
