/**
 * The daemon: uevent listener and coldplug feeding the load queue, with loss
 * detection, resync, systemd notification and reload. Every system resource
 * arrives through DaemonDeps, so tests drive it with fakes or the real ones.
 * This file holds the lifecycle, the state the parts share and the views the
 * control socket reads; the parts, one concern each: daemon-source.ts (the
 * uevent socket: intake, losses, resync scheduling, a socket gone deaf),
 * daemon-walks.ts (walks of /sys), daemon-reload.ts (SIGHUP),
 * settled-record.ts (the `settled` record and the start-up clock),
 * daemon-settle.ts (settle waiters), daemon-state.ts (small state pieces).
 *
 * Lifecycle contract:
 * - start() binds the socket, starts the walk, loads the index; on any failure
 *   it closes what it opened, aborts the walk and rejects (the caller exits
 *   111); READY=1 is sent only after a successful start and never after
 *   STOPPING=1;
 * - one walk at a time; walk requests that arrive during a walk merge into
 *   one more (daemon-walks.ts);
 * - one reload at a time; SIGHUPs during a reload merge into one more; a
 *   reload chooses the index source again, and a failed reload keeps the old
 *   index and says why (daemon-reload.ts);
 * - stop() aborts a walk in progress at once, lets the load in flight finish;
 * - a uevent socket that stops working (daemon-source.ts) is fatal: `fatal`
 *   resolves and WATCHDOG=1 stops: a deaf daemon must not keep feeding the
 *   watchdog;
 * - settle (waitSettled, the control socket's `settle`, --ready-after
 *   settled) answers exactly when settledFor holds: waiters are checked at
 *   every moment it can turn true (queue drained, walk ended, message read,
 *   quiet check), never while a request is queued or in flight.
 */
import { type ModuleIndex } from './core/index/module-index.js';
import { type LoadRequest, LoadQueue } from './core/queue.js';
import { type DaemonDeps } from './daemon-deps.js';
import { type ReloadResult, Reloads } from './daemon-reload.js';
import { type SettleOutcome, SettleWaiters } from './daemon-settle.js';
import { SourceWatch } from './daemon-source.js';
import { InFlight } from './daemon-state.js';
import { Walks } from './daemon-walks.js';
import { type HotplugError } from './errors.js';
import { SettledRecord } from './settled-record.js';

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export type { DaemonDeps } from './daemon-deps.js';

export class Daemon {
  private q: LoadQueue | undefined;
  private idx: ModuleIndex | undefined;
  private phase: Phase = 'new';
  private readonly uevents: SourceWatch;
  private readonly walks: Walks;
  private readonly reloads: Reloads;
  private readonly record: SettledRecord;
  private readonly abort = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private fatalResolve!: (e: HotplugError) => void;
  /** Resolves when the daemon cannot go on (its uevent socket stopped working); the caller exits non-zero. */
  readonly fatal: Promise<HotplugError>;
  /** Counters for the settled record and tests. */
  readonly stats = { events: 0, adds: 0, rejected: 0, lost: 0n, resyncs: 0, coldplugs: 0, reloads: 0 };
  /** Modules inside a load call now (status, settle). */
  private readonly inFlight = new InFlight();
  /** Callers of settle (control socket, --ready-after settled). */
  private readonly waiters: SettleWaiters;
  /** Every request as it is queued (the control socket's `why` history). */
  onRequest: ((req: LoadRequest) => void) | undefined;

  constructor(private readonly deps: DaemonDeps) {
    const stopping = (): boolean => this.stopping;
    this.uevents = new SourceWatch(deps, this.stats, {
      stopping,
      add: (ev) => this.submit({ modalias: ev.modalias, devpath: ev.devpath, seqnum: ev.seqnum, origin: 'uevent' }),
      // A message that queued nothing may be the last seqnum a settle waits for.
      read: () => {
        if (this.waiters.size > 0 && !this.q!.busy) this.waiters.check();
      },
      resync: () => void this.walks.request('resync'),
      dead: (e) => {
        for (const t of this.timers) clearInterval(t); // no more WATCHDOG=1
        this.fatalResolve(e);
      },
    });
    this.record = new SettledRecord(deps, this.stats, {
      counts: () => this.queue.counts,
      index: () => this.idx!,
      running: () => this.phase === 'running',
      idle: () => this.q !== undefined && !this.q.busy && !this.walks.running,
    });
    this.walks = new Walks(deps, this.abort.signal, this.stats, {
      stopping,
      submit: (req) => this.submit(req),
      over: () => this.drained(),
      startWalked: () => this.record.clock.mark('walkDone'),
    });
    this.reloads = new Reloads(deps, this.stats, {
      running: () => this.phase === 'running',
      current: () => this.idx!,
      swap: (next) => {
        this.idx = next;
        this.queue.reload(next);
      },
      walk: () => this.walks.request('reload'),
    });
    this.fatal = new Promise((resolve) => (this.fatalResolve = resolve));
    this.waiters = new SettleWaiters((target) => this.settledFor(target));
  }

  private submit(req: LoadRequest): void {
    this.record.touch();
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
    if (this.phase !== 'running' || this.q === undefined || this.q.busy || this.walks.running || this.uevents.resyncScheduled) return false;
    return target === undefined || (this.uevents.latest ?? -1n) >= target;
  }

  /** Wait until settledFor(the kernel's seqnum now); settled=false after timeoutMs (0: answer at once). */
  waitSettled(timeoutMs: number, signal?: AbortSignal): Promise<SettleOutcome> {
    return this.waiters.wait(this.deps.readKernelSeqnum(), timeoutMs, signal);
  }

  /** Settle callers waiting now (tests: none is left behind by a client that went away). */
  get settleWaiters(): number {
    return this.waiters.size;
  }

  /**
   * What keeps the daemon from being settled now (settle's answer on timeout,
   * status), and `stuck`: loads the load timeout gave up waiting for that
   * are still inside the kernel, and install commands still running past
   * --install-timeout and its grace. Those do not hold settle (a driver hung in
   * its init would hold boot forever; udevd's settle, too, stops waiting for
   * a worker its event timeout gave up on); settle's answer names them.
   */
  pending(): Record<string, unknown> {
    return {
      phase: this.phase,
      queued: this.q?.depth ?? 0,
      inFlight: this.inFlight.names(),
      stuck: this.q?.stuckModules ?? [],
      walking: this.walks.running,
      resyncScheduled: this.uevents.resyncScheduled,
      seqnum: { handled: this.uevents.latest?.toString() ?? null, kernel: this.deps.readKernelSeqnum()?.toString() ?? null },
    };
  }

  /** Modules inside a load call now. */
  inFlightModules(): string[] {
    return this.inFlight.names();
  }

  /** When the last `settled` record was written (ISO time). */
  get lastSettledAt(): string | undefined {
    return this.record.lastAt;
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
    const clock = this.record.clock;
    const preloading = this.deps.preload?.().catch((e: unknown) => log.error({ err: e }, 'code for later use could not be loaded'));
    const source = this.uevents.open();
    clock.mark('socketBound');
    this.uevents.baseline();
    // The first walk starts before the index loads; devices it finds are
    // queued as they come (the queue exists by the time any walk callback can
    // run: nothing below yields before creating it).
    const walking = this.deps.skipColdplug ? undefined : this.walks.request('start');
    walking?.catch(() => undefined); // awaited below; settled here so a failed index load leaves no unhandled rejection
    const indexAt = performance.now();
    const index = this.deps.loadIndex();
    const indexMs = Math.round((performance.now() - indexAt) * 10) / 10;
    this.idx = index;
    clock.mark('indexReady');
    this.q = new LoadQueue({ index, kernel: this.inFlight.wrap(clock.timed(this.deps.kernel)), log, modulesDir: this.deps.modulesDir, ...this.deps.queue });
    this.q.onIdle = () => this.drained();
    // Each socket problem is one warning of its own, not repeated in the listening record.
    const { problems, ...socket } = source.info;
    log.info({ ...socket, kernel: this.deps.kernel.kind, modulesDir: this.deps.modulesDir, index: index.source, ...index.stats(), indexMs }, 'listening');
    for (const p of problems) log.warn({ problem: p }, 'uevent socket');
    this.uevents.listen();
    if (walking === undefined) log.info({ why: 'start' }, 'coldplug skipped');
    else await walking;
    await preloading;
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

  /** Every quietCheckMs: the socket still works and is not behind the kernel; settle waiters. */
  private quietCheck(): void {
    this.uevents.quietCheck();
    if (this.waiters.size > 0) this.waiters.check();
  }

  /** The queue drained and no walk runs: settle waiters, the settled record, the idle hook. */
  private drained(): void {
    if (this.stopping || this.q === undefined || this.q.busy || this.walks.running) return;
    this.waiters.check();
    this.record.drained(this.q.counts);
    if (this.phase === 'running') this.deps.idle?.();
  }

  /**
   * SIGHUP: reload index and configuration, then walk /sys again (see
   * daemon-reload.ts). Resolves false when the new index could not be read
   * (the old one stays) or the daemon is not running.
   */
  reload(): Promise<ReloadResult> {
    return this.reloads.run();
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
    this.record.cancel();
    this.waiters.cancel();
    this.uevents.close();
  }
}
