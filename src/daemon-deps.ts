/**
 * Everything the daemon touches, injected: the real system (commands/run.ts)
 * or fakes (test/unit/daemon.test.ts).
 */
import { type ModuleIndex } from './core/index/module-index.js';
import { type Kernel } from './core/kernel.js';
import { type Log, type QueuePolicy } from './core/queue.js';
import { type ColdplugEntry, type ColdplugResult } from './sys/coldplug.js';
import { type UeventSource } from './sys/netlink.js';
import { type Notifier } from './sys/notify.js';

export interface DaemonDeps {
  log: Log;
  /** Reads the index; called at start and at every reload (the source is chosen each time). */
  loadIndex: () => ModuleIndex;
  kernel: Kernel;
  /** Opens and binds the uevent socket (before the walk: no event can fall between). */
  openSource: () => UeventSource;
  /**
   * Walks /sys; each device found is passed to onEntry as soon as it is read.
   * When `signal` aborts, the walk should stop early (the daemon stops waiting
   * for it at once either way).
   */
  walk: (onEntry: (e: ColdplugEntry) => void, signal: AbortSignal) => Promise<ColdplugResult>;
  /** /sys/kernel/uevent_seqnum, or undefined when unreadable. */
  readKernelSeqnum: () => bigint | undefined;
  notifier: Notifier;
  modulesDir: string;
  /** $WATCHDOG_USEC: send WATCHDOG=1 at half this period. */
  watchdogUsec?: number | undefined;
  /** Minimum time between two resync walks. */
  resyncIntervalMs?: number;
  /** How often to compare the last SEQNUM seen with the kernel's (and check the socket still works). */
  quietCheckMs?: number;
  /** Least time between two `settled` records that report no change. */
  settleIntervalMs?: number;
  /** Do not walk at start (an initramfs already did); resyncs still walk. */
  skipColdplug?: boolean;
  /**
   * Called whenever the daemon is idle (start-up done or the queue drained,
   * no walk running), after any `settled` record: work that must stay off
   * the start-up path runs there (writing the index cache, commands/run.ts).
   */
  idle?: () => void;
  /** READY=1 when the coldplug requests are queued (default) or when they are all done ('settled'). */
  readyAfter?: 'queued' | 'settled';
  /**
   * Imports the code the daemon may need later (src/preload.ts), so that a
   * package upgrade replacing its files cannot break a daemon still running:
   * started with the walk and awaited before READY=1. A failure is logged (the
   * paths that need that code fail then), not fatal.
   */
  preload?: () => Promise<void>;
  /** Install-command runner and policy, load timeout (commands/daemon-setup.ts queuePolicy). */
  queue?: QueuePolicy;
}
