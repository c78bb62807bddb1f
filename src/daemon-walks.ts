/**
 * The daemon's walks of /sys (at start, resync after lost uevents, after a
 * reload). Contract:
 * - one walk at a time: start, resync and reload share one Serial (and a walk
 *   holds one descriptor at a time); walk requests that arrive during a walk
 *   merge into one more, which runs for the weightiest of their reasons
 *   (reload, then start, then resync);
 * - each distinct modalias a walk finds is submitted as soon as it is read;
 * - when the daemon's AbortSignal aborts (stop, a failed start), the wait for a
 *   walk in progress ends at once, and what that walk still finds is dropped;
 * - when a walk is over (done or failed, not aborted), `over` is called on a
 *   later turn: the queue may have drained during the walk.
 */
import { type LoadRequest } from './core/queue.js';
import { type DaemonDeps } from './daemon-deps.js';
import { Serial } from './daemon-state.js';
import { type ColdplugEntry, type ColdplugResult } from './sys/coldplug.js';

export type WalkWhy = 'start' | 'resync' | 'reload';

const ABORTED: unique symbol = Symbol('aborted');

export interface WalkHooks {
  /** The daemon is stopping: no walk starts, nothing more is submitted. */
  stopping: () => boolean;
  /** A request for a modalias the walk found (the first time in this walk). */
  submit: (req: LoadRequest) => void;
  /** The walk is over (done or failed); called on a later turn. */
  over: () => void;
  /** The first walk at start is done (the start-up clock's walkDone). */
  startWalked: () => void;
}

export class Walks {
  /** Why the next walk runs (requests merged while one runs). */
  private readonly reasons = new Set<WalkWhy>();
  private readonly serial = new Serial(() => this.once());
  private readonly aborted: Promise<typeof ABORTED>;

  constructor(
    private readonly deps: Pick<DaemonDeps, 'log' | 'walk'>,
    private readonly signal: AbortSignal,
    private readonly stats: { coldplugs: number },
    private readonly hooks: WalkHooks,
  ) {
    this.aborted = new Promise((resolve) => signal.addEventListener('abort', () => resolve(ABORTED), { once: true }));
  }

  /** Whether a walk runs now. */
  get running(): boolean {
    return this.serial.running;
  }

  /** Request a walk: runs now, or once more after the one in progress (requests merge). */
  request(why: WalkWhy): Promise<void> {
    this.reasons.add(why);
    return this.serial.run();
  }

  /** One walk of /sys, queueing every distinct modalias as it is found. */
  private async once(): Promise<void> {
    const why: WalkWhy = this.reasons.has('reload') ? 'reload' : this.reasons.has('start') ? 'start' : 'resync';
    this.reasons.clear();
    if (this.hooks.stopping()) return;
    const { log } = this.deps;
    const seen = new Set<string>();
    const onEntry = (e: ColdplugEntry): void => {
      if (this.hooks.stopping() || seen.has(e.modalias)) return;
      seen.add(e.modalias);
      this.hooks.submit({ modalias: e.modalias, devpath: e.devpath, origin: 'coldplug' });
    };
    let r: ColdplugResult | typeof ABORTED;
    try {
      r = await Promise.race([this.deps.walk(onEntry, this.signal), this.aborted]);
    } catch (e) {
      if (this.hooks.stopping()) return;
      log.error({ err: e, why }, 'coldplug walk failed');
      setImmediate(() => this.hooks.over()); // settle waiters: the walk is over all the same
      return;
    }
    if (r === ABORTED || this.hooks.stopping()) return;
    this.stats.coldplugs++;
    if (why === 'start') this.hooks.startWalked();
    for (const e of r.errors.slice(0, 5)) log.warn({ path: e.path, code: e.code }, 'coldplug: unreadable entry skipped');
    log.info({ why, devices: r.devices, modaliases: r.entries.length, distinct: seen.size, unreadable: r.errors.length, ms: r.ms }, 'coldplug');
    // The queue may have drained during the walk: check once the walk is over.
    setImmediate(() => this.hooks.over());
  }
}
