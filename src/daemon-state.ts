/**
 * Small named pieces of the daemon's state, each with one job:
 * - Serial: one run of an async job at a time; calls that arrive meanwhile
 *   merge into exactly one more run (reloads, walks);
 * - SettleTracker: when to write the `settled` record (something changed since
 *   the last one, or at most once per interval while events keep coming);
 * - RejectLog: rejected-message logging, the first few per reason per minute;
 * - InFlight: the modules inside the kernel's load call right now (status,
 *   settle's pending list).
 */
import { type Kernel } from './core/kernel.js';
import { type Log } from './core/queue.js';

/**
 * One run at a time. A call while a run is in progress returns the promise of
 * the next run, which starts when the current one ends; every call made during
 * one run shares that next run (100 SIGHUPs during a reload cost one more).
 */
export class Serial<T> {
  private active = false;
  private next: { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } | undefined;

  constructor(private readonly job: () => Promise<T>) {}

  get running(): boolean {
    return this.active;
  }

  run(): Promise<T> {
    if (!this.active) return this.exec();
    if (this.next === undefined) {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { promise, resolve, reject };
    }
    return this.next.promise;
  }

  private exec(): Promise<T> {
    this.active = true;
    let p: Promise<T>;
    try {
      p = this.job();
    } catch (e) {
      p = Promise.reject(e);
    }
    const done = (): void => {
      const n = this.next;
      this.next = undefined;
      // Hand over without a gap: `active` stays true while the queued run starts.
      if (n !== undefined) this.exec().then(n.resolve, n.reject);
      else this.active = false;
    };
    p.then(done, done);
    return p;
  }
}

/** Result counts whose change makes a `settled` record worth writing at once. */
export type SettleCounts = Readonly<Record<string, number>>;

/**
 * Decides when the queue draining is reported: at once when the counts differ
 * from the last record, otherwise (a storm of events that change nothing) at
 * most once per `intervalMs`, trailing, so the last state is always written.
 */
export class SettleTracker {
  private busy = false;
  private last = '';
  /** The counts of the latest drain, written by the next record. */
  private latest = '';
  private lastAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: () => void,
    /** Whether the queue is drained and no walk runs (checked again when a trailing record is due). */
    private readonly idle: () => boolean,
    private readonly intervalMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Something was queued: the next drain may be reported. */
  touch(): void {
    this.busy = true;
  }

  /** The queue drained and no walk runs: report if due. */
  drained(counts: SettleCounts): void {
    if (!this.busy) return;
    this.latest = JSON.stringify(counts);
    const wait = this.lastAt + this.intervalMs - this.now();
    if (this.latest !== this.last || wait <= 0) {
      this.fire();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.busy && this.idle()) this.fire();
    }, wait);
    this.timer.unref();
  }

  /** Nothing more is reported (the daemon stops). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.busy = false;
  }

  private fire(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.busy = false;
    this.lastAt = this.now();
    this.last = this.latest;
    this.emit();
  }
}

/** Rejected-message logging: the first few of each reason per minute, then a count. */
export class RejectLog {
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

/** The modules whose load call has not returned yet, counted through a wrapped Kernel. */
export class InFlight {
  private readonly loads = new Map<string, number>();

  wrap(kernel: Kernel): Kernel {
    const wrapped = Object.create(kernel) as Kernel;
    wrapped.load = async (req) => {
      this.loads.set(req.name, (this.loads.get(req.name) ?? 0) + 1);
      try {
        return await kernel.load(req);
      } finally {
        const n = this.loads.get(req.name)! - 1;
        if (n === 0) this.loads.delete(req.name);
        else this.loads.set(req.name, n);
      }
    };
    return wrapped;
  }

  names(): string[] {
    return [...this.loads.keys()];
  }
}
