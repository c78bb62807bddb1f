/**
 * The daemon: uevent listener and coldplug feeding the load queue, with loss
 * detection, resync, systemd notification and reload. Every system resource
 * arrives through DaemonDeps, so tests drive it with fakes or the real ones.
 *
 * Lifecycle contract:
 * - start() binds the socket, starts the walk, loads the index; on any failure
 *   it closes what it opened, aborts the walk and rejects (the caller exits
 *   111); READY=1 is sent only after a successful start and never after
 *   STOPPING=1;
 * - one walk at a time (start, resync, reload share one Serial; a walk holds
 *   one descriptor at a time); walk requests that arrive during a walk merge
 *   into one more;
 * - one reload at a time; SIGHUPs during a reload merge into one more; a
 *   reload chooses the index source again (DaemonDeps.loadIndex does), and a
 *   failed reload keeps the old index and says why;
 * - stop() aborts a walk in progress at once, lets the load in flight finish;
 * - a uevent socket that stops working is fatal (`fatal` resolves): a deaf
 *   daemon must not keep feeding the watchdog;
 * - settle (waitSettled, the control socket's `settle`, --ready-after
 *   settled) answers exactly when settledFor holds: waiters are checked at
 *   every moment it can turn true (queue drained, walk ended, message read,
 *   quiet check), never while a request is queued or in flight.
 */
import { type ModuleIndex } from './core/index/module-index.js';
import { type LoadRequest, LoadQueue } from './core/queue.js';
import { type DaemonDeps } from './daemon-deps.js';
import { InFlight, Serial, SettleTracker } from './daemon-state.js';
import { StartupClock } from './startup-clock.js';
import { UeventIntake } from './uevent-intake.js';
import { type SettleOutcome, SettleWaiters } from './daemon-settle.js';
import { HotplugError } from './errors.js';
import { type ColdplugEntry, type ColdplugResult } from './sys/coldplug.js';
import { type UeventSource } from './sys/netlink.js';

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
type WalkWhy = 'start' | 'resync' | 'reload';

const ABORTED: unique symbol = Symbol('aborted');

export type { DaemonDeps } from './daemon-deps.js';

export class Daemon {
  private q: LoadQueue | undefined;
  private idx: ModuleIndex | undefined;
  private source: UeventSource | undefined;
  private phase: Phase = 'new';
  private readonly intake: UeventIntake;
  private readonly settle: SettleTracker;
  private readonly abort = new AbortController();
  private readonly aborted: Promise<typeof ABORTED>;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Why the next walk runs (requests merged while one runs). */
  private readonly walkReasons = new Set<WalkWhy>();
  private readonly walks: Serial<void>;
  private readonly reloads: Serial<boolean>;
  private lastResync = -Infinity;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = performance.now();
  private fatalResolve!: (e: HotplugError) => void;
  /** Resolves when the daemon cannot go on (its uevent socket stopped working); the caller exits non-zero. */
  readonly fatal: Promise<HotplugError>;
  /** Where start-up time went, for the first settled record. */
  private readonly clock = new StartupClock();
  private startupReported = false;
  /** Counters for the settled record and tests. */
  readonly stats = { events: 0, adds: 0, rejected: 0, lost: 0n, resyncs: 0, coldplugs: 0, reloads: 0 };
  /** Modules inside a load call now (status, settle). */
  private readonly inFlight = new InFlight();
  /** Callers of settle (control socket, --ready-after settled). */
  private readonly waiters: SettleWaiters;
  /** When the last `settled` record was written (ISO time). */
  lastSettledAt: string | undefined;
  /** Every request as it is queued (the control socket's `why` history). */
  onRequest: ((req: LoadRequest) => void) | undefined;

  constructor(private readonly deps: DaemonDeps) {
    this.intake = new UeventIntake(
      deps.log,
      this.stats,
      (ev) => this.submit({ modalias: ev.modalias, devpath: ev.devpath, seqnum: ev.seqnum, origin: 'uevent' }),
      (count, reason) => this.lost(count, reason),
    );
    this.settle = new SettleTracker(
      () => this.writeSettled(),
      () => this.q !== undefined && !this.q.busy && !this.walks.running,
      deps.settleIntervalMs ?? 1000,
    );
    this.aborted = new Promise((resolve) => this.abort.signal.addEventListener('abort', () => resolve(ABORTED), { once: true }));
    this.walks = new Serial(() => this.walkOnce());
    this.reloads = new Serial(() => this.reloadOnce());
    this.fatal = new Promise((resolve) => (this.fatalResolve = resolve));
    this.waiters = new SettleWaiters((target) => this.settledFor(target));
  }

  private submit(req: LoadRequest): void {
    this.settle.touch();
    this.queue.submit(req);
    this.onRequest?.(req);
  }

  /**
   * Settled for a caller who asked when the kernel's seqnum was `target`:
   * running, every uevent up to `target` read (a message is queued in the same
   * turn it is read), no walk running or resync scheduled (seqnums lost or
   * sent only to other network namespaces are covered by the resync walk the
   * intake's gap and quiet checks schedule), nothing queued or in flight.
   */
  settledFor(target: bigint | undefined): boolean {
    if (this.phase !== 'running' || this.q === undefined || this.q.busy || this.walks.running || this.resyncTimer !== undefined) return false;
    return target === undefined || (this.intake.latest ?? -1n) >= target;
  }

  /** Wait until settledFor(the kernel's seqnum now); settled=false after timeoutMs (0: answer at once). */
  waitSettled(timeoutMs: number, signal?: AbortSignal): Promise<SettleOutcome> {
    return this.waiters.wait(this.deps.readKernelSeqnum(), timeoutMs, signal);
  }

  /** Settle callers waiting now (tests: none is left behind by a client that went away). */
  get settleWaiters(): number {
    return this.waiters.size;
  }

  /** What keeps the daemon from being settled now (settle's answer on timeout, status). */
  pending(): Record<string, unknown> {
    return {
      phase: this.phase,
      queued: this.q?.depth ?? 0,
      inFlight: this.inFlight.names(),
      walking: this.walks.running,
      resyncScheduled: this.resyncTimer !== undefined,
      seqnum: { handled: this.intake.latest?.toString() ?? null, kernel: this.deps.readKernelSeqnum()?.toString() ?? null },
    };
  }

  /** Modules inside a load call now. */
  inFlightModules(): string[] {
    return this.inFlight.names();
  }

  /** The index in use (status, why); undefined before start() loaded it. */
  get index(): ModuleIndex | undefined {
    return this.idx;
  }

  get phaseName(): Phase {
    return this.phase;
  }

  /** The load queue (exists once start() has loaded the index). */
  get queue(): LoadQueue {
    if (this.q === undefined) throw new Error('daemon not started');
    return this.q;
  }

  /** Whether start() has loaded the index (the queue exists). */
  get started(): boolean {
    return this.q !== undefined;
  }

  get running(): boolean {
    return this.phase === 'running';
  }

  private get stopping(): boolean {
    return this.phase === 'stopping' || this.phase === 'stopped';
  }

  /**
   * Bind, then walk: READY=1 once the coldplug requests are queued. The walk
   * (file reads on libuv's threads) runs while the index loads (JavaScript on
   * this one): the socket is bound first, and no message is read before the
   * handler is in place, since nothing yields to the event loop in between.
   * Rejects (after closing everything) when start-up fails; resolves without
   * READY=1 when stop() came first.
   */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`start() called when ${this.phase}`);
    this.phase = 'starting';
    try {
      await this.startUp();
    } catch (e) {
      this.shutdown();
      this.phase = 'stopped';
      throw e;
    }
  }

  private async startUp(): Promise<void> {
    const { log } = this.deps;
    const source = this.deps.openSource();
    this.source = source;
    this.clock.mark('socketBound');
    this.intake.reset(this.deps.readKernelSeqnum());
    // The first walk starts before the index loads; devices it finds are
    // queued as they come (the queue exists by the time any walk callback can
    // run: nothing below yields before creating it).
    const walking = this.deps.skipColdplug ? undefined : this.walkNow('start');
    walking?.catch(() => undefined); // awaited below; settled here so a failed index load leaves no unhandled rejection
    const indexAt = performance.now();
    const index = this.deps.loadIndex();
    const indexMs = Math.round((performance.now() - indexAt) * 10) / 10;
    this.idx = index;
    this.clock.mark('indexReady');
    this.q = new LoadQueue({ index, kernel: this.inFlight.wrap(this.clock.timed(this.deps.kernel)), log, modulesDir: this.deps.modulesDir, ...this.deps.queue });
    this.q.onIdle = () => this.drained();
    log.info({ ...source.info, kernel: this.deps.kernel.kind, index: index.source, ...index.stats(), indexMs }, 'listening');
    for (const p of source.info.problems) log.warn({ problem: p }, 'uevent socket');
    source.onMessage((msg, port) => this.onMessage(msg, port));
    source.onError((err) => this.onSourceError(err));
    if (walking === undefined) log.info({ why: 'start' }, 'coldplug skipped');
    else await walking;
    if (this.phase !== 'starting') return; // stop() came first: no READY=1
    this.phase = 'running';
    if (this.deps.readyAfter === 'settled') {
      // READY=1 once the coldplug loads are done (no seqnum target: what the walk queued).
      void this.waiters.wait(undefined, Infinity).then((o) => {
        if (o.settled && this.phase === 'running') this.ready(`READY=1\nSTATUS=coldplug done: ${this.queue.counts.requests} requests`);
      });
    } else this.ready(`READY=1\nSTATUS=coldplug queued: ${this.queue.counts.requests} requests`);
    const wd = this.deps.watchdogUsec;
    if (wd !== undefined && wd > 0) {
      this.timers.push(setInterval(() => this.deps.notifier.notify('WATCHDOG=1'), Math.max(1, Math.floor(wd / 2000))));
    }
    this.timers.push(setInterval(() => this.quietCheck(), this.deps.quietCheckMs ?? 2000));
    for (const t of this.timers) t.unref();
    this.drained();
  }

  private ready(state: string): void {
    this.deps.notifier.notify(state);
    const problem = this.deps.notifier.lastError;
    if (problem !== undefined) this.deps.log.warn({ problem }, 'systemd notification failed');
  }

  private onMessage(msg: Buffer, port: number): void {
    if (this.stopping) return;
    this.intake.message(msg, port);
    // A message that queued nothing may be the last seqnum a settle waits for.
    if (this.waiters.size > 0 && !this.q!.busy) this.waiters.check();
  }

  private onSourceError(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    this.deps.log.error({ err, code }, 'uevent socket error');
    if (code === 'ENOBUFS') this.lost(1n, 'ENOBUFS');
    this.checkSource();
  }

  /** A socket the add-on closed (after a poll error) hears nothing: fatal, so that systemd restarts us. */
  private checkSource(): void {
    if (this.stopping || this.source === undefined || this.source.alive()) return;
    const e = new HotplugError('E_SYSTEM', 'the uevent socket stopped working: no device events can be received');
    this.deps.log.error({ code: e.code }, 'uevent socket closed');
    for (const t of this.timers) clearInterval(t); // no more WATCHDOG=1
    this.fatalResolve(e);
  }

  /** Every quietCheckMs: the socket still works, and a quiet one is not behind the kernel. */
  private quietCheck(): void {
    this.checkSource();
    this.intake.quietCheck(this.deps.readKernelSeqnum());
    if (this.waiters.size > 0) this.waiters.check();
  }

  private lost(count: bigint, reason: string): void {
    this.stats.lost += count;
    this.deps.log.warn({ lost: count.toString(), reason, lostTotal: this.stats.lost.toString() }, 'uevents lost; resync scheduled');
    this.scheduleResync();
  }

  /** A resync walk, at most one per resync interval; requests meanwhile merge. */
  private scheduleResync(): void {
    if (this.stopping || this.resyncTimer !== undefined) return;
    const wait = Math.max(0, this.lastResync + (this.deps.resyncIntervalMs ?? 2000) - performance.now());
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.lastResync = performance.now();
      this.stats.resyncs++;
      void this.walkNow('resync');
    }, wait);
  }

  /** Request a walk: runs now, or once more after the one in progress (requests merge). */
  private walkNow(why: WalkWhy): Promise<void> {
    this.walkReasons.add(why);
    return this.walks.run();
  }

  /** One walk of /sys, queueing every distinct modalias as it is found. */
  private async walkOnce(): Promise<void> {
    const why: WalkWhy = this.walkReasons.has('reload') ? 'reload' : this.walkReasons.has('start') ? 'start' : 'resync';
    this.walkReasons.clear();
    if (this.stopping) return;
    const { log } = this.deps;
    const seen = new Set<string>();
    const onEntry = (e: ColdplugEntry): void => {
      if (this.stopping || seen.has(e.modalias)) return;
      seen.add(e.modalias);
      this.submit({ modalias: e.modalias, devpath: e.devpath, origin: 'coldplug' });
    };
    let r: ColdplugResult | typeof ABORTED;
    try {
      r = await Promise.race([this.deps.walk(onEntry, this.abort.signal), this.aborted]);
    } catch (e) {
      if (this.stopping) return;
      log.error({ err: e, why }, 'coldplug walk failed');
      setImmediate(() => this.drained()); // settle waiters: the walk is over all the same
      return;
    }
    if (r === ABORTED || this.stopping) return;
    this.stats.coldplugs++;
    if (why === 'start') this.clock.mark('walkDone');
    for (const e of r.errors.slice(0, 5)) log.warn({ path: e.path, code: e.code }, 'coldplug: unreadable entry skipped');
    log.info({ why, devices: r.devices, modaliases: r.entries.length, distinct: seen.size, unreadable: r.errors.length, ms: r.ms }, 'coldplug');
    // The queue may have drained during the walk: check once the walk is over.
    setImmediate(() => this.drained());
  }

  private drained(): void {
    if (this.stopping || this.q === undefined || this.q.busy || this.walks.running) return;
    this.waiters.check();
    const c = this.q.counts;
    this.settle.drained({ loaded: c.loaded, failed: c.failed, skipped: c.skipped, blacklisted: c.blacklisted, wouldLoad: c.wouldLoad });
    if (this.phase === 'running') this.deps.idle?.();
  }

  private writeSettled(): void {
    const c = this.queue.counts;
    let startup: object = {};
    if (!this.startupReported) {
      // The first settled record after start says where the start-up time went.
      this.startupReported = true;
      this.clock.mark('settled');
      startup = { ...this.clock.report(), indexSource: this.idx!.source, indexKind: this.idx!.kind };
    }
    this.deps.log.info(
      {
        ...c,
        ...startup,
        events: this.stats.events,
        rejected: this.stats.rejected,
        lost: this.stats.lost.toString(),
        resyncs: this.stats.resyncs,
        sinceStartMs: Math.round(performance.now() - this.startedAt),
        processMs: Math.round(process.uptime() * 1000),
      },
      'settled',
    );
    this.lastSettledAt = new Date().toISOString();
    if (this.phase === 'running') this.deps.notifier.notify(`STATUS=settled: ${c.loaded} loaded, ${c.failed} failed, ${c.wouldLoad} would load`);
  }

  /**
   * SIGHUP: reload index and configuration, then walk /sys again. One at a
   * time; calls during a reload merge into one more. Resolves false when the
   * new index could not be read (the old one stays) or the daemon is not running.
   */
  reload(): Promise<boolean> {
    if (this.phase !== 'running') return Promise.resolve(false);
    return this.reloads.run();
  }

  private async reloadOnce(): Promise<boolean> {
    if (this.phase !== 'running') return false;
    const { log } = this.deps;
    this.deps.notifier.notify('RELOADING=1');
    let next: ModuleIndex;
    const indexAt = performance.now();
    try {
      next = this.deps.loadIndex();
    } catch (e) {
      log.error({ err: e, code: (e as { code?: string }).code }, 'reload failed; keeping the current index');
      if (this.phase === 'running') this.deps.notifier.notify('READY=1');
      return false;
    }
    if (this.phase !== 'running') return false;
    const before = this.idx!.stats();
    const after = next.stats();
    this.idx = next;
    this.queue.reload(next);
    this.stats.reloads++;
    log.info(
      {
        index: next.source,
        kind: next.kind,
        ...(next.fallback !== undefined ? { fallback: next.fallback } : {}),
        modules: { before: before.modules, after: after.modules },
        aliases: { before: before.aliases, after: after.aliases },
        blacklist: next.config.blacklist.size,
        options: next.config.options.size,
        warnings: next.warnings.length,
        indexMs: Math.round((performance.now() - indexAt) * 10) / 10,
      },
      'reloaded',
    );
    await this.walkNow('reload');
    if (this.phase === 'running') this.deps.notifier.notify('READY=1');
    return true;
  }

  /** SIGTERM: stop listening, abort a walk in progress, let the load in flight finish. */
  async stop(): Promise<void> {
    if (this.stopping || this.phase === 'new') {
      this.phase = 'stopped';
      return;
    }
    this.phase = 'stopping';
    this.deps.notifier.notify('STOPPING=1');
    this.shutdown();
    const dropped = this.q ? await this.q.stop() : 0;
    this.deps.log.info({ dropped, ...this.q?.counts }, 'stopped');
    this.deps.notifier.close();
    this.phase = 'stopped';
  }

  /** Close everything start() opened; safe to call more than once. */
  private shutdown(): void {
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    this.settle.cancel();
    this.waiters.cancel();
    const source = this.source;
    this.source = undefined;
    try {
      source?.close();
    } catch {
      // already closed by the add-on
    }
  }
}
