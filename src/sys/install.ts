/**
 * The real CommandRunner: `/bin/sh -c COMMAND`, as libkmod's command_do runs
 * it through system(3), but contained: a minimal environment (PATH and
 * MODPROBE_MODULE only, not the daemon's), stdin closed, stdout and stderr
 * captured up to a byte cap, its own process group killed whole when the
 * command is still running at its time limit. The command text comes only
 * from modprobe.d and the module name from the index: nothing from a uevent
 * reaches the shell.
 *
 * As under system(3), the outcome is the shell's exit: background jobs it
 * started (`cmd &`) keep running after it, and their process group is not
 * killed then (only at the time limit, while the shell still runs). Output
 * is read until the shell has exited plus DRAIN_MS; then the pipes are
 * closed, so a background job holding them open neither delays the outcome
 * nor keeps descriptors open in the daemon (what it writes after that gets
 * EPIPE, or SIGPIPE, as a job writing to a closed terminal would).
 *
 * A process that SIGKILL cannot end (uninterruptible sleep, a frozen cgroup)
 * never exits: the promise then stays pending until it does. The queue does
 * not wait for it past the time limit plus its grace (core/queue/install-step.ts).
 */
import { spawn } from 'node:child_process';
import { type CommandOutcome, type CommandRunner, type InstallCommandRequest } from '../core/install.js';

export const INSTALL_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * How long output is still read after the shell exited: what it wrote just
 * before exiting is in the pipe already (a read is one tick away), so a few
 * ticks are enough; a background job's later output is not the command's.
 */
export const DRAIN_MS = 50;

export interface ShellRunnerOptions {
  /** Keep at most this many bytes of output (default 4 KiB). */
  outputCap?: number;
  /** The shell (default /bin/sh); tests only. */
  shell?: string;
}

export class ShellCommandRunner implements CommandRunner {
  private readonly outputCap: number;
  private readonly shell: string;

  constructor(opts: ShellRunnerOptions = {}) {
    this.outputCap = opts.outputCap ?? 4096;
    this.shell = opts.shell ?? '/bin/sh';
  }

  run(req: InstallCommandRequest): Promise<CommandOutcome> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      let timedOut = false;
      let done = false;
      let exit: { code: number | null; signal: string | null } | undefined;
      const child = spawn(this.shell, ['-c', req.command], {
        env: { PATH: INSTALL_PATH, MODPROBE_MODULE: req.module },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, so that the time limit kills what it started too.
        detached: true,
        cwd: '/',
      });
      const keep = (b: Buffer): void => {
        if (kept >= this.outputCap) {
          truncated = true;
          return;
        }
        const part = b.subarray(0, this.outputCap - kept);
        if (part.length < b.length) truncated = true;
        chunks.push(part);
        kept += part.length;
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, req.timeoutMs);
      let drain: NodeJS.Timeout | undefined;
      const finish = (error?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (drain) clearTimeout(drain);
        // Our ends of the pipes: a background job that still holds theirs does not keep them open here.
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({
          exitCode: timedOut ? null : (exit?.code ?? null),
          signal: timedOut ? null : (exit?.signal ?? null),
          timedOut,
          output: Buffer.concat(chunks).toString('utf8'),
          truncated,
          ...(error !== undefined ? { error } : {}),
        });
      };
      child.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'E_SPAWN'));
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        // The shell is done: its background jobs live on (no group kill), the time limit no longer applies.
        clearTimeout(timer);
        drain = setTimeout(() => finish(), DRAIN_MS);
      });
      // Both pipes at EOF (no background job holds them): nothing more to read.
      child.on('close', () => finish());
    });
  }
}
