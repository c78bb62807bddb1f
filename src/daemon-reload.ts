/**
 * SIGHUP: reload the index and configuration, then walk /sys again. Contract:
 * - one reload at a time (a Serial); reloads requested during a reload merge
 *   into one more;
 * - a reload chooses the index source again (DaemonDeps.loadIndex does);
 * - a reload that cannot read the new index keeps the old one, says why (a
 *   `reload failed` record) and resolves false;
 * - systemd hears RELOADING=1, then READY=1 when the reload is over, unless
 *   the daemon is no longer running by then.
 */
import { type ModuleIndex } from './core/index/module-index.js';
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

export class Reloads {
  private readonly serial = new Serial(() => this.once());

  constructor(
    private readonly deps: Pick<DaemonDeps, 'log' | 'loadIndex' | 'notifier'>,
    private readonly stats: { reloads: number },
    private readonly hooks: ReloadHooks,
  ) {}

  /** Resolves false when the new index could not be read (the old one stays) or the daemon is not running. */
  run(): Promise<boolean> {
    if (!this.hooks.running()) return Promise.resolve(false);
    return this.serial.run();
  }

  private async once(): Promise<boolean> {
    if (!this.hooks.running()) return false;
    const { log, notifier } = this.deps;
    notifier.notify('RELOADING=1');
    let next: ModuleIndex;
    const indexAt = performance.now();
    try {
      next = this.deps.loadIndex();
    } catch (e) {
      log.error({ err: e, code: (e as { code?: string }).code }, 'reload failed; keeping the current index');
      if (this.hooks.running()) notifier.notify('READY=1');
      return false;
    }
    if (!this.hooks.running()) return false;
    const before = this.hooks.current().stats();
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
    return true;
  }
}
