/**
 * What `run` and `coldplug` share: flags for system paths, mode and logging,
 * and building the daemon's dependencies from them.
 */
import { join } from 'node:path';
import { type Logger } from 'pino';
import { type Kernel } from '../core/kernel.js';
import { type QueuePolicy } from '../core/queue.js';
import { HotplugError } from '../errors.js';
import { createLogger, type LogFormat } from '../log.js';
import { type IndexLocation } from '../sys/indexfs.js';
import { readBoundedSync, SYSFS_ATTR_MAX } from '../sys/readfile.js';
import { ShellCommandRunner } from '../sys/install.js';
import { cannotLoadReason, DryRunKernel, SyscallKernel, type SysPaths } from '../sys/kernel.js';
import { type FlagValues, INDEX_FLAGS, indexLocation } from './common.js';

export const SYSTEM_FLAGS = {
  sysfs: { type: 'string' },
  procfs: { type: 'string' },
  mode: { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  'install-commands': { type: 'string' },
  'install-timeout': { type: 'string' },
  'load-timeout': { type: 'string' },
} as const;

export const SYSTEM_HELP = `System:
  --mode MODE         auto (default): load when this machine can (root, a kernel
                      with /proc/modules), else dry-run with one warning;
                      load: fail at start when it cannot; dry-run: never load,
                      record "would-load"
  --sysfs DIR         sysfs root (default /sys)
  --procfs DIR        procfs root (default /proc)
  --log-format FMT    auto (default): one line per record on a terminal, JSON
                      lines elsewhere; json: JSON lines; pretty: one line per
                      record. JSON lines carry a syslog priority prefix (<3>
                      failed, <4> skipped or blacklisted, <6> the rest) when
                      stdout is the journal ($JOURNAL_STREAM)
  --log-level LEVEL   trace, debug, info (default), warn, error

Loading:
  --install-commands POLICY
                      run (default): a modprobe.d "install" command runs in
                      place of loading its module, as modprobe runs it (once
                      per module until the next reload; in dry-run it is only
                      reported, "would-run"); refuse: never run one, never
                      load such a module (recorded "skipped")
  --install-timeout S kill an install command (its whole process group) after
                      S seconds (default 30)
  --load-timeout S    a load still in flight after S seconds is reported and
                      the queue goes on without it (default 60)`;

export interface Setup {
  paths: SysPaths;
  location: IndexLocation;
  kernel: Kernel;
  log: Logger;
  /** Set when auto mode fell back to dry-run. */
  fallback: string | undefined;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], flag: string, dflt: T): T {
  if (value === undefined) return dflt;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new HotplugError('E_USAGE', `${flag} must be one of ${allowed.join(', ')} (got "${String(value)}")`);
}

export function setup(values: FlagValues<typeof SYSTEM_FLAGS & typeof INDEX_FLAGS>, defaultMode: 'auto' | 'dry-run' = 'auto', stream?: NodeJS.WritableStream): Setup {
  const paths: SysPaths = { sysfs: values.sysfs ?? '/sys', procfs: values.procfs ?? '/proc' };
  const mode = oneOf(values.mode, ['auto', 'load', 'dry-run'] as const, '--mode', defaultMode);
  const format: LogFormat = oneOf(values['log-format'], ['json', 'pretty', 'auto'] as const, '--log-format', 'auto');
  const level = oneOf(values['log-level'], ['trace', 'debug', 'info', 'warn', 'error'] as const, '--log-level', 'info');
  const log = createLogger({ format, level, ...(stream ? { stream } : {}) });
  let kernel: Kernel;
  let fallback: string | undefined;
  if (mode === 'dry-run') {
    kernel = new DryRunKernel(paths);
  } else {
    const reason = cannotLoadReason(paths);
    if (reason === null) kernel = new SyscallKernel(paths);
    else if (mode === 'load') throw new HotplugError('E_CANNOT_LOAD', `cannot load modules: ${reason} (use --mode dry-run to only report)`);
    else {
      kernel = new DryRunKernel(paths);
      fallback = reason;
    }
  }
  return { paths, location: indexLocation(values), kernel, log, fallback };
}

/** Seconds (a positive decimal, at most a day) -> milliseconds. */
function parseSeconds(value: unknown, flag: string, dflt: number): number {
  if (value === undefined) return dflt * 1000;
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0 && n <= 86_400)) throw new HotplugError('E_USAGE', `${flag} takes seconds, more than 0 and at most 86400 (got "${String(value)}")`);
  return Math.round(n * 1000);
}

/**
 * The queue's policy from the flags (--install-commands, --install-timeout,
 * --load-timeout), for LoadQueue's options (DaemonDeps.queue in run).
 */
export function queuePolicy(values: FlagValues<typeof SYSTEM_FLAGS>): QueuePolicy {
  const installCommands = oneOf(values['install-commands'], ['run', 'refuse'] as const, '--install-commands', 'run');
  const installTimeoutMs = parseSeconds(values['install-timeout'], '--install-timeout', 30);
  const loadTimeoutMs = parseSeconds(values['load-timeout'], '--load-timeout', 60);
  return {
    installCommands,
    loadTimeoutMs,
    ...(installCommands === 'run' ? { runner: new ShellCommandRunner({ timeoutMs: installTimeoutMs }) } : {}),
  };
}

export function readKernelSeqnum(sysfs: string): bigint | undefined {
  try {
    return BigInt(readBoundedSync(join(sysfs, 'kernel/uevent_seqnum'), SYSFS_ATTR_MAX).toString('latin1').trim());
  } catch {
    return undefined;
  }
}

/** "64M", "16777216", "512K" -> bytes. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+)([KkMmGg]?)$/.exec(value);
  if (!m) throw new HotplugError('E_USAGE', `${flag} takes a size in bytes, optionally with K, M or G (got "${value}")`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * mult;
  if (n < 4096 || n > 2 ** 31 - 1) throw new HotplugError('E_USAGE', `${flag} must be between 4K and 2G`);
  return n;
}
