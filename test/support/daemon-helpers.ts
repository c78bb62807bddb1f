/** Running the real daemon as a child process and reading its records. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';

export type Rec = Record<string, unknown>;

export interface Running {
  proc: ChildProcess;
  records: Rec[];
  stderr: () => string;
  waitFor: (pred: (r: Rec) => boolean, ms: number, what: string) => Promise<Rec>;
  exited: Promise<number | null>;
}

/**
 * `hotplugd run` as a child. Without a --control in `args` it runs with no
 * control socket: the default path (/run/hotplugd/control, as root) is one
 * per machine, and a second daemon on it refuses to start.
 */
export function startDaemon(args: string[], env: Record<string, string> = {}, as: { uid?: number; gid?: number } = {}, prefix: string[] = []): Running {
  const control = args.includes('--control') ? [] : ['--control', ''];
  // `prefix`: a command that runs node with the rest as its arguments (e.g. unshare ... sh -c '... exec "$0" "$@"').
  const argv = [...prefix, process.execPath, 'dist/src/cli.js', 'run', '--log-format', 'json', ...control, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    ...as,
  });
  const records: Rec[] = [];
  let buf = '';
  let err = '';
  const waiters: (() => void)[] = [];
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() === '') continue;
      records.push(JSON.parse(line) as Rec);
    }
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const waitFor = (pred: (r: Rec) => boolean, ms: number, what: string): Promise<Rec> =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${err.slice(0, 2000)}`)), ms);
      const check = (): void => {
        const hit = records.find(pred);
        if (hit) {
          clearTimeout(deadline);
          resolve(hit);
        } else waiters.push(check);
      };
      check();
    });
  return { proc, records, stderr: () => err, waitFor, exited };
}

/** After a test: a daemon it left running is killed (SIGKILL) and waited for. */
export async function killLeftover(d: Running | undefined): Promise<void> {
  if (d && d.proc.exitCode === null) {
    d.proc.kill('SIGKILL');
    await d.exited;
  }
}

/** An empty sysfs tree: coldplug finds nothing there, so every record comes from a real uevent. */
export function emptySysfs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-sysfs-'));
  mkdirSync(join(dir, 'devices'));
  return dir;
}

/**
 * Tests that write `add` into the host's /sys uevent files run only where the
 * machine opts in (a throwaway machine: CI sets it in .ci/run). Elsewhere they
 * are reported as skipped, never run silently against a workstation.
 */
export const REAL_UEVENTS = process.env.HOTPLUGD_TEST_REAL_UEVENTS === '1';

/** What a skipped real-uevent test says it needs (shown by the reporter beside the skip). */
export const REAL_UEVENTS_NOTE = "needs HOTPLUGD_TEST_REAL_UEVENTS=1: writes 'add' into this machine's /sys uevent files (a throwaway machine: CI sets it)";

/** A test that writes to the host's /sys: run where the machine opts in, otherwise skipped with REAL_UEVENTS_NOTE. */
export function itWithRealUevents(name: string, fn: () => Promise<void>, timeout?: number): void {
  it(
    name,
    async (ctx) => {
      ctx.skip(!REAL_UEVENTS, REAL_UEVENTS_NOTE);
      await fn();
    },
    timeout,
  );
}

/** Tests that write to /sys need root: say so loudly instead of passing. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('this test needs root (it writes to /sys uevent files and sends netlink multicast); CI runs as root');
  }
}
