/**
 * The real CommandRunner: `/bin/sh -c COMMAND`, as libkmod's command_do runs
 * it through system(3), but contained: a minimal environment (PATH and
 * MODPROBE_MODULE only, not the daemon's), stdin closed, its own process group
 * killed whole after a time limit, stdout and stderr captured up to a byte cap.
 * The command text comes only from modprobe.d and the module name from the
 * index: nothing from a uevent reaches the shell.
 */
import { spawn } from 'node:child_process';
import { type CommandOutcome, type CommandRunner, type InstallCommandRequest } from '../core/install.js';

export const INSTALL_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

export interface ShellRunnerOptions {
  /** Kill the command's process group after this long (default 30 s). */
  timeoutMs?: number;
  /** Keep at most this many bytes of output (default 4 KiB). */
  outputCap?: number;
  /** The shell (default /bin/sh); tests only. */
  shell?: string;
}

export class ShellCommandRunner implements CommandRunner {
  private readonly timeoutMs: number;
  private readonly outputCap: number;
  private readonly shell: string;

  constructor(opts: ShellRunnerOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
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
      const killGroup = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, this.timeoutMs);
      let grace: NodeJS.Timeout | undefined;
      const finish = (error?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (grace) clearTimeout(grace);
        // Whatever it left running in its group goes with it.
        killGroup();
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
        // A background child may hold the pipes open: do not wait for it.
        grace = setTimeout(() => finish(), 100);
      });
      child.on('close', () => finish());
    });
  }
}
