/**
 * The load queue: requests (a modalias from a uevent or the coldplug walk, or
 * a module by name) become module loads, one at a time (or up to `jobs` at
 * once), dependencies first, with one record per module decided.
 *
 * Policy (the reasons are in the README's "Loading" section):
 * - at most `jobs` Kernel.loads (and install commands) in flight (default 1),
 *   except a load still in flight after loadTimeoutMs: it is named in a
 *   warning and the queue goes on without it (that module stays in flight;
 *   later requests for it are not loaded twice; its record is written when the
 *   kernel answers);
 * - jobs = 1: one request at a time, its plan step by step, so records come in
 *   a deterministic order (the probe order); jobs = N > 1: up to N requests,
 *   taken in order, are served at once, and a step of a plan starts as soon as
 *   every step it needs has finished: its modules.dep dependencies and `pre:`
 *   softdeps, and for a `post:` softdep the module it follows. A module is
 *   loaded by one request at a time: another request that reaches it waits for
 *   that load and then decides again (present, failed-before, ...), so every
 *   rule below holds for any N; only the order of records changes. The
 *   modules a modalias matches are served one after another; a load keeps its
 *   slot through its retries;
 * - a request whose modalias (or module) is already queued is merged into it;
 * - the kernel is asked (Kernel.moduleState) before each module: a live one is
 *   not loaded, a module removed since is loaded again; the queue keeps no
 *   set of present modules;
 * - EEXIST is success (someone else loaded it); EAGAIN, EBUSY, ENOMEM, EINTR
 *   and ETIMEDOUT are retried after a short backoff, up to maxAttempts, each
 *   attempt recorded; any other errno is a failure, recorded, and the queue
 *   goes on; a failed module is not retried until the index is reloaded
 *   (SIGHUP), and each later request gets a `skipped`/`failed-before` record
 *   for it (at most one per device and module);
 * - a failed or skipped hard dependency (modules.dep) skips its dependents; a
 *   failed softdep does not;
 * - a modprobe.d `install` command runs in place of loading that module (see
 *   core/install.ts for which modules), once per module per index load; a
 *   failing command fails its dependents as a failed load would; with
 *   installCommands 'refuse' (or no runner) such a module is never loaded;
 * - the blacklist applies to modules matched by a modalias, never to the
 *   dependencies of a module being loaded (as modprobe -b).
 */
import { resolveModulePath } from './index/module-path.js';
import { type ModuleIndex } from './index/module-index.js';
import { type CommandRunner, commandFailureCode, commandSucceeded, installCommandFor, substituteCmdlineOpts } from './install.js';
import { type Kernel, type LoadOutcome, TRANSIENT_ERRNOS } from './kernel.js';
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

export type LoadResult =
  | 'loaded'
  | 'already-loaded'
  | 'builtin'
  | 'blacklisted'
  | 'failed'
  | 'retrying'
  | 'skipped'
  | 'would-load'
  | 'install-command'
  | 'would-run';

/** Why a module was skipped (the `reason` field of a `skipped` record). */
export type SkipReason =
  | 'dependency-failed'
  | 'failed-before'
  | 'in-flight'
  | 'install-command'
  | 'install-command-ran';

/** The structured-log sink the queue writes to (a pino logger fits). */
export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type InstallCommandPolicy = 'run' | 'refuse';

/** The policy knobs (flags of `run` and `coldplug`; see commands/daemon-setup.ts). */
export interface QueuePolicy {
  /** Runs modprobe.d install commands; without one they are refused. */
  runner?: CommandRunner | undefined;
  /** 'run' (default): in place of loading the module; 'refuse': never run, never load. */
  installCommands?: InstallCommandPolicy;
  /** A load still in flight after this long is reported and left behind (default 60 s). */
  loadTimeoutMs?: number;
  /** Attempts for a transient errno, the first included (default 3). */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubled for each next one (default 100 ms). */
  retryDelayMs?: number;
  /** Devices remembered for the once-per-device skip records (default 4096 device-module pairs). */
  deviceRecordCap?: number;
  /** Loads (and install commands) at once, each after all it depends on (default 1; see the top comment). */
  jobs?: number;
}

export interface QueueOptions extends QueuePolicy {
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
  installCommands: number;
  wouldRun: number;
  retries: number;
  loadTimeouts: number;
}

/** A module that failed or was skipped while serving one request. */
interface Down {
  /** The module that failed (itself, or the dependency that made it skip). */
  cause: string;
  /** Order in which modules went down, to name the first failure as before. */
  seq: number;
}

/** A step that needs the kernel or a command: its install command, or the module file to load. */
interface Work {
  step: PlanStep;
  rec: Record<string, unknown>;
  params: string;
  command?: string;
  path?: string;
}

/** The message of every per-module record; facts are in the fields. */
export const LOAD_MSG = 'module';
/** The message of the warning for a load still in flight after the load timeout. */
export const LOAD_TIMEOUT_MSG = 'module load still in flight';

const TIMEOUT = Symbol('timeout');

/** The largest --jobs accepted (a bound on concurrent loads and requests served). */
export const MAX_JOBS = 64;

/** A counting semaphore whose take() is synchronous when a slot is free (no extra tick with jobs = 1). */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  tryTake(): boolean {
    if (this.free === 0) return false;
    this.free--;
    return true;
  }
  take(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(); // the slot passes to the next waiter, first come first served
    else this.free++;
  }
}

export class LoadQueue {
  private index: ModuleIndex;
  private readonly kernel: Kernel;
  private readonly log: Log;
  private readonly modulesDir: string;
  private readonly now: () => number;
  private readonly runner: CommandRunner | undefined;
  private readonly installPolicy: InstallCommandPolicy;
  private readonly loadTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly deviceRecordCap: number;
  private readonly jobs: number;
  private readonly slots: Slots;
  /** Modules a request is loading (or running the install command of) right now: settles when it is done. */
  private readonly active = new Map<string, Promise<void>>();
  private readonly pending: Pending[] = [];
  private readonly pendingByKey = new Map<string, Pending>();
  /** Modules that failed, with their error code; not retried until reload. */
  private readonly failed = new Map<string, string>();
  /** Modules whose install command ran (successfully) in this index load. */
  private readonly commandsRan = new Set<string>();
  /** Loads left behind by the load timeout; the kernel has not answered yet. */
  private readonly inFlight = new Set<string>();
  /** Once-per-index-load records, by module. */
  private readonly reportedLoaded = new Set<string>();
  private readonly reportedBuiltin = new Set<string>();
  private readonly reportedBlacklisted = new Set<string>();
  /** Devices that have a failure or skip record for a module: "device\0module", oldest first, capped. */
  private readonly reportedForDevice = new Set<string>();
  /** Requests being served at once (at most jobs). */
  private workers = 0;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];
  readonly counts: QueueCounts = {
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
  };
  /** Called whenever the queue drains. */
  onIdle: (() => void) | undefined;

  constructor(opts: QueueOptions) {
    this.index = opts.index;
    this.kernel = opts.kernel;
    this.log = opts.log;
    this.modulesDir = opts.modulesDir;
    this.now = opts.now ?? (() => performance.now());
    this.runner = opts.runner;
    this.installPolicy = opts.installCommands ?? 'run';
    this.loadTimeoutMs = opts.loadTimeoutMs ?? 60_000;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
    this.retryDelayMs = opts.retryDelayMs ?? 100;
    this.deviceRecordCap = Math.max(1, opts.deviceRecordCap ?? 4096);
    this.jobs = Number.isFinite(opts.jobs) ? Math.min(MAX_JOBS, Math.max(1, Math.floor(opts.jobs!))) : 1;
    this.slots = new Slots(this.jobs);
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
    if (this.workers < this.jobs) void this.pump();
    return true;
  }

  get busy(): boolean {
    return this.workers > 0 || this.pending.length > 0;
  }

  /** Loads left behind by the load timeout, still waiting for the kernel. */
  get stuck(): number {
    return this.inFlight.size;
  }

  /** Resolves when nothing is queued or in flight (loads left behind by the timeout excepted). */
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

  /** Use a new index and start over: failures, install commands and once-only records are forgotten. */
  reload(index: ModuleIndex): void {
    this.index = index;
    this.failed.clear();
    this.commandsRan.clear();
    this.reportedLoaded.clear();
    this.reportedBuiltin.clear();
    this.reportedBlacklisted.clear();
    this.reportedForDevice.clear();
    this.kernel.forget?.();
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
          this.log.error({ err: e, modalias: p.req.modalias, module: p.req.module, devpath: p.req.devpath }, 'request failed unexpectedly');
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
    const device = req.devpath ?? (req.modalias !== undefined ? `modalias:${req.modalias}` : `module:${req.module ?? ''}`);
    // Modules that failed or were skipped while serving this request.
    const down = new Map<string, Down>();
    for (const target of targets) {
      if (this.stopping) return;
      if (viaAlias && this.index.isBlacklisted(target)) {
        if (once(this.reportedBlacklisted, target)) {
          this.counts.blacklisted++;
          this.log.info({ ...base, module: target, result: 'blacklisted' satisfies LoadResult }, LOAD_MSG);
        }
        continue;
      }
      await this.loadPlan(loadOrder(this.index, target), target, base, device, p.at, down);
    }
  }

  /** True the first time a record for this device and module is asked for (bounded memory). */
  private firstForDevice(device: string, module: string): boolean {
    const key = `${device}\0${module}`;
    if (this.reportedForDevice.has(key)) return false;
    if (this.reportedForDevice.size >= this.deviceRecordCap) {
      const oldest = this.reportedForDevice.values().next().value;
      if (oldest !== undefined) this.reportedForDevice.delete(oldest);
    }
    this.reportedForDevice.add(key);
    return true;
  }

  private skip(device: string, reason: SkipReason, rec: Record<string, unknown>, level: 'info' | 'warn' = 'warn'): void {
    this.counts.skipped++;
    if (this.firstForDevice(device, rec.module as string)) this.log[level]({ ...rec, result: 'skipped' satisfies LoadResult, reason }, LOAD_MSG);
  }

  /** The first (in the order they went down) of a module's direct dependencies that is down, or undefined. */
  private downDependency(name: string, down: Map<string, Down>): Down | undefined {
    // The plan lists every dependency before its dependents and marks each
    // failed or skipped module down, so direct dependencies are enough.
    let first: Down | undefined;
    for (const d of this.index.moduleByName(name)?.deps ?? []) {
      const hit = down.get(this.index.modules[d]!.name);
      if (hit !== undefined && (first === undefined || hit.seq < first.seq)) first = hit;
    }
    return first;
  }

  private async loadPlan(plan: PlanStep[], target: string, base: object, device: string, enqueuedAt: number, down: Map<string, Down>): Promise<void> {
    if (this.jobs > 1) return this.loadPlanAtOnce(plan, target, base, device, enqueuedAt, down);
    for (const step of plan) {
      if (down.has(step.name)) continue;
      const work = this.decide(step, target, base, device, enqueuedAt, down);
      if (work === 'stop') return; // SIGTERM: nothing new starts, no command either
      if (work !== 'done') await this.perform(work, device, enqueuedAt, down);
    }
  }

  /**
   * jobs > 1: every step starts when the earlier steps it needs have finished
   * (its modules.dep dependencies and `pre:` softdeps, as loadOrder puts them
   * before it, and for a `post:` softdep the module it follows); loads wait for
   * a free slot. Resolves when every step has finished; a step that threw is
   * rethrown then, as the serial loop would.
   *
   * A step waits for one unfinished prerequisite at a time, in modules.dep
   * order (nearest first: usually the last to finish), and never holds a list
   * of them: a waiting step costs O(1) memory and the plan O(sum of its
   * dependency lists) time, even for a chain thousands of modules deep.
   */
  private async loadPlanAtOnce(plan: PlanStep[], target: string, base: object, device: string, enqueuedAt: number, down: Map<string, Down>): Promise<void> {
    const index = this.index; // a reload during the plan does not change what it waits for
    const position = new Map<string, number>();
    plan.forEach((step, i) => position.set(step.name, i));
    const steps: Promise<void>[] = [];
    const finished = new Set<string>();
    // The unfinished earlier step of this plan named so (only earlier ones: a cycle cannot make a step wait for itself).
    const unfinished = (name: string, i: number): Promise<void> | undefined => {
      const at = position.get(name);
      return at !== undefined && at < i && !finished.has(name) ? steps[at] : undefined;
    };
    for (const [i, step] of plan.entries()) {
      const run = async (): Promise<void> => {
        let wait: Promise<void> | undefined;
        for (const d of index.moduleByName(step.name)?.deps ?? []) if ((wait = unfinished(index.modules[d]!.name, i))) await wait;
        for (const pre of index.softdeps(step.name)?.pre ?? []) for (const name of index.lookup(pre).names) if ((wait = unfinished(name, i))) await wait;
        if (step.role === 'softdep-post' && step.dependencyOf !== undefined && (wait = unfinished(step.dependencyOf, i))) await wait;
        if (this.stopping || down.has(step.name)) return;
        // Another request is loading this module: wait for it, then decide on what the kernel says now.
        for (let other = this.active.get(step.name); other !== undefined; other = this.active.get(step.name)) await other;
        const work = this.decide(step, target, base, device, enqueuedAt, down);
        if (work !== 'stop' && work !== 'done') await this.exclusive(step.name, () => this.perform(work, device, enqueuedAt, down));
      };
      steps.push(run().finally(() => finished.add(step.name)));
    }
    const outcomes = await Promise.allSettled(steps);
    for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
  }

  /** Mark the module in flight for other requests and hold a load slot while `work` runs. */
  private async exclusive(name: string, work: () => Promise<void>): Promise<void> {
    let done!: () => void;
    this.active.set(name, new Promise<void>((r) => (done = r)));
    try {
      if (!this.slots.tryTake()) await this.slots.take();
      try {
        if (!this.stopping) await work();
      } finally {
        this.slots.release();
      }
    } finally {
      this.active.delete(name);
      done();
    }
  }

  /**
   * What to do with one step of a plan, decided on the state now (records for
   * builtin, present, in-flight, failed-before and dependency-failed are
   * written here): nothing more ('done'), stop (the queue is stopping), or
   * run the install command or load the module (perform).
   */
  private decide(step: PlanStep, target: string, base: object, device: string, enqueuedAt: number, down: Map<string, Down>): Work | 'done' | 'stop' {
    const rec = {
      ...base,
      module: step.name,
      ...(step.dependencyOf !== undefined ? { dependencyOf: step.dependencyOf, role: step.role } : {}),
    };
    if (step.builtin) {
      if (once(this.reportedBuiltin, step.name)) this.log.info({ ...rec, result: 'builtin' satisfies LoadResult }, LOAD_MSG);
      return 'done';
    }
    if (this.kernel.moduleState(step.name) === 'live') {
      if (step.name === target && once(this.reportedLoaded, step.name)) this.log.info({ ...rec, result: 'already-loaded' satisfies LoadResult }, LOAD_MSG);
      return 'done';
    }
    if (this.inFlight.has(step.name)) {
      // Left behind by the load timeout: the kernel still has it; never load it twice.
      markDown(down, step.name);
      this.skip(device, 'in-flight', { ...rec, path: step.path });
      return 'done';
    }
    const earlier = this.failed.get(step.name);
    if (earlier !== undefined) {
      // Failed before: not retried until the index is reloaded.
      markDown(down, step.name);
      this.skip(device, 'failed-before', { ...rec, path: step.path, code: earlier });
      return 'done';
    }
    const broken = this.downDependency(step.name, down);
    if (broken !== undefined) {
      markDown(down, step.name, broken.cause);
      this.skip(device, 'dependency-failed', { ...rec, path: step.path, failedDependency: broken.cause });
      return 'done';
    }
    if (this.stopping) return 'stop';
    const params = this.index.options(step.name, step.role === 'target' ? (base as { modalias?: string }).modalias : undefined);
    const command = installCommandFor(this.index, step.name);
    if (command !== undefined) return { step, rec, params, command };
    const path = this.resolvePath(step);
    if (typeof path !== 'string') {
      markDown(down, step.name);
      this.fail(step.name, device, { ...rec, path: step.path, result: 'failed' satisfies LoadResult, code: path.code, error: path.message }, enqueuedAt);
      return 'done';
    }
    return { step, rec, params, path };
  }

  /** Run the install command or load the module; a module that did not make it is down for its dependents. */
  private async perform(work: Work, device: string, enqueuedAt: number, down: Map<string, Down>): Promise<void> {
    const ok =
      work.command !== undefined
        ? await this.install(work.step, work.rec, work.command, work.params, device, enqueuedAt)
        : await this.load(work.step.name, device, work.rec, work.path!, work.params, enqueuedAt);
    if (!ok) markDown(down, work.step.name);
  }

  /**
   * Run (or refuse, or in dry-run report) a module's install command in place
   * of loading it. Returns false when the module is down for its dependents.
   */
  private async install(step: PlanStep, rec: Record<string, unknown>, command: string, params: string, device: string, enqueuedAt: number): Promise<boolean> {
    if (this.installPolicy === 'refuse' || this.runner === undefined) {
      // Decided again for every request (no failed-before): the reason stays "install-command".
      this.skip(device, 'install-command', { ...rec, command, ...(this.runner === undefined && this.installPolicy === 'run' ? { runner: 'none' } : {}) });
      return false;
    }
    if (this.commandsRan.has(step.name)) {
      // Once per module per index load: a storm of uevents does not run it again.
      this.skip(device, 'install-command-ran', { ...rec, command }, 'info');
      return true;
    }
    const full = substituteCmdlineOpts(command, params);
    const withParams = params !== '' ? { params } : {};
    // This record is the device's one for the module: no install-command-ran after it.
    this.firstForDevice(device, step.name);
    if (!this.kernel.loads) {
      this.commandsRan.add(step.name);
      this.counts.wouldRun++;
      this.log.info({ ...rec, command: full, ...withParams, result: 'would-run' satisfies LoadResult }, LOAD_MSG);
      return true;
    }
    const startedAt = this.now();
    const o = await this.runner.run({ module: step.name, command: full });
    const ms = round(this.now() - startedAt);
    const record = {
      ...rec,
      command: full,
      ...withParams,
      result: 'install-command' satisfies LoadResult,
      exitCode: o.exitCode,
      ...(o.signal !== null ? { signal: o.signal } : {}),
      ...(o.timedOut ? { timedOut: true } : {}),
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(o.output !== '' ? { output: o.output } : {}),
      ...(o.truncated ? { outputTruncated: true } : {}),
      ms,
      queueMs: round(startedAt - enqueuedAt),
    };
    this.counts.installCommands++;
    if (commandSucceeded(o)) {
      this.commandsRan.add(step.name);
      this.log.info(record, LOAD_MSG);
      return true;
    }
    this.fail(step.name, device, { ...record, code: commandFailureCode(o) }, enqueuedAt);
    return false;
  }

  /** Load with retries and the load timeout. Returns false when the module is down for its dependents. */
  private async load(name: string, device: string, rec: Record<string, unknown>, path: string, params: string, enqueuedAt: number): Promise<boolean> {
    const withParams = params !== '' ? { params } : {};
    for (let attempt = 1; ; attempt++) {
      const startedAt = this.now();
      const pending = this.kernel.load({ name, path, params });
      const outcome = await this.withTimeout(pending);
      const queueMs = round(startedAt - enqueuedAt);
      const tries = attempt > 1 ? { attempt } : {};
      if (outcome === TIMEOUT) {
        this.counts.loadTimeouts++;
        this.inFlight.add(name);
        this.log.warn({ ...rec, path, ...withParams, ms: round(this.now() - startedAt), loadTimeoutMs: this.loadTimeoutMs, ...tries }, LOAD_TIMEOUT_MSG);
        // The kernel answers some day: its record is written then, as usual.
        void pending.then(
          (late) => {
            this.inFlight.delete(name);
            this.record(name, device, late, { ...rec, path, ...withParams, ...tries }, startedAt, queueMs);
          },
          (e: unknown) => {
            this.inFlight.delete(name);
            this.log.error({ ...rec, path, err: e }, 'module load failed unexpectedly');
          },
        );
        return false;
      }
      if (!outcome.ok && TRANSIENT_ERRNOS.has(outcome.code) && attempt < this.maxAttempts && !this.stopping) {
        const retryInMs = this.retryDelayMs * 2 ** (attempt - 1);
        this.counts.retries++;
        this.log.warn(
          { ...rec, path, ...withParams, result: 'retrying' satisfies LoadResult, errno: outcome.errno, code: outcome.code, attempt, retryInMs, ms: round(this.now() - startedAt), queueMs },
          LOAD_MSG,
        );
        await new Promise((r) => setTimeout(r, retryInMs));
        if (this.stopping) return false;
        continue;
      }
      return this.record(name, device, outcome, { ...rec, path, ...withParams, ...tries }, startedAt, queueMs);
    }
  }

  /** Write a load's record; true when the module is now in the kernel. */
  private record(name: string, device: string, outcome: LoadOutcome, rec: Record<string, unknown>, startedAt: number, queueMs: number): boolean {
    const ms = round(this.now() - startedAt);
    if (outcome.ok) {
      this.reportedLoaded.add(name); // its record is this one: no "already-loaded" later
      const result: LoadResult = this.kernel.loads ? 'loaded' : 'would-load';
      if (this.kernel.loads) this.counts.loaded++;
      else this.counts.wouldLoad++;
      this.log.info({ ...rec, result, ms, queueMs }, LOAD_MSG);
      return true;
    }
    if (outcome.code === 'EEXIST') {
      this.reportedLoaded.add(name);
      const rest = { ...rec };
      delete rest.params; // nothing was loaded with them
      this.log.info({ ...rest, result: 'already-loaded' satisfies LoadResult, errno: outcome.errno, code: outcome.code, ms, queueMs }, LOAD_MSG);
      return true;
    }
    this.fail(
      name,
      device,
      {
        ...rec,
        result: 'failed' satisfies LoadResult,
        errno: outcome.errno,
        code: outcome.code,
        ...(outcome.message !== undefined ? { error: outcome.message } : {}),
        ms,
        queueMs,
      },
      startedAt,
    );
    return false;
  }

  private withTimeout(p: Promise<LoadOutcome>): Promise<LoadOutcome | typeof TIMEOUT> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMEOUT), this.loadTimeoutMs);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** Record a failure; that record is this device's one for the module (no failed-before after it). */
  private fail(name: string, device: string, record: Record<string, unknown>, enqueuedAt: number): void {
    const code = typeof record.code === 'string' ? record.code : 'EUNKNOWN';
    this.failed.set(name, code);
    this.firstForDevice(device, name);
    this.counts.failed++;
    this.log.error('queueMs' in record ? record : { ...record, queueMs: round(this.now() - enqueuedAt) }, LOAD_MSG);
  }

  /** The file to load: index paths as libkmod joins them (core/index/module-path.ts, resolveModulePath). */
  private resolvePath(step: PlanStep): string | { code: string; message: string } {
    if (step.path === null || step.path === '') {
      return { code: 'ENOENT', message: 'no module file for this name in the index' };
    }
    return resolveModulePath(this.modulesDir, step.path) ?? { code: 'E_PATH_ESCAPE', message: 'module path escapes the module directory' };
  }
}

/** A module (and its dependents) will not be loaded for this request; `cause` is the module that failed. */
function markDown(down: Map<string, Down>, name: string, cause = name): void {
  down.set(name, { cause, seq: down.size });
}

/** Add to a once-only set; true the first time. */
function once(set: Set<string>, name: string): boolean {
  if (set.has(name)) return false;
  set.add(name);
  return true;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
