/**
 * The daemon's uevent socket, once bound: loss detection, resync scheduling,
 * and the check that the socket still works. Contract:
 * - each message goes to the intake (uevent-intake.ts: kernel senders only,
 *   parsing, SEQNUM gaps), unless the daemon is stopping;
 * - a loss (ENOBUFS, a SEQNUM gap, a quiet socket whose last SEQNUM stays
 *   behind /sys/kernel/uevent_seqnum) schedules a resync walk, at most one
 *   per resync interval; losses while one is scheduled merge into it;
 * - a socket that stops working (the add-on closed it after a poll error) is
 *   reported through `dead` by the socket error or quiet check that finds it
 *   so (the daemon treats it as fatal: a deaf daemon must not keep feeding
 *   the watchdog);
 * - close() cancels a scheduled resync and closes the socket; safe to call
 *   more than once.
 */
import { type Uevent } from './core/uevent.js';
import { type DaemonDeps } from './daemon-deps.js';
import { HotplugError } from './errors.js';
import { type IntakeStats, UeventIntake } from './uevent-intake.js';
import { type UeventSource } from './sys/netlink.js';

export interface SourceHooks {
  /** The daemon is stopping: messages are dropped, no resync is scheduled, a dead socket is not reported. */
  stopping: () => boolean;
  /** An `add` uevent with a MODALIAS. */
  add: (ev: Uevent) => void;
  /** A message was read (and handed to the intake): it may be the last seqnum a settle waits for. */
  read: () => void;
  /** The resync interval allows it: walk /sys again. */
  resync: () => void;
  /** The socket stopped working: the daemon cannot go on. */
  dead: (e: HotplugError) => void;
}

export class SourceWatch {
  private source: UeventSource | undefined;
  private readonly intake: UeventIntake;
  private lastResync = -Infinity;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: Pick<DaemonDeps, 'log' | 'openSource' | 'readKernelSeqnum' | 'resyncIntervalMs'>,
    private readonly stats: IntakeStats & { lost: bigint; resyncs: number },
    private readonly hooks: SourceHooks,
  ) {
    this.intake = new UeventIntake(deps.log, stats, hooks.add, (count, reason) => this.lost(count, reason));
  }

  /** Open and bind the socket (DaemonDeps.openSource); no message is read before listen(). */
  open(): UeventSource {
    this.source = this.deps.openSource();
    return this.source;
  }

  /** The kernel's seqnum now is the baseline: the uevents after it are ours to read. */
  baseline(): void {
    this.intake.reset(this.deps.readKernelSeqnum());
  }

  /** Read messages and errors from the socket open() bound. */
  listen(): void {
    const source = this.source;
    if (source === undefined) throw new Error('uevent socket not open');
    source.onMessage((msg, port) => this.message(msg, port));
    source.onError((err) => this.error(err));
  }

  /** The last SEQNUM read (or the baseline). */
  get latest(): bigint | undefined {
    return this.intake.latest;
  }

  /** Whether a resync walk is scheduled and has not started yet. */
  get resyncScheduled(): boolean {
    return this.resyncTimer !== undefined;
  }

  /** Every quietCheckMs: the socket still works, and a quiet one is not behind the kernel. */
  quietCheck(): void {
    this.checkAlive();
    this.intake.quietCheck(this.deps.readKernelSeqnum());
  }

  close(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    const source = this.source;
    this.source = undefined;
    try {
      source?.close();
    } catch {
      // already closed by the add-on
    }
  }

  private message(msg: Buffer, port: number): void {
    if (this.hooks.stopping()) return;
    this.intake.message(msg, port);
    this.hooks.read();
  }

  private error(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    this.deps.log.error({ err, code }, 'uevent socket error');
    if (code === 'ENOBUFS') this.lost(1n, 'ENOBUFS');
    this.checkAlive();
  }

  /** A socket the add-on closed (after a poll error) hears nothing: fatal, so that systemd restarts us. */
  private checkAlive(): void {
    if (this.hooks.stopping() || this.source === undefined || this.source.alive()) return;
    const e = new HotplugError('E_SYSTEM', 'the uevent socket stopped working: no device events can be received');
    this.deps.log.error({ code: e.code }, 'uevent socket closed');
    this.hooks.dead(e);
  }

  private lost(count: bigint, reason: string): void {
    this.stats.lost += count;
    this.deps.log.warn({ lost: count.toString(), reason, lostTotal: this.stats.lost.toString() }, 'uevents lost; resync scheduled');
    this.scheduleResync();
  }

  /** A resync walk, at most one per resync interval; requests meanwhile merge. */
  private scheduleResync(): void {
    if (this.hooks.stopping() || this.resyncTimer !== undefined) return;
    const wait = Math.max(0, this.lastResync + (this.deps.resyncIntervalMs ?? 2000) - performance.now());
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.lastResync = performance.now();
      this.stats.resyncs++;
      this.hooks.resync();
    }, wait);
  }
}
