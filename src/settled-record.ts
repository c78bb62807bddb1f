/**
 * The daemon's `settled` record, written when something was queued since the
 * last one and the queue has drained with no walk running: at once when the
 * result counts changed, otherwise at most once per settleIntervalMs
 * (SettleTracker, daemon-state.ts). The first one after start says where the
 * start-up time went (the start-up clock, startup-clock.ts); each one while
 * running also goes to systemd as STATUS=.
 */
import { type ModuleIndex } from './core/index/module-index.js';
import { type QueueCounts } from './core/queue.js';
import { type DaemonDeps } from './daemon-deps.js';
import { SettleTracker } from './daemon-state.js';
import { StartupClock } from './startup-clock.js';

/** The daemon's counters the record reports. */
export interface SettledStats {
  events: number;
  rejected: number;
  lost: bigint;
  resyncs: number;
}

/** What the record reads from the daemon when it is written. */
export interface SettledView {
  counts: () => QueueCounts;
  index: () => ModuleIndex;
  running: () => boolean;
  /** The queue is drained and no walk runs (checked again when a trailing record is due). */
  idle: () => boolean;
}

export class SettledRecord {
  /** Where start-up time went, for the first record. */
  readonly clock = new StartupClock();
  private startupReported = false;
  private readonly startedAt = performance.now();
  private readonly tracker: SettleTracker;
  /** When the last record was written (ISO time). */
  lastAt: string | undefined;

  constructor(
    private readonly deps: Pick<DaemonDeps, 'log' | 'notifier' | 'settleIntervalMs'>,
    private readonly stats: SettledStats,
    private readonly view: SettledView,
  ) {
    this.tracker = new SettleTracker(() => this.write(), view.idle, deps.settleIntervalMs ?? 1000);
  }

  /** Something was queued: the next drain may be reported. */
  touch(): void {
    this.tracker.touch();
  }

  /** The queue drained and no walk runs: write the record if it is due. */
  drained(c: QueueCounts): void {
    this.tracker.drained({ loaded: c.loaded, failed: c.failed, skipped: c.skipped, blacklisted: c.blacklisted, wouldLoad: c.wouldLoad });
  }

  /** No more records (the daemon stops). */
  cancel(): void {
    this.tracker.cancel();
  }

  private write(): void {
    const c = this.view.counts();
    let startup: object = {};
    if (!this.startupReported) {
      // The first settled record after start says where the start-up time went.
      this.startupReported = true;
      this.clock.mark('settled');
      const index = this.view.index();
      startup = { ...this.clock.report(), indexSource: index.source, indexKind: index.kind };
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
    this.lastAt = new Date().toISOString();
    if (this.view.running()) this.deps.notifier.notify(`STATUS=settled: ${c.loaded} loaded, ${c.failed} failed, ${c.wouldLoad} would load`);
  }
}
