/**
 * The LoadQueue itself: submit (a request already waiting absorbs the same
 * one), the workers that serve requests in order (one, or up to `jobs` at
 * once), idle, stop (drop what waits, let loads in flight finish) and reload
 * (a new index; failures, install commands and once-only records forgotten).
 * A request becomes its targets (the modalias's matches, blacklist applied,
 * or the module named) and each target its plan (core/plan.ts), served step
 * by step (step.ts) or, with jobs > 1, by the scheduler (jobs.ts).
 */
import { type ModuleIndex } from '../index/module-index.js';
import { loadOrder, type PlanStep } from '../plan.js';
import { createContext, type Down, type QueueContext } from './context.js';
import { loadPlanAtOnce } from './jobs.js';
import { once } from './records.js';
import { decide, perform } from './step.js';
import { LOAD_MSG, type LoadRequest, type LoadResult, type QueueCounts, type QueueOptions } from './types.js';

interface Pending {
  req: LoadRequest;
  key: string;
  at: number;
  merged: number;
}

export class LoadQueue {
  private readonly ctx: QueueContext;
  private readonly pending: Pending[] = [];
  private readonly pendingByKey = new Map<string, Pending>();
  /** Requests being served at once (at most jobs). */
  private workers = 0;
  private idleWaiters: (() => void)[] = [];
  readonly counts: QueueCounts;
  /** Called whenever the queue drains. */
  onIdle: (() => void) | undefined;

  constructor(opts: QueueOptions) {
    this.ctx = createContext(opts);
    this.counts = this.ctx.counts;
  }

  /** Queue a request; returns false when it was merged into one already waiting (or the queue is stopping). */
  submit(req: LoadRequest): boolean {
    if (this.ctx.stopping) return false;
    this.counts.requests++;
    const key = req.modalias !== undefined ? `a:${req.modalias}` : `m:${req.module ?? ''}`;
    const same = this.pendingByKey.get(key);
    if (same) {
      same.merged++;
      this.counts.merged++;
      return false;
    }
    const p: Pending = { req, key, at: this.ctx.now(), merged: 0 };
    this.pending.push(p);
    this.pendingByKey.set(key, p);
    if (this.workers < this.ctx.jobs) void this.pump();
    return true;
  }

  /** Requests waiting to be served (status, metrics). */
  get depth(): number {
    return this.pending.length;
  }

  /** Requests being served now (at most jobs). */
  get serving(): number {
    return this.workers;
  }

  get busy(): boolean {
    return this.workers > 0 || this.pending.length > 0;
  }

  /** Loads left behind by the load timeout, still waiting for the kernel, and install commands left behind, still running. */
  get stuck(): number {
    return this.ctx.inFlight.size;
  }

  /** The modules of those loads (settle's answer names them: they do not hold it). */
  get stuckModules(): string[] {
    return [...this.ctx.inFlight];
  }

  /** The once-per-device record keys (at most deviceRecordCap); the bounded-memory test reads it by this name. */
  private get reportedForDevice(): ReadonlySet<string> {
    return this.ctx.records.deviceKeys;
  }

  /** Resolves when nothing is queued or in flight (loads and install commands left behind by their time limits excepted). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop taking requests, let the load in flight finish, drop what waits. Returns how many were dropped. */
  async stop(): Promise<number> {
    this.ctx.stopping = true;
    const dropped = this.pending.length;
    this.pending.length = 0;
    this.pendingByKey.clear();
    await this.idle();
    return dropped;
  }

  /** Use a new index and start over: failures, install commands and once-only records are forgotten. */
  reload(index: ModuleIndex): void {
    this.ctx.index = index;
    this.ctx.failed.clear();
    this.ctx.commandsRan.clear();
    this.ctx.records.clear();
    this.ctx.kernel.forget?.();
  }

  /** One worker: serves requests in order while any wait; the last worker to stop reports idle. */
  private async pump(): Promise<void> {
    this.workers++;
    try {
      while (this.pending.length > 0) {
        const p = this.pending.shift()!;
        this.pendingByKey.delete(p.key);
        try {
          await this.process(p);
        } catch (e) {
          // A bug must not stop the queue: record it and go on.
          this.ctx.log.error({ err: e, modalias: p.req.modalias, module: p.req.module, devpath: p.req.devpath }, 'request failed unexpectedly');
        }
      }
    } finally {
      this.workers--;
      if (this.workers === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
        this.onIdle?.();
      }
    }
  }

  private async process(p: Pending): Promise<void> {
    const ctx = this.ctx;
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
      const r = ctx.index.lookup(req.modalias);
      targets = r.names;
      viaAlias = true;
      if (targets.length === 0) {
        ctx.log.debug({ ...base, source: r.source }, 'no module for modalias');
        return;
      }
    } else {
      targets = [req.module ?? ''];
      viaAlias = false;
    }
    const device = req.devpath ?? (req.modalias !== undefined ? `modalias:${req.modalias}` : `module:${req.module ?? ''}`);
    // Modules that failed or were skipped while serving this request.
    const down = new Map<string, Down>();
    for (const target of targets) {
      if (ctx.stopping) return;
      if (viaAlias && ctx.index.isBlacklisted(target)) {
        if (once(ctx.records.blacklisted, target)) {
          this.counts.blacklisted++;
          ctx.log.info({ ...base, module: target, result: 'blacklisted' satisfies LoadResult }, LOAD_MSG);
        }
        continue;
      }
      await this.loadPlan(loadOrder(ctx.index, target), target, base, device, p.at, down);
    }
  }

  private async loadPlan(plan: PlanStep[], target: string, base: object, device: string, enqueuedAt: number, down: Map<string, Down>): Promise<void> {
    if (this.ctx.jobs > 1) return loadPlanAtOnce(this.ctx, plan, target, base, device, enqueuedAt, down);
    for (const step of plan) {
      if (down.has(step.name)) continue;
      const work = decide(this.ctx, step, target, base, device, enqueuedAt, down);
      if (work === 'stop') return; // SIGTERM: nothing new starts, no command either
      if (work !== 'done') await perform(this.ctx, work, device, enqueuedAt, down);
    }
  }
}
