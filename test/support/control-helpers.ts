/** Control-socket system tests' helpers: a daemon on a socket in a temporary directory, the CLI as a process (optionally as another user), a raw socket client. */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killLeftover, type Running, startDaemon } from './daemon-helpers.js';
import { FIXTURE_DIR } from './helpers.js';

export const INDEX = ['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', ''];
export const NOBODY = 65534;

/** Daemons started by a test, killed after it (afterEach in each file). */
export const daemons: Running[] = [];
export async function killDaemons(): Promise<void> {
  for (const d of daemons.splice(0)) await killLeftover(d);
}

/** A directory that uid 65534 can reach (mkdtemp makes 0700). */
export function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-control-'));
  chmodSync(dir, 0o755);
  return dir;
}

/** A sysfs tree with `n` devices, `distinct` different modaliases among them. */
export function fakeSysfs(n: number, modalias: (i: number) => string): string {
  const root = tmp();
  for (let i = 0; i < n; i++) {
    const dir = join(root, 'devices', `bus${i % 50}`, `dev${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'uevent'), `MODALIAS=${modalias(i)}\n`);
  }
  return root;
}

export const PCI = (i: number): string => (i % 2 === 0 ? 'platform:pcspkr' : 'virtio:d00000001v00001AF4');

/** A dry-run daemon on `sock`, once it wrote `until` (default: its first settled record; a tree with no device has none). */
export async function startWith(sock: string, extra: string[] = [], sysfs = fakeSysfs(4, PCI), until = 'settled'): Promise<Running> {
  const d = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', sysfs, '--control', sock, ...extra]);
  daemons.push(d);
  await d.waitFor((r) => r.msg === until, 15_000, `the first "${until}" record`);
  return d;
}

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a separate process (optionally as another user). */
export function cli(args: string[], opts: { uid?: number; gid?: number; env?: Record<string, string> } = {}): Promise<Ran> {
  return spawnCli(args, opts).done;
}

export function spawnCli(args: string[], opts: { uid?: number; gid?: number; env?: Record<string, string> } = {}): { proc: ReturnType<typeof spawn>; done: Promise<Ran> } {
  let proc!: ReturnType<typeof spawn>;
  const done = new Promise<Ran>((resolve) => {
    const p = spawn(process.execPath, ['dist/src/cli.js', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
      env: { ...process.env, ...opts.env },
      timeout: 30_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
    proc = p;
  });
  return { proc, done };
}

/** A raw client: send lines, read reply lines. */
export class Raw {
  readonly lines: Record<string, unknown>[] = [];
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly s: Socket) {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(this.buf.slice(0, nl)) as Record<string, unknown>);
        this.buf = this.buf.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  async next(n = this.lines.length + 1): Promise<Record<string, unknown>> {
    while (this.lines.length < n && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
    if (this.lines.length < n) throw new Error('closed before the reply');
    return this.lines[n - 1]!;
  }

  async ask(obj: unknown): Promise<Record<string, unknown>> {
    const n = this.lines.length + 1;
    this.s.write(`${JSON.stringify(obj)}\n`);
    return this.next(n);
  }

  async closedNow(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }
}

