/**
 * Settle waiters: callers wait until the daemon has handled every uevent the
 * kernel had emitted when they asked (`target`, /sys/kernel/uevent_seqnum at
 * the call) and nothing is pending (see Daemon.settledFor). The daemon calls
 * check() at every moment the answer can turn true (the queue drained, a walk
 * ended, a message was read), so a waiter resolves exactly then and never
 * while a request is queued or in flight.
 */

export interface SettleOutcome {
  settled: boolean;
  /** The kernel seqnum the caller waited for (undefined when unreadable). */
  target: bigint | undefined;
}

interface Waiter {
  target: bigint | undefined;
  resolve: (o: SettleOutcome) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class SettleWaiters {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly settledFor: (target: bigint | undefined) => boolean) {}

  get size(): number {
    return this.waiters.size;
  }

  /** Resolves settled=true as soon as settledFor(target) holds; settled=false after timeoutMs (0: answer now; Infinity: no timeout). */
  wait(target: bigint | undefined, timeoutMs: number, signal?: AbortSignal): Promise<SettleOutcome> {
    if (this.settledFor(target)) return Promise.resolve({ settled: true, target });
    if (timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve({ settled: false, target });
    return new Promise((resolve) => {
      const w: Waiter = { target, resolve, timer: undefined, signal, onAbort: undefined };
      if (Number.isFinite(timeoutMs)) w.timer = setTimeout(() => this.finish(w, false), timeoutMs);
      // A caller that went away (its connection closed) stops waiting: no waiter outlives its client,
      // and no listener outlives its waiter (finish removes it).
      if (signal !== undefined) {
        w.onAbort = () => this.finish(w, false);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.add(w);
    });
  }

  /** Re-evaluate every waiter now. */
  check(): void {
    for (const w of this.waiters) if (this.settledFor(w.target)) this.finish(w, true);
  }

  /** Answer every waiter "not settled" (the daemon stops). */
  cancel(): void {
    for (const w of this.waiters) this.finish(w, false);
  }

  private finish(w: Waiter, settled: boolean): void {
    if (!this.waiters.delete(w)) return;
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    w.resolve({ settled, target: w.target });
  }
}
