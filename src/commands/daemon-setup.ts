/**
 * What `run` and `coldplug` share: flags for system paths, mode and logging,
 * and building the daemon's dependencies from them.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type Logger } from 'pino';
import { type Kernel } from '../core/kernel.js';
import { MAX_JOBS, type QueuePolicy } from '../core/queue.js';
import { HotplugError } from '../errors.js';
import { createLogger, type LogFormat, RecordTap } from '../log.js';
import { type IndexLocation } from '../sys/indexfs.js';
import { readBoundedSync, SYSFS_ATTR_MAX } from '../sys/readfile.js';
import { ShellCommandRunner } from '../sys/install.js';
import { resolveGroup } from '../sys/peercred.js';
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
  jobs: { type: 'string' },
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
                      failed, <4> skipped or blacklisted, <6> other results;
                      other records by their level) when stdout is the
                      journal ($JOURNAL_STREAM)
  --log-level LEVEL   trace, debug, info (default), warn, error

Loading:
  --install-commands POLICY
                      run (default): a modprobe.d "install" command runs in
                      place of loading its module, as modprobe runs it (once
                      per module until the next reload; in dry-run it is only
                      reported, "would-run"); refuse: never run one, never
                      load such a module (recorded "skipped")
  --install-timeout S kill an install command (its whole process group) still
                      running after S seconds (default 30); one that has not
                      ended 5 s later is recorded failed (E_INSTALL_STUCK)
                      and left behind: the queue goes on
  --load-timeout S    a load still in flight after S seconds is reported and
                      the queue goes on without it (default 60)
  --jobs N            load up to N modules at once, each only after every
                      module it depends on (default 1: one at a time, a
                      deterministic probe order); auto: 2 per CPU, at most 8
                      and at most UV_THREADPOOL_SIZE - 1 (the threads that run
                      the loads; default pool 4, so 3), never below 1`;

/** The control socket's flags of `run` (with CONTROL_FLAGS' --control). */
export const CONTROL_RUN_FLAGS = {
  'control-group': { type: 'string' },
  'ready-after': { type: 'string' },
} as const;

export const CONTROL_RUN_HELP = `Control socket (hotplugd status, settle, monitor, why, reload, metrics):
  --control PATH      listen there (mode 0600; default /run/hotplugd/control,
                      or, not root and that cannot be used,
                      $XDG_RUNTIME_DIR/hotplugd/control, or none after one
                      warning); '' for no socket; a PATH given that cannot be
                      bound fails start-up, as does a directory that is a
                      symlink, not the daemon's user's, or writable by
                      others (and not sticky)
  --control-group G   group name or gid whose members may use the read-only
                      commands (status, settle, monitor, why, metrics); the socket
                      gets that group and mode 0660. Root (and the daemon's
                      own user) may do everything.
  --ready-after WHEN  queued (default): READY=1 once the coldplug requests
                      are queued (boot is not held by slow drivers);
                      settled: once every coldplug load is done`;

/** --control-group NAME|GID → gid (undefined when not given). */
export function controlGroup(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === '') throw new HotplugError('E_USAGE', '--control-group takes a group name or gid');
  return resolveGroup(value);
}

export function readyAfter(value: unknown): 'queued' | 'settled' {
  return oneOf(value, ['queued', 'settled'] as const, '--ready-after', 'queued');
}

export interface Setup {
  paths: SysPaths;
  location: IndexLocation;
  kernel: Kernel;
  log: Logger;
  /** Every record the log writes, for live consumers (monitor, metrics, why). */
  tap: RecordTap;
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
  const tap = new RecordTap();
  const log = createLogger({ format, level, tap, ...(stream ? { stream } : {}) });
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
  return { paths, location: indexLocation(values), kernel, log, tap, fallback };
}

/** Seconds (a positive decimal, at most a day) -> milliseconds. */
function parseSeconds(value: unknown, flag: string, dflt: number): number {
  if (value === undefined) return dflt * 1000;
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0 && n <= 86_400)) throw new HotplugError('E_USAGE', `${flag} takes seconds, more than 0 and at most 86400 (got "${String(value)}")`);
  return Math.round(n * 1000);
}

/**
 * --jobs: a whole number from 1 to MAX_JOBS, or auto. auto = 2 per CPU
 * (sched affinity), at least 2 and at most 8, and at most one less than
 * libuv's thread pool:
 * - a module's time in finit_module is mostly its init waiting on hardware (a
 *   bus scan, firmware), not CPU, so loads overlap well beyond the CPU count;
 *   at least 2 so that a one-CPU VM still overlaps a slow init with the rest;
 * - at most 8: a machine's load graph is narrow (a few dozen modules, chains
 *   of dependencies), and each load of a module the kernel cannot decompress
 *   holds its decompressed image here; systemd-udevd itself runs up to
 *   min(2 x CPUs + 16, RAM / 128 MiB) workers, never fewer than 10;
 * - koffi runs each finit_module on libuv's thread pool (UV_THREADPOOL_SIZE,
 *   default 4, fixed before our first line runs), which the /sys walk and
 *   file reads share: one thread is left for them, and loads beyond the pool
 *   would only wait there.
 */
export function parseJobs(value: unknown, cpus: number = availableParallelism(), pool: number = threadPoolSize()): number {
  if (value === undefined) return 1;
  if (value === 'auto') return Math.max(1, Math.min(8, Math.max(2, 2 * cpus), pool - 1));
  const n = typeof value === 'string' && /^\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_JOBS)) throw new HotplugError('E_USAGE', `--jobs takes a whole number from 1 to ${MAX_JOBS}, or auto (got "${String(value)}")`);
  return n;
}

/**
 * libuv's thread pool size, read from the environment as libuv reads it
 * (atoi into an unsigned: unset 4, 0 or not a number 1, negative or above
 * 1024 capped at 1024).
 */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.UV_THREADPOOL_SIZE;
  if (value === undefined) return 4;
  const n = Number.parseInt(value.trimStart(), 10);
  if (Number.isNaN(n) || n === 0) return 1;
  return n < 0 ? 1024 : Math.min(n, 1024);
}

/**
 * The queue's policy from the flags (--install-commands, --install-timeout,
 * --load-timeout, --jobs), for LoadQueue's options (DaemonDeps.queue in run).
 */
export function queuePolicy(values: FlagValues<typeof SYSTEM_FLAGS>): QueuePolicy {
  const installCommands = oneOf(values['install-commands'], ['run', 'refuse'] as const, '--install-commands', 'run');
  const installTimeoutMs = parseSeconds(values['install-timeout'], '--install-timeout', 30);
  const loadTimeoutMs = parseSeconds(values['load-timeout'], '--load-timeout', 60);
  const jobs = parseJobs(values.jobs);
  return {
    installCommands,
    installTimeoutMs,
    loadTimeoutMs,
    jobs,
    ...(installCommands === 'run' ? { runner: new ShellCommandRunner() } : {}),
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
