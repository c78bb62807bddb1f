/**
 * One step of a plan (a module of a request's load order), decided on the
 * state now: builtin, live in the kernel (Kernel.moduleState; the queue keeps
 * no set of present modules), left in flight by the load timeout, failed
 * before, or a hard dependency down: recorded here and done. Otherwise the
 * step is work: its install command, or its module file to load (perform).
 * A module that did not make it is marked down for its dependents.
 */
import { resolveModulePath } from '../index/module-path.js';
import { installCommandFor } from '../install.js';
import { type PlanStep } from '../plan.js';
import { type Down, markDown, type QueueContext, type Work } from './context.js';
import { runInstall } from './install-step.js';
import { loadModule } from './load.js';
import { fail, once, skip } from './records.js';
import { LOAD_MSG, type LoadResult } from './types.js';

/**
 * What to do with one step of a plan, decided on the state now (records for
 * builtin, present, in-flight, failed-before and dependency-failed are
 * written here): nothing more ('done'), stop (the queue is stopping), or
 * run the install command or load the module (perform).
 */
export function decide(ctx: QueueContext, step: PlanStep, target: string, base: object, device: string, enqueuedAt: number, down: Map<string, Down>): Work | 'done' | 'stop' {
  const rec = {
    ...base,
    module: step.name,
    ...(step.dependencyOf !== undefined ? { dependencyOf: step.dependencyOf, role: step.role } : {}),
  };
  if (step.builtin) {
    if (once(ctx.records.builtin, step.name)) ctx.log.info({ ...rec, result: 'builtin' satisfies LoadResult }, LOAD_MSG);
    return 'done';
  }
  if (ctx.kernel.moduleState(step.name) === 'live') {
    if (step.name === target && once(ctx.records.loaded, step.name)) ctx.log.info({ ...rec, result: 'already-loaded' satisfies LoadResult }, LOAD_MSG);
    return 'done';
  }
  if (ctx.inFlight.has(step.name)) {
    // Left behind by the load timeout (the kernel still has it) or an install command still running: never start it twice.
    markDown(down, step.name);
    skip(ctx, device, 'in-flight', { ...rec, path: step.path });
    return 'done';
  }
  const earlier = ctx.failed.get(step.name);
  if (earlier !== undefined) {
    // Failed before: not retried until the index is reloaded.
    markDown(down, step.name);
    skip(ctx, device, 'failed-before', { ...rec, path: step.path, code: earlier });
    return 'done';
  }
  const broken = downDependency(ctx, step.name, down);
  if (broken !== undefined) {
    markDown(down, step.name, broken.cause);
    skip(ctx, device, 'dependency-failed', { ...rec, path: step.path, failedDependency: broken.cause });
    return 'done';
  }
  if (ctx.stopping) return 'stop';
  const params = ctx.index.options(step.name, step.role === 'target' ? (base as { modalias?: string }).modalias : undefined);
  const command = installCommandFor(ctx.index, step.name);
  if (command !== undefined) return { step, rec, params, command };
  const path = resolvePath(ctx.modulesDir, step);
  if (typeof path !== 'string') {
    markDown(down, step.name);
    fail(ctx, step.name, device, { ...rec, path: step.path, result: 'failed' satisfies LoadResult, code: path.code, error: path.message }, enqueuedAt);
    return 'done';
  }
  return { step, rec, params, path };
}

/** Run the install command or load the module; a module that did not make it is down for its dependents. */
export async function perform(ctx: QueueContext, work: Work, device: string, enqueuedAt: number, down: Map<string, Down>): Promise<void> {
  const ok =
    work.command !== undefined
      ? await runInstall(ctx, work.step, work.rec, work.command, work.params, device, enqueuedAt)
      : await loadModule(ctx, work.step.name, device, work.rec, work.path!, work.params, enqueuedAt);
  if (!ok) markDown(down, work.step.name);
}

/** The first (in the order they went down) of a module's direct dependencies that is down, or undefined. */
function downDependency(ctx: QueueContext, name: string, down: Map<string, Down>): Down | undefined {
  // The plan lists every dependency before its dependents and marks each
  // failed or skipped module down, so direct dependencies are enough.
  let first: Down | undefined;
  for (const d of ctx.index.moduleByName(name)?.deps ?? []) {
    const hit = down.get(ctx.index.modules[d]!.name);
    if (hit !== undefined && (first === undefined || hit.seq < first.seq)) first = hit;
  }
  return first;
}

/** The file to load: index paths as libkmod joins them (core/index/module-path.ts, resolveModulePath). */
function resolvePath(modulesDir: string, step: PlanStep): string | { code: string; message: string } {
  if (step.path === null || step.path === '') {
    return { code: 'ENOENT', message: 'no module file for this name in the index' };
  }
  return resolveModulePath(modulesDir, step.path) ?? { code: 'E_PATH_ESCAPE', message: 'module path escapes the module directory' };
}
