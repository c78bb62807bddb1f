/**
 * The daemon: uevent listener and coldplug feeding the load queue, with loss
 * detection, resync, systemd notification and reload. Every system resource
 * arrives through DaemonDeps, so tests drive it with fakes or the real ones.
 */
import { type ModuleIndex } from './core/index.js';
import { type Kernel } from './core/kernel.js';
import { type Log, LoadQueue, type QueuePolicy } from './core/queue.js';
import { parseUevent, SeqnumTracker } from './core/uevent.js';
import { type ColdplugEntry, type ColdplugResult } from './sys/coldplug.js';
import { type UeventSource } from './sys/netlink.js';
import { type Notifier } from './sys/notify.js';

export interface DaemonDeps {
  log: Log;
  loadIndex: () => ModuleIndex;
  kernel: Kernel;
  /** Opens and binds the uevent socket (before the walk: no event can fall between). */
  openSource: () => UeventSource;
  /** Walks /sys; each device found is passed to onEntry as soon as it is read. */
  walk: (onEntry?: (e: ColdplugEntry) => void) => Promise<ColdplugResult>;
  /** /sys/kernel/uevent_seqnum, or undefined when unreadable. */
  readKernelSeqnum: () => bigint | undefined;
  notifier: Notifier;
  modulesDir: string;
  /** $WATCHDOG_USEC: send WATCHDOG=1 at half this period. */
  watchdogUsec?: number | undefined;
  /** Minimum time between two resync walks. */
  resyncIntervalMs?: number;
  /** How often to compare the last SEQNUM seen with the kernel's. */
  quietCheckMs?: number;
  /** Do not walk at start (an initramfs already did); resyncs still walk. */
  skipColdplug?: boolean;
  /** Install-command runner and policy, load timeout (commands/daemon-setup.ts queuePolicy). */
  queue?: QueuePolicy;
}

/** Rejected-message logging: the first few of each reason per minute, then a count. */
class RejectLog {
  private window = 0;
  private readonly counts = new Map<string, number>();
  total = 0;
  constructor(
    private readonly log: Log,
    private readonly perMinute = 10,
  ) {}

  add(reason: string, port: number): void {
    this.total++;
    const minute = Math.floor(Date.now() / 60000);
    if (minute !== this.window) this.flush(minute);
    const n = (this.counts.get(reason) ?? 0) + 1;
    this.counts.set(reason, n);
    if (n <= this.perMinute) this.log.warn({ reason, senderPort: port, rejected: this.total }, 'uevent rejected');
  }

  private flush(minute: number): void {
    for (const [reason, n] of this.counts) {
      if (n > this.perMinute) this.log.warn({ reason, suppressed: n - this.perMinute }, 'uevents rejected (summary)');
    }
    this.counts.clear();
    this.window = minute;
  }
}

export class Daemon {
  private q: LoadQueue | undefined;
  private idx: ModuleIndex | undefined;
  private source: UeventSource | undefined;
  private readonly tracker = new SeqnumTracker();
  private readonly rejects: RejectLog;
  private timers: NodeJS.Timeout[] = [];
  private lastResync = -Infinity;
  private resyncRunning = false;
  private resyncPending = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private checkpoint: bigint | undefined;
  private busySinceSettled = false;
  /** Walks in progress: the queue draining mid-walk is not "settled". */
  private walks = 0;
  private ready = false;
  private readonly startedAt = performance.now();
  private stopped = false;
  /** Counters for the settled record and tests. */
  readonly stats = { events: 0, adds: 0, rejected: 0, lost: 0n, resyncs: 0, coldplugs: 0 };

  constructor(private readonly deps: DaemonDeps) {
    this.rejects = new RejectLog(deps.log);
  }

  /** The load queue (exists once start() has loaded the index). */
  get queue(): LoadQueue {
    if (this.q === undefined) throw new Error('daemon not started');
    return this.q;
  }

  private get index(): ModuleIndex {
    if (this.idx === undefined) throw new Error('daemon not started');
    return this.idx;
  }

  /**
   * Bind, then walk: READY=1 once the coldplug requests are queued. The walk
   * (file reads on libuv's threads) runs while the index loads (JavaScript on
   * this one): the socket is bound first, and no message is read before the
   * handler is in place, since nothing yields to the event loop in between.
   */
  async start(): Promise<void> {
    const { log } = this.deps;
    const source = this.deps.openSource();
    this.source = source;
    this.tracker.reset(this.deps.readKernelSeqnum());
    // Devices found are queued as they come (the queue exists by the time
    // any walk callback can run: start() does not yield before creating it).
    const seen = new Set<string>();
    if (!this.deps.skipColdplug) this.walks++;
    const walking = this.deps.skipColdplug ? undefined : this.deps.walk((e) => this.queueDevice(e, seen));
    // Settle the promise's rejection handling now; it is awaited below.
    walking?.catch(() => undefined);
    const index = this.deps.loadIndex();
    this.idx = index;
    this.q = new LoadQueue({ index, kernel: this.deps.kernel, log, modulesDir: this.deps.modulesDir, ...this.deps.queue });
    this.q.onIdle = () => this.settled();
    log.info({ ...source.info, kernel: this.deps.kernel.kind, index: index.source, ...index.stats() }, 'listening');
    for (const p of source.info.problems) log.warn({ problem: p }, 'uevent socket');
    source.onMessage((msg, port) => this.onMessage(msg, port));
    source.onError((err) => {
      const code = (err as NodeJS.ErrnoException).code;
      log.error({ err, code }, 'uevent socket error');
      if (code === 'ENOBUFS') this.lost(1n, 'ENOBUFS');
    });
    if (walking === undefined) log.info({ why: 'start' }, 'coldplug skipped');
    else await this.coldplug('start', walking);
    this.ready = true;
    this.deps.notifier.notify(`READY=1\nSTATUS=coldplug queued: ${this.queue.counts.requests} requests`);
    const wd = this.deps.watchdogUsec;
    if (wd !== undefined && wd > 0) {
      this.timers.push(setInterval(() => this.deps.notifier.notify('WATCHDOG=1'), Math.max(1, Math.floor(wd / 2000))));
    }
    this.timers.push(setInterval(() => this.quietCheck(), this.deps.quietCheckMs ?? 2000));
    for (const t of this.timers) t.unref();
  }

  private onMessage(msg: Buffer, port: number): void {
    this.stats.events++;
    if (port !== 0) {
      this.stats.rejected++;
      this.rejects.add('sender is not the kernel', port);
      return;
    }
    const r = parseUevent(msg);
    if (!r.ok) {
      this.stats.rejected++;
      this.rejects.add(r.reason, port);
      return;
    }
    const ev = r.event;
    const gap = this.tracker.see(ev.seqnum!);
    if (gap > 0n) this.lost(gap, 'seqnum gap');
    if (ev.action === 'add' && ev.modalias !== undefined && ev.modalias !== '') {
      this.stats.adds++;
      this.busySinceSettled = true;
      this.queue.submit({ modalias: ev.modalias, devpath: ev.devpath, seqnum: ev.seqnum, origin: 'uevent' });
    }
  }

  /** A quiet socket whose last SEQNUM stays behind the kernel's lost the tail of a burst. */
  private quietCheck(): void {
    const k = this.deps.readKernelSeqnum();
    if (k === undefined) return;
    const latest = this.tracker.latest ?? 0n;
    if (this.checkpoint !== undefined && latest < this.checkpoint) {
      this.lost(this.checkpoint - latest, 'behind /sys/kernel/uevent_seqnum');
      this.tracker.reset(k);
    }
    this.checkpoint = k > latest ? k : undefined;
  }

  private lost(count: bigint, reason: string): void {
    this.stats.lost += count;
    this.deps.log.warn({ lost: count.toString(), reason, lostTotal: this.stats.lost.toString() }, 'uevents lost; resync scheduled');
    this.scheduleResync();
  }

  private scheduleResync(): void {
    if (this.stopped) return;
    if (this.resyncRunning || this.resyncTimer !== undefined) {
      this.resyncPending = true;
      return;
    }
    const wait = Math.max(0, this.lastResync + (this.deps.resyncIntervalMs ?? 2000) - performance.now());
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync();
    }, wait);
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    this.resyncRunning = true;
    this.resyncPending = false;
    this.lastResync = performance.now();
    this.stats.resyncs++;
    try {
      await this.coldplug('resync');
    } finally {
      this.resyncRunning = false;
      if (this.resyncPending) this.scheduleResync();
    }
  }

  /** Walk /sys and queue every distinct modalias. */
  private queueDevice(e: ColdplugEntry, seen: Set<string>): void {
    if (seen.has(e.modalias)) return;
    seen.add(e.modalias);
    this.busySinceSettled = true;
    this.queue.submit({ modalias: e.modalias, devpath: e.devpath, origin: 'coldplug' });
  }

  /** Walk /sys and queue every distinct modalias (as found, when `walking` was started that way). */
  private async coldplug(why: 'start' | 'resync' | 'reload', walking?: Promise<ColdplugResult>): Promise<void> {
    const { log } = this.deps;
    const seen = new Set<string>();
    if (walking === undefined) this.walks++;
    let r: ColdplugResult;
    try {
      r = await (walking ?? this.deps.walk((e) => this.queueDevice(e, seen)));
    } finally {
      this.walks--;
    }
    this.stats.coldplugs++;
    for (const e of r.errors.slice(0, 5)) log.warn({ path: e.path, code: e.code }, 'coldplug: unreadable entry skipped');
    const distinct = new Set(r.entries.map((e) => e.modalias)).size;
    log.info({ why, devices: r.devices, modaliases: r.entries.length, distinct, unreadable: r.errors.length, ms: r.ms }, 'coldplug');
    if (!this.queue.busy) this.settled();
  }

  private settled(): void {
    if (!this.busySinceSettled || this.stopped || this.walks > 0) return;
    this.busySinceSettled = false;
    const c = this.queue.counts;
    this.deps.log.info(
      {
        ...c,
        events: this.stats.events,
        rejected: this.stats.rejected,
        lost: this.stats.lost.toString(),
        resyncs: this.stats.resyncs,
        sinceStartMs: Math.round(performance.now() - this.startedAt),
        processMs: Math.round(process.uptime() * 1000),
      },
      'settled',
    );
    if (this.ready) this.deps.notifier.notify(`STATUS=settled: ${c.loaded} loaded, ${c.failed} failed, ${c.wouldLoad} would load`);
  }

  /** SIGHUP: reload index and configuration; keep the old ones if the new cannot be read. */
  async reload(): Promise<boolean> {
    const { log } = this.deps;
    this.deps.notifier.notify('RELOADING=1');
    let next: ModuleIndex;
    try {
      next = this.deps.loadIndex();
    } catch (e) {
      log.error({ err: e, code: (e as { code?: string }).code }, 'reload failed; keeping the current index');
      this.deps.notifier.notify('READY=1');
      return false;
    }
    const before = this.index.stats();
    const after = next.stats();
    this.idx = next;
    this.queue.reload(next);
    log.info(
      {
        index: next.source,
        modules: { before: before.modules, after: after.modules },
        aliases: { before: before.aliases, after: after.aliases },
        blacklist: next.config.blacklist.size,
        options: next.config.options.size,
        warnings: next.warnings.length,
      },
      'reloaded',
    );
    await this.coldplug('reload');
    this.deps.notifier.notify('READY=1');
    return true;
  }

  /** SIGTERM: stop listening, let the load in flight finish. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.deps.notifier.notify('STOPPING=1');
    for (const t of this.timers) clearInterval(t);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.source?.close();
    const dropped = this.q ? await this.q.stop() : 0;
    this.deps.log.info({ dropped, ...this.q?.counts }, 'stopped');
    this.deps.notifier.close();
  }
}
