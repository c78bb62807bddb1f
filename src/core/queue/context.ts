/**
 * The state one LoadQueue shares with the parts that serve its requests
 * (step.ts, load.ts, install-step.ts, jobs.ts): its seams, its policy with the
 * defaults applied, and what it remembers until the next reload. `index` and
 * `stopping` change while requests are served; every part reads them live.
 */
import { type ModuleIndex } from '../index/module-index.js';
import { type CommandRunner, INSTALL_GRACE_MS } from '../install.js';
import { type Kernel } from '../kernel.js';
import { type PlanStep } from '../plan.js';
import { Records } from './records.js';
import { Slots } from './slots.js';
import { type InstallCommandPolicy, type Log, MAX_JOBS, type QueueCounts, type QueueOptions } from './types.js';

export interface QueueContext {
  /** Replaced by reload. */
  index: ModuleIndex;
  /** Set by stop: nothing new starts. */
  stopping: boolean;
  readonly kernel: Kernel;
  readonly log: Log;
  readonly modulesDir: string;
  readonly now: () => number;
  readonly runner: CommandRunner | undefined;
  readonly installPolicy: InstallCommandPolicy;
  readonly installTimeoutMs: number;
  readonly installGraceMs: number;
  readonly loadTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly jobs: number;
  readonly slots: Slots;
  /** Modules a request is loading (or running the install command of) right now: settles when it is done. */
  readonly active: Map<string, Promise<void>>;
  /** Modules that failed, with their error code; not retried until reload. */
  readonly failed: Map<string, string>;
  /** Modules whose install command ran (successfully) in this index load. */
  readonly commandsRan: Set<string>;
  /**
   * Loads left behind by the load timeout (the kernel has not answered yet)
   * and install commands left behind past their time limit and grace (their
   * process has not ended): `stuck`, named by settle, never started again.
   */
  readonly inFlight: Set<string>;
  /** Once-per-index-load and once-per-device records. */
  readonly records: Records;
  readonly counts: QueueCounts;
}

/** The context for these options, defaults applied (jobs clamped to 1..MAX_JOBS). */
export function createContext(opts: QueueOptions): QueueContext {
  const jobs = Number.isFinite(opts.jobs) ? Math.min(MAX_JOBS, Math.max(1, Math.floor(opts.jobs!))) : 1;
  return {
    index: opts.index,
    stopping: false,
    kernel: opts.kernel,
    log: opts.log,
    modulesDir: opts.modulesDir,
    now: opts.now ?? (() => performance.now()),
    runner: opts.runner,
    installPolicy: opts.installCommands ?? 'run',
    installTimeoutMs: opts.installTimeoutMs ?? 30_000,
    installGraceMs: opts.installGraceMs ?? INSTALL_GRACE_MS,
    loadTimeoutMs: opts.loadTimeoutMs ?? 60_000,
    maxAttempts: Math.max(1, opts.maxAttempts ?? 3),
    retryDelayMs: opts.retryDelayMs ?? 100,
    jobs,
    slots: new Slots(jobs),
    active: new Map(),
    failed: new Map(),
    commandsRan: new Set(),
    inFlight: new Set(),
    records: new Records(Math.max(1, opts.deviceRecordCap ?? 4096)),
    counts: {
      requests: 0,
      merged: 0,
      loaded: 0,
      failed: 0,
      skipped: 0,
      blacklisted: 0,
      wouldLoad: 0,
      installCommands: 0,
      wouldRun: 0,
      retries: 0,
      loadTimeouts: 0,
      installStuck: 0,
    },
  };
}

/** A module that failed or was skipped while serving one request. */
export interface Down {
  /** The module that failed (itself, or the dependency that made it skip). */
  cause: string;
  /** Order in which modules went down, to name the first failure as before. */
  seq: number;
}

/** A module (and its dependents) will not be loaded for this request; `cause` is the module that failed. */
export function markDown(down: Map<string, Down>, name: string, cause = name): void {
  down.set(name, { cause, seq: down.size });
}

/** A step that needs the kernel or a command: its install command, or the module file to load. */
export interface Work {
  step: PlanStep;
  rec: Record<string, unknown>;
  params: string;
  command?: string;
  path?: string;
}
