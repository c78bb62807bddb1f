/**
 * The load queue's public vocabulary: requests, record results and reasons,
 * the log sink, the policy knobs, the counters, the record messages and how
 * records round milliseconds. No state; callers import these through
 * core/queue.ts.
 */
import { type ModuleIndex } from '../index/module-index.js';
import { type CommandRunner } from '../install.js';
import { type Kernel } from '../kernel.js';

export type Origin = 'uevent' | 'coldplug' | 'request';

export interface LoadRequest {
  /** A MODALIAS (byte string); or `module` for a load by name. */
  modalias?: string;
  module?: string;
  devpath?: string;
  seqnum?: string;
  origin: Origin;
}

export type LoadResult =
  | 'loaded'
  | 'already-loaded'
  | 'builtin'
  | 'blacklisted'
  | 'failed'
  | 'retrying'
  | 'skipped'
  | 'would-load'
  | 'install-command'
  | 'would-run';

/** Why a module was skipped (the `reason` field of a `skipped` record). */
export type SkipReason =
  | 'dependency-failed'
  | 'failed-before'
  | 'in-flight'
  | 'install-command'
  | 'install-command-ran';

/** The structured-log sink the queue writes to (a pino logger fits). */
export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type InstallCommandPolicy = 'run' | 'refuse';

/** The policy knobs (flags of `run` and `coldplug`; see commands/daemon-setup.ts). */
export interface QueuePolicy {
  /** Runs modprobe.d install commands; without one they are refused. */
  runner?: CommandRunner | undefined;
  /** 'run' (default): in place of loading the module; 'refuse': never run, never load. */
  installCommands?: InstallCommandPolicy;
  /** Kill an install command (its process group) after this long (default 30 s); past it plus installGraceMs it is left behind. */
  installTimeoutMs?: number;
  /** How long past installTimeoutMs the queue waits for a command's outcome (default INSTALL_GRACE_MS; tests shorten it). */
  installGraceMs?: number;
  /** A load still in flight after this long is reported and left behind (default 60 s). */
  loadTimeoutMs?: number;
  /** Attempts for a transient errno, the first included (default 3). */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubled for each next one (default 100 ms). */
  retryDelayMs?: number;
  /** Devices remembered for the once-per-device skip records (default 4096 device-module pairs). */
  deviceRecordCap?: number;
  /** Loads (and install commands) at once, each after all it depends on (default 1; see core/queue.ts). */
  jobs?: number;
}

export interface QueueOptions extends QueuePolicy {
  index: ModuleIndex;
  kernel: Kernel;
  log: Log;
  /** Module paths in the index are relative to this directory. */
  modulesDir: string;
  now?: () => number;
}

export interface QueueCounts {
  requests: number;
  merged: number;
  loaded: number;
  failed: number;
  skipped: number;
  blacklisted: number;
  wouldLoad: number;
  installCommands: number;
  wouldRun: number;
  retries: number;
  loadTimeouts: number;
  /** Install commands left behind: still running past --install-timeout plus the grace. */
  installStuck: number;
}

/** The message of every per-module record; facts are in the fields. */
export const LOAD_MSG = 'module';
/** The message of the warning for a load still in flight after the load timeout. */
export const LOAD_TIMEOUT_MSG = 'module load still in flight';
/** The message of the record written when an install command left behind (E_INSTALL_STUCK) finally ends. */
export const INSTALL_ENDED_MSG = 'install command left behind has ended';

/** The largest --jobs accepted (a bound on concurrent loads and requests served). */
export const MAX_JOBS = 64;

/** Milliseconds as records carry them (three decimals). */
export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
