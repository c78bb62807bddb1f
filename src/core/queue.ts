/**
 * The load queue: requests (a modalias from a uevent or the coldplug walk, or
 * a module by name) become module loads, one at a time (or up to `jobs` at
 * once), dependencies first, with one record per module decided.
 *
 * Policy (the reasons are in the README's "Loading" section):
 * - at most `jobs` Kernel.loads (and install commands) in flight (default 1),
 *   except a load still in flight after loadTimeoutMs: it is named in a
 *   warning and the queue goes on without it (that module stays in flight;
 *   later requests for it are not loaded twice; its record is written when the
 *   kernel answers);
 * - jobs = 1: one request at a time, its plan step by step, so records come in
 *   a deterministic order (the probe order); jobs = N > 1: up to N requests,
 *   taken in order, are served at once, and a step of a plan starts as soon as
 *   every step it needs has finished: its modules.dep dependencies and `pre:`
 *   softdeps, and for a `post:` softdep the module it follows. A module is
 *   loaded by one request at a time: another request that reaches it waits for
 *   that load and then decides again (present, failed-before, ...), so every
 *   rule below holds for any N; only the order of records changes. The
 *   modules a modalias matches are served one after another; a load keeps its
 *   slot through its retries;
 * - a request whose modalias (or module) is already queued is merged into it;
 * - the kernel is asked (Kernel.moduleState) before each module: a live one is
 *   not loaded, a module removed since is loaded again; the queue keeps no
 *   set of present modules;
 * - EEXIST is success (someone else loaded it); EAGAIN, EBUSY, ENOMEM, EINTR
 *   and ETIMEDOUT are retried after a short backoff, up to maxAttempts, each
 *   attempt recorded; any other errno is a failure, recorded, and the queue
 *   goes on; a failed module is not retried until the index is reloaded
 *   (SIGHUP), and each later request gets a `skipped`/`failed-before` record
 *   for it (at most one per device and module);
 * - a failed or skipped hard dependency (modules.dep) skips its dependents; a
 *   failed softdep does not;
 * - a modprobe.d `install` command runs in place of loading that module (see
 *   core/install.ts for which modules), once per module per index load; a
 *   failing command fails its dependents as a failed load would; with
 *   installCommands 'refuse' (or no runner) such a module is never loaded;
 * - the blacklist applies to modules matched by a modalias, never to the
 *   dependencies of a module being loaded (as modprobe -b).
 *
 * The parts live in core/queue/: load-queue.ts (submit, the workers, idle,
 * stop, reload), step.ts (one step of a plan decided), load.ts (the kernel
 * call, retries, load timeout, its record), install-step.ts (install
 * commands), jobs.ts and slots.ts (jobs > 1), records.ts (the once-only
 * records), context.ts (the state they share), types.ts (the vocabulary).
 * This file is the queue's one import path for its callers.
 */
export { LoadQueue } from './queue/load-queue.js';
export {
  type InstallCommandPolicy,
  LOAD_MSG,
  INSTALL_ENDED_MSG,
  LOAD_TIMEOUT_MSG,
  type LoadRequest,
  type LoadResult,
  type Log,
  MAX_JOBS,
  type Origin,
  type QueueCounts,
  type QueueOptions,
  type QueuePolicy,
  type SkipReason,
} from './queue/types.js';
