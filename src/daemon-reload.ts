/**
 * SIGHUP: reload the index and configuration, then walk /sys again. Contract:
 * - one reload at a time (a Serial); reloads requested during a reload merge
 *   into one more;
 * - a reload chooses the index source again (DaemonDeps.loadIndex does);
 * - a reload that cannot read the new index keeps the old one, says why (a
 *   `reload failed` record: the error's code and message, a stack only for
 *   an unexpected error) and resolves { ok: false } with them;
 * - a reload that succeeded resolves what changed and every configuration
 *   or index line it did not take (libkmod warns about each);
 * - systemd hears RELOADING=1, then READY=1 when the reload is over, unless
 *   the daemon is no longer running by then.
 */
import { type LineWarning } from './core/index/depmod.js';
import { type ModuleIndex } from './core/index/module-index.js';
import { isHotplugError } from './errors.js';
import { type DaemonDeps } from './daemon-deps.js';
import { Serial } from './daemon-state.js';

export interface ReloadHooks {
  running: () => boolean;
  /** The index in use. */
  current: () => ModuleIndex;
  /** Put `next` in use (the daemon's index and its queue's). */
  swap: (next: ModuleIndex) => void;
  /** Walk /sys again; resolves when that walk (or the one it merged into) is over. */
  walk: () => Promise<void>;
}

/** What a reload came to: the changes and the lines not taken, or why the old index stays. */
export type ReloadResult =
  | {
      ok: true;
      modules: { before: number; after: number };
      aliases: { before: number; after: number };
      /** modprobe.d and kernel command line entries taken (config.entries). */
      config: { before: number; after: number };
      ignored: readonly LineWarning[];
    }
  | { ok: false; code: string; problem: string };

export class Reloads {
  private readonly serial = new Serial(() => this.once());

  constructor(
    private readonly deps: Pick<DaemonDeps, 'log' | 'loadIndex' | 'notifier'>,
    private readonly stats: { reloads: number },
    private readonly hooks: ReloadHooks,
  ) {}

  /** Resolves ok: false when the new index could not be read (the old one stays) or the daemon is not running. */
  run(): Promise<ReloadResult> {
    if (!this.hooks.running()) return Promise.resolve(NOT_RUNNING);
    return this.serial.run();
  }

  private async once(): Promise<ReloadResult> {
    if (!this.hooks.running()) return NOT_RUNNING;
    const { log, notifier } = this.deps;
    notifier.notify('RELOADING=1');
    let next: ModuleIndex;
    const indexAt = performance.now();
    try {
      next = this.deps.loadIndex();
    } catch (e) {
      // An operator's mistake (a missing directory, a damaged file) is one line with its code, no stack.
      const known = isHotplugError(e);
      const code = known ? e.code : 'E_FAILED';
      const problem = (e as Error).message;
      if (known) log.error({ code, problem }, 'reload failed; keeping the current index');
      else log.error({ err: e, code }, 'reload failed; keeping the current index');
      if (this.hooks.running()) notifier.notify('READY=1');
      return { ok: false, code, problem };
    }
    if (!this.hooks.running()) return NOT_RUNNING;
    const previous = this.hooks.current();
    const before = previous.stats();
    const after = next.stats();
    this.hooks.swap(next);
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
    await this.hooks.walk();
    if (this.hooks.running()) notifier.notify('READY=1');
    return {
      ok: true,
      modules: { before: before.modules, after: after.modules },
      aliases: { before: before.aliases, after: after.aliases },
      config: { before: previous.config.entries.length, after: next.config.entries.length },
      ignored: next.warnings,
    };
  }
}

const NOT_RUNNING: ReloadResult = { ok: false, code: 'E_STOPPING', problem: 'the daemon is not running: nothing reloaded' };
