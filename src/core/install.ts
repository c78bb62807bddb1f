/**
 * modprobe.d `install` commands, decided as libkmod decides them (kmod 30,
 * libkmod-module.c):
 * - a module's command is the first `install PATTERN COMMAND` line whose
 *   PATTERN fnmatch()es the module name (kmod_module_get_install_commands);
 * - the command is run instead of loading the module, for the target and for
 *   every module of its probe list (dependencies, softdeps) that has one
 *   (kmod_module_probe_insert_module);
 * - except for a module with softdeps: libkmod sets `ignorecmd` on it
 *   (__kmod_module_fill_softdep), so it is loaded and its softdeps stand in
 *   for the command (`modprobe --show-depends` prints `insmod` for it);
 * - `$CMDLINE_OPTS` in the command becomes the module's options
 *   (module_do_install_commands), MODPROBE_MODULE its name (command_do).
 * Pure: the command runs behind the CommandRunner seam (sys/install.ts).
 */
import { ClassTable, compilePattern, tokensMatch } from './glob.js';
import { type ModuleIndex } from './index/module-index.js';

export interface InstallCommandRequest {
  module: string;
  /** The command after `$CMDLINE_OPTS` substitution, for `/bin/sh -c`. */
  command: string;
  /** Kill the command (its whole process group) when it is still running after this long (--install-timeout). */
  timeoutMs: number;
}

/**
 * How long past its time limit the queue still waits for a command's
 * outcome. SIGKILL ends a process group in milliseconds, unless a process
 * of it is in uninterruptible sleep (inside a driver's init through
 * `modprobe --ignore-install`, a hung FUSE or NFS server) or in a frozen
 * cgroup: then nothing ends it, and waiting longer would hold every other
 * device's driver. 5 s covers a loaded machine reaping a killed group; past
 * it the command is left behind (E_INSTALL_STUCK), as udevd leaves a worker
 * its event timeout gave up on.
 */
export const INSTALL_GRACE_MS = 5_000;

/** The code of a command still running past its time limit plus INSTALL_GRACE_MS (left behind). */
export const INSTALL_STUCK = 'E_INSTALL_STUCK';

export interface CommandOutcome {
  /** Exit status, or null when killed by a signal or the time limit. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** stdout and stderr interleaved, at most the runner's byte cap. */
  output: string;
  /** True when output was cut at the cap. */
  truncated: boolean;
  /** Set when the command could not be started at all (spawn error code). */
  error?: string;
}

/** Runs one install command; never throws for a failing command (that is an outcome). */
export interface CommandRunner {
  run(req: InstallCommandRequest): Promise<CommandOutcome>;
}

/** Whether an outcome counts as success for the modules that depend on it: exit status 0 only. */
export function commandSucceeded(o: CommandOutcome): boolean {
  return o.exitCode === 0 && !o.timedOut && o.error === undefined;
}

/** A short code for a failed command, recorded with later `failed-before` records. */
export function commandFailureCode(o: CommandOutcome): string {
  if (o.error !== undefined) return 'E_INSTALL_SPAWN';
  if (o.timedOut) return 'E_INSTALL_TIMEOUT';
  if (o.signal !== null) return 'E_INSTALL_SIGNAL';
  return 'E_INSTALL_STATUS';
}

/** Every `$CMDLINE_OPTS` replaced by the options, once (not re-scanned: options holding the word do not loop). */
export function substituteCmdlineOpts(command: string, options: string): string {
  return command.split('$CMDLINE_OPTS').join(options);
}

const compiled = new WeakMap<ModuleIndex, { tokens: string | null; command: string }[]>();
const classes = new ClassTable();

/** The raw install command libkmod would use for a module (first matching line), ignoring softdeps. */
export function configuredInstallCommand(index: ModuleIndex, name: string): string | undefined {
  let list = compiled.get(index);
  if (list === undefined) {
    list = [];
    for (const [pattern, entry] of index.config.commands) {
      if (entry.install !== undefined) list.push({ tokens: compilePattern(pattern, classes, false), command: entry.install });
    }
    compiled.set(index, list);
  }
  for (const c of list) if (c.tokens !== null && tokensMatch(c.tokens, name, classes)) return c.command;
  return undefined;
}

/**
 * The install command that runs in place of loading `name`, or undefined when
 * the module is loaded normally: none configured, or the module has softdeps
 * that resolve to modules (libkmod's `ignorecmd`).
 */
export function installCommandFor(index: ModuleIndex, name: string): string | undefined {
  const command = configuredInstallCommand(index, name);
  if (command === undefined) return undefined;
  const soft = index.softdeps(name);
  const resolves = (names: readonly string[] | undefined): boolean => (names ?? []).some((n) => index.lookup(n).names.length > 0);
  if (soft !== undefined && (resolves(soft.pre) || resolves(soft.post))) return undefined;
  return command;
}
