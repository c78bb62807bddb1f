/**
 * Where start-up time goes, for the first `settled` record: phases as ms since
 * the process started (the runtime reaching cli.ts's first line and the
 * imports, from performance marks; the rest marked by the daemon, first time
 * only), and the time spent inside Kernel.load (count, total, longest).
 */
import { type Kernel } from './core/kernel.js';

const round = (n: number): number => Math.round(n * 10) / 10;

export class StartupClock {
  private readonly phases: Record<string, number> = {};
  private readonly loads = { count: 0, totalMs: 0, maxMs: 0, maxModule: '' };

  /** Mark a phase now (only its first time counts). */
  mark(phase: string): void {
    this.phases[phase] ??= round(performance.now());
  }

  /** `kernel`, timed: marks firstLoadStarted and adds each load's time. */
  timed(kernel: Kernel): Kernel {
    const timed = Object.create(kernel) as Kernel;
    timed.load = async (req) => {
      this.mark('firstLoadStarted');
      const t0 = performance.now();
      try {
        return await kernel.load(req);
      } finally {
        const ms = performance.now() - t0;
        this.loads.count++;
        this.loads.totalMs += ms;
        if (ms > this.loads.maxMs) {
          this.loads.maxMs = ms;
          this.loads.maxModule = req.name;
        }
      }
    };
    return timed;
  }

  /**
   * The record's fields: `phases` (runtimeReady — performance mark
   * "hotplugd:entry" —, importsDone — "hotplugd:imports" —, then the marked
   * ones) and `loadMs`.
   */
  report(): { phases: Record<string, number>; loadMs: Record<string, number | string> } {
    const at = (name: string): number | undefined => performance.getEntriesByName(name, 'mark')[0]?.startTime;
    const runtimeReady = at('hotplugd:entry');
    const importsDone = at('hotplugd:imports');
    const l = this.loads;
    return {
      phases: {
        ...(runtimeReady !== undefined ? { runtimeReady: round(runtimeReady) } : {}),
        ...(importsDone !== undefined ? { importsDone: round(importsDone) } : {}),
        ...this.phases,
      },
      loadMs: { count: l.count, total: Math.round(l.totalMs), max: round(l.maxMs), ...(l.maxModule !== '' ? { maxModule: l.maxModule } : {}) },
    };
  }
}
