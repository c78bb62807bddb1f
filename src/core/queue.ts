/**
 * The load queue: requests (a modalias from a uevent or the coldplug walk, or
 * a module by name) become module loads, one at a time, dependencies first,
 * with one record per module decided.
 *
 * Policy (the reasons are in the README's "Loading" section):
 * - at most one Kernel.load in flight;
 * - a request whose modalias (or module) is already queued is merged into it;
 *   a module that is loaded, built in, or failed is not attempted again, so a
 *   storm of identical uevents costs one load;
 * - EEXIST is success (someone else loaded it); any other errno is a failure,
 *   recorded, and the queue goes on; a failed module is not retried until the
 *   index is reloaded (SIGHUP);
 * - a failed hard dependency (modules.dep) skips its dependents; a failed
 *   softdep does not;
 * - the blacklist applies to modules matched by a modalias, never to the
 *   dependencies of a module being loaded (as modprobe -b).
 */
import { resolveModulePath } from './build-index.js';
import { type ModuleIndex } from './index.js';
import { type Kernel } from './kernel.js';
import { loadOrder, type PlanStep } from './plan.js';

export type Origin = 'uevent' | 'coldplug' | 'request';

export interface LoadRequest {
  /** A MODALIAS (byte string); or `module` for a load by name. */
  modalias?: string;
  module?: string;
  devpath?: string;
  seqnum?: string;
  origin: Origin;
}

export type LoadResult = 'loaded' | 'already-loaded' | 'builtin' | 'blacklisted' | 'failed' | 'skipped' | 'would-load';

/** The structured-log sink the queue writes to (a pino logger fits). */
export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface QueueOptions {
  index: ModuleIndex;
  kernel: Kernel;
  log: Log;
  /** Module paths in the index are relative to this directory. */
  modulesDir: string;
  now?: () => number;
}

interface Pending {
  req: LoadRequest;
  key: string;
  at: number;
  merged: number;
}

export interface QueueCounts {
  requests: number;
  merged: number;
  loaded: number;
  failed: number;
  skipped: number;
  blacklisted: number;
  wouldLoad: number;
}

/** The message of every per-module record; facts are in the fields. */
export const LOAD_MSG = 'module';

export class LoadQueue {
  private index: ModuleIndex;
  private readonly kernel: Kernel;
  private readonly log: Log;
  private readonly modulesDir: string;
  private readonly now: () => number;
  private readonly pending: Pending[] = [];
  private readonly pendingByKey = new Map<string, Pending>();
  /** Modules present in the kernel (or, in dry-run, that would be). */
  private readonly present = new Set<string>();
  /** Modules that failed, with their error code; not retried until reload. */
  private readonly failed = new Map<string, string>();
  /** Modules whose already-loaded / built-in / blacklisted record was written once. */
  private readonly reported = new Set<string>();
  private running = false;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];
  readonly counts: QueueCounts = { requests: 0, merged: 0, loaded: 0, failed: 0, skipped: 0, blacklisted: 0, wouldLoad: 0 };
  /** Called whenever the queue drains. */
  onIdle: (() => void) | undefined;

  constructor(opts: QueueOptions) {
    this.index = opts.index;
    this.kernel = opts.kernel;
    this.log = opts.log;
    this.modulesDir = opts.modulesDir;
    this.now = opts.now ?? (() => performance.now());
    for (const [name, state] of this.kernel.loadedModules()) if (state !== 'going') this.present.add(name);
  }

  /** Queue a request; returns false when it was merged into one already waiting (or the queue is stopping). */
  submit(req: LoadRequest): boolean {
    if (this.stopping) return false;
    this.counts.requests++;
    const key = req.modalias !== undefined ? `a:${req.modalias}` : `m:${req.module ?? ''}`;
    const same = this.pendingByKey.get(key);
    if (same) {
      same.merged++;
      this.counts.merged++;
      return false;
    }
    const p: Pending = { req, key, at: this.now(), merged: 0 };
    this.pending.push(p);
    this.pendingByKey.set(key, p);
    if (!this.running) void this.pump();
    return true;
  }

  get busy(): boolean {
    return this.running || this.pending.length > 0;
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop taking requests, let the load in flight finish, drop what waits. Returns how many were dropped. */
  async stop(): Promise<number> {
    this.stopping = true;
    const dropped = this.pending.length;
    this.pending.length = 0;
    this.pendingByKey.clear();
    await this.idle();
    return dropped;
  }

  /** Use a new index; failed modules get another chance, and once-only records are written again. */
  reload(index: ModuleIndex): void {
    this.index = index;
    this.failed.clear();
    this.reported.clear();
    for (const [name, state] of this.kernel.loadedModules()) if (state !== 'going') this.present.add(name);
  }

  private async pump(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const p = this.pending.shift()!;
        this.pendingByKey.delete(p.key);
        try {
          await this.process(p);
        } catch (e) {
          // A bug must not stop the queue: record it and go on.
          this.log.error({ err: e, modalias: p.req.modalias, module: p.req.module, devpath: p.req.devpath }, 'request failed unexpectedly');
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      this.onIdle?.();
    }
  }

  private async process(p: Pending): Promise<void> {
    const { req } = p;
    const base = {
      modalias: req.modalias,
      devpath: req.devpath,
      seqnum: req.seqnum,
      origin: req.origin,
    };
    let targets: string[];
    let viaAlias: boolean;
    if (req.modalias !== undefined) {
      const r = this.index.lookup(req.modalias);
      targets = r.names;
      viaAlias = true;
      if (targets.length === 0) {
        this.log.debug({ ...base, source: r.source }, 'no module for modalias');
        return;
      }
    } else {
      targets = [req.module ?? ''];
      viaAlias = false;
    }
    // Modules that failed or were skipped while serving this request.
    const down = new Map<string, string>();
    for (const target of targets) {
      if (this.stopping) return;
      if (viaAlias && this.index.isBlacklisted(target)) {
        if (this.once(`b:${target}`)) {
          this.counts.blacklisted++;
          this.log.info({ ...base, module: target, result: 'blacklisted' satisfies LoadResult }, LOAD_MSG);
        }
        continue;
      }
      await this.loadPlan(loadOrder(this.index, target), target, base, p.at, down);
    }
  }

  private once(key: string): boolean {
    if (this.reported.has(key)) return false;
    this.reported.add(key);
    return true;
  }

  /** Transitive hard dependencies of a module, by name. */
  private hardDeps(name: string): Set<string> {
    const out = new Set<string>();
    const stack = [name];
    while (stack.length > 0) {
      const m = this.index.moduleByName(stack.pop()!);
      for (const d of m?.deps ?? []) {
        const dn = this.index.modules[d]!.name;
        if (!out.has(dn)) {
          out.add(dn);
          stack.push(dn);
        }
      }
    }
    return out;
  }

  private async loadPlan(plan: PlanStep[], target: string, base: object, enqueuedAt: number, down: Map<string, string>): Promise<void> {
    for (const step of plan) {
      if (down.has(step.name)) continue;
      const rec = {
        ...base,
        module: step.name,
        ...(step.dependencyOf !== undefined ? { dependencyOf: step.dependencyOf, role: step.role } : {}),
      };
      if (this.present.has(step.name)) {
        if (step.name === target && this.once(`l:${step.name}`)) this.log.info({ ...rec, result: 'already-loaded' satisfies LoadResult }, LOAD_MSG);
        continue;
      }
      if (step.builtin) {
        this.present.add(step.name);
        if (this.once(`i:${step.name}`)) this.log.info({ ...rec, result: 'builtin' satisfies LoadResult }, LOAD_MSG);
        continue;
      }
      const earlier = this.failed.get(step.name);
      if (earlier !== undefined) {
        // Failed before: not retried until the index is reloaded.
        down.set(step.name, earlier);
        continue;
      }
      const deps = this.hardDeps(step.name);
      const brokenDep = [...down.keys()].find((d) => deps.has(d));
      if (brokenDep !== undefined) {
        down.set(step.name, 'EDEPFAILED');
        this.counts.skipped++;
        this.log.warn({ ...rec, path: step.path, result: 'skipped' satisfies LoadResult, failedDependency: brokenDep }, LOAD_MSG);
        continue;
      }
      const path = this.resolvePath(step);
      if (typeof path !== 'string') {
        this.fail(step.name, down, { ...rec, path: step.path, result: 'failed' satisfies LoadResult, code: path.code, error: path.message }, enqueuedAt);
        continue;
      }
      if (this.stopping) return; // SIGTERM: the load in flight finishes, nothing new starts
      const startedAt = this.now();
      const params = this.index.options(step.name, step.role === 'target' ? (base as { modalias?: string }).modalias : undefined);
      const outcome = await this.kernel.load({ name: step.name, path, params });
      const ms = round(this.now() - startedAt);
      const queueMs = round(startedAt - enqueuedAt);
      const withParams = params !== '' ? { params } : {};
      if (outcome.ok) {
        this.present.add(step.name);
        this.reported.add(`l:${step.name}`); // its record is this one: no "already-loaded" later
        const result: LoadResult = this.kernel.loads ? 'loaded' : 'would-load';
        if (this.kernel.loads) this.counts.loaded++;
        else this.counts.wouldLoad++;
        this.log.info({ ...rec, path, ...withParams, result, ms, queueMs }, LOAD_MSG);
      } else if (outcome.code === 'EEXIST') {
        this.present.add(step.name);
        this.reported.add(`l:${step.name}`);
        this.log.info({ ...rec, path, result: 'already-loaded' satisfies LoadResult, errno: outcome.errno, code: outcome.code, ms, queueMs }, LOAD_MSG);
      } else {
        this.fail(
          step.name,
          down,
          {
            ...rec,
            path,
            ...withParams,
            result: 'failed' satisfies LoadResult,
            errno: outcome.errno,
            code: outcome.code,
            ...(outcome.message !== undefined ? { error: outcome.message } : {}),
            ms,
            queueMs,
          },
          enqueuedAt,
        );
      }
    }
  }

  private fail(name: string, down: Map<string, string>, record: Record<string, unknown>, enqueuedAt: number): void {
    const code = typeof record.code === 'string' ? record.code : 'EUNKNOWN';
    this.failed.set(name, code);
    down.set(name, code);
    this.counts.failed++;
    this.log.error('queueMs' in record ? record : { ...record, queueMs: round(this.now() - enqueuedAt) }, LOAD_MSG);
  }

  /** The file to load: index paths as libkmod joins them (core/build-index.ts, resolveModulePath). */
  private resolvePath(step: PlanStep): string | { code: string; message: string } {
    if (step.path === null || step.path === '') {
      return { code: 'ENOENT', message: 'no module file for this name in the index' };
    }
    return resolveModulePath(this.modulesDir, step.path) ?? { code: 'E_PATH_ESCAPE', message: 'module path escapes the module directory' };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
