/**
 * The control socket with real processes: `hotplugd run` in dry-run on the
 * shipped Debian index (fake sysfs trees; the real uevent socket is opened,
 * read-only), clients as separate processes (the CLI) or raw sockets.
 * Real uevents only behind HOTPLUGD_TEST_REAL_UEVENTS.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptySysfs, killLeftover, REAL_UEVENTS, requireRoot, type Running, startDaemon } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const INDEX = ['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', ''];
const NOBODY = 65534;

let daemons: Running[] = [];
afterEach(async () => {
  for (const d of daemons) await killLeftover(d);
  daemons = [];
});

/** A directory that uid 65534 can reach (mkdtemp makes 0700). */
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-control-'));
  chmodSync(dir, 0o755);
  return dir;
}

/** A sysfs tree with `n` devices, `distinct` different modaliases among them. */
function fakeSysfs(n: number, modalias: (i: number) => string): string {
  const root = tmp();
  for (let i = 0; i < n; i++) {
    const dir = join(root, 'devices', `bus${i % 50}`, `dev${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'uevent'), `MODALIAS=${modalias(i)}\n`);
  }
  return root;
}

const PCI = (i: number): string => (i % 2 === 0 ? 'platform:pcspkr' : 'virtio:d00000001v00001AF4');

async function startWith(sock: string, extra: string[] = [], sysfs = fakeSysfs(4, PCI)): Promise<Running> {
  const d = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', sysfs, '--control', sock, ...extra]);
  daemons.push(d);
  await d.waitFor((r) => r.msg === 'settled', 15_000, 'the first settled record');
  return d;
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a separate process (optionally as another user). */
function cli(args: string[], opts: { uid?: number; gid?: number; env?: Record<string, string> } = {}): Promise<Ran> {
  return spawnCli(args, opts).done;
}

function spawnCli(args: string[], opts: { uid?: number; gid?: number; env?: Record<string, string> } = {}): { proc: ReturnType<typeof spawn>; done: Promise<Ran> } {
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
class Raw {
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

describe('control socket commands', () => {
  it('answers status, why, reload and settle, and streams records to several monitors', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    const d = await startWith(sock);
    expect(lstatSync(sock).mode & 0o777).toBe(0o600);

    const st = await cli(['status', '--control', sock, '--json']);
    expect(st.status).toBe(0);
    const status = JSON.parse(st.stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ phase: 'running', mode: 'dry-run', jobs: 1, settled: true, index: { kind: 'depmod', kernelRelease: 'debian-6.1.0-56-amd64' } });
    expect(status.counts).toMatchObject({ requests: 2, wouldLoad: expect.any(Number) });
    const human = await cli(['status', '--control', sock]);
    expect(human.stdout).toMatch(/^phase {5}running$/m);

    const why = await cli(['why', '--control', sock, 'platform:pcspkr']);
    expect(why.status).toBe(0);
    expect(why.stdout).toMatch(/coldplug devpath=\/devices\/bus\d+\/dev\d+ modalias=platform:pcspkr/);
    expect(why.stdout).toMatch(/would-load +pcspkr/);
    expect(why.stdout).toContain('index now: platform:pcspkr -> pcspkr: load order pcspkr');
    const never = await cli(['why', '--control', sock, '--json', 'usb:v1234p5678d0000dc00dsc00dp00ic03isc01ip01in00']);
    expect(JSON.parse(never.stdout)).toMatchObject({ reached: false, totals: { requests: 0, decisions: 0 } });

    const monitors = [spawnCli(['monitor', '--control', sock, '--json']), spawnCli(['monitor', '--control', sock])];
    const rawMonitor = await Raw.open(sock);
    expect(await rawMonitor.ask({ cmd: 'monitor' })).toEqual({ ok: true, monitor: true });
    const reload = await cli(['reload', '--control', sock]);
    expect(reload.status).toBe(0);
    expect(reload.stdout).toMatch(/^reloaded: .*debian-6.1.0-56-amd64 \(\d+ modules; reload 1 since start\)$/m);
    expect((await cli(['settle', '--control', sock, '--timeout', '10'])).status).toBe(0);
    // The monitors saw the reload's records; stop them as Ctrl-C would.
    await d.waitFor((r) => r.msg === 'settled' && r.requests === 4, 10_000, 'the settled record after the reload');
    while (!rawMonitor.lines.some((l) => l.msg === 'settled')) await rawMonitor.next();
    await new Promise((r) => setTimeout(r, 200)); // the monitors' pipes
    for (const m of monitors) m.proc.kill('SIGINT');
    const [json, text] = (await Promise.all(monitors.map((m) => m.done))) as [Ran, Ran];
    expect(json.status).toBe(0);
    const recs = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => r.msg)).toEqual(expect.arrayContaining(['reloaded', 'coldplug', 'module', 'settled']));
    expect(text.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} would-load +pcspkr/m);
    rawMonitor.s.destroy();
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(existsSync(sock)).toBe(false); // unlinked at exit
  });

  it('exits 111 naming the path when no daemon listens, 100 on a usage error, 1 when settle times out', async () => {
    const dir = tmp();
    const r = await cli(['status', '--control', join(dir, 'nothing')]);
    expect(r.status).toBe(111);
    expect(r.stderr).toContain(join(dir, 'nothing'));
    expect((await cli(['settle', '--control', join(dir, 'x'), '--timeout', 'soon'])).status).toBe(100);
    expect((await cli(['why', '--control', join(dir, 'x')])).status).toBe(100);
  });
});

describe('control socket access', () => {
  it('refuses a non-root client for everything without --control-group, and for reload with it', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock);
    // 0600: the kernel refuses the connection itself.
    const r1 = await cli(['status', '--control', sock], { uid: NOBODY });
    expect(r1.status).toBe(111);
    // Made reachable by hand: SO_PEERCRED still refuses uid 65534.
    chmodSync(sock, 0o666);
    const r2 = await cli(['status', '--control', sock], { uid: NOBODY });
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/permission denied: uid 65534 is not allowed.*\[E_DENIED\]/);
  });

  it('lets members of --control-group use status and settle, not reload; the socket gets the group and 0660', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    const d = await startWith(sock, ['--control-group', String(NOBODY)]);
    const st = statSync(sock);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(NOBODY);
    expect((await cli(['status', '--control', sock], { uid: NOBODY })).status).toBe(0);
    expect((await cli(['settle', '--control', sock, '--timeout', '5'], { uid: NOBODY })).status).toBe(0);
    const r = await cli(['reload', '--control', sock], { uid: NOBODY });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/"reload" changes the daemon and needs root.*\[E_DENIED\]/);
    expect(d.records.some((x) => x.msg === 'reloaded')).toBe(false);
  });
});

describe('control socket bounds', () => {
  it('answers garbage and unknown commands with an error and goes on; closes on an oversized line', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock);
    const c = await Raw.open(sock);
    c.s.write('garbage\n');
    expect(await c.next()).toMatchObject({ ok: false, code: 'E_PROTOCOL' });
    expect(await c.ask({ cmd: 'format-disk' })).toMatchObject({ ok: false, code: 'E_UNKNOWN_COMMAND' });
    expect(await c.ask({ cmd: 'status' })).toMatchObject({ ok: true });
    c.s.write(Buffer.alloc(70 * 1024, 0x61));
    expect(await c.next()).toMatchObject({ ok: false, code: 'E_PROTOCOL', error: expect.stringContaining('longer than 65536') });
    await c.closedNow();
    expect((await cli(['status', '--control', sock])).status).toBe(0);
  });

  it('drops a monitor that never reads, keeps writing every record, and answers 100 concurrent status calls during the storm', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    // 3,000 distinct modaliases that match nothing: one debug record each per walk.
    const sysfs = fakeSysfs(3000, (i) => `nomatch:dev${i}`);
    const d = await startWith(sock, ['--log-level', 'debug'], sysfs);
    const stuck = await Raw.open(sock);
    stuck.s.write(`${JSON.stringify({ cmd: 'monitor' })}\n`);
    stuck.s.pause(); // never reads
    await new Promise((r) => setTimeout(r, 100));
    const root = await Raw.open(sock);
    let dropped = 0;
    let reloads = 0;
    for (; reloads < 12 && dropped === 0; ) {
      const asks = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const c = await Raw.open(sock);
          const r = await c.ask({ cmd: 'status' });
          c.s.destroy();
          return r;
        }).concat([root.ask({ cmd: 'reload' })]),
      );
      reloads++;
      expect(asks.every((a) => a.ok === true)).toBe(true);
      const st = (await root.ask({ cmd: 'status' })).status as { control: { refused: { slow: number } } };
      dropped = st.control.refused.slow;
    }
    expect(dropped).toBe(1);
    expect(await root.ask({ cmd: 'settle', timeout: 30 })).toMatchObject({ ok: true });
    await d.waitFor((r) => r.msg === 'coldplug' && r.why === 'reload' && d.records.filter((x) => x.msg === 'coldplug').length === reloads + 1, 10_000, 'every walk');
    // Every request of every walk was written: 3,000 per walk.
    const perWalk = d.records.filter((r) => r.msg === 'no module for modalias').length;
    expect(perWalk).toBe(3000 * (reloads + 1));
    stuck.s.destroy();
    root.s.destroy();
  });

  it('refuses to start on a path a live daemon holds, replaces a stale socket, never removes a file that is not a socket', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock);
    const second = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs(), '--control', sock]);
    daemons.push(second);
    expect(await second.exited).toBe(111);
    expect(second.stderr()).toContain(`${sock}: a running daemon already listens on this control socket`);
    expect((await cli(['status', '--control', sock])).status).toBe(0); // the first one still answers

    const stale = join(dir, 'stale');
    await new Promise<void>((resolve) => {
      const p = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      p.on('exit', () => resolve());
    });
    expect(lstatSync(stale).isSocket()).toBe(true);
    await startWith(stale);
    expect((await cli(['status', '--control', stale])).status).toBe(0);

    const file = join(dir, 'file');
    writeFileSync(file, 'keep me');
    const third = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs(), '--control', file]);
    daemons.push(third);
    expect(await third.exited).toBe(111);
    expect(third.stderr()).toContain(`${file}: control socket path exists and is not a socket; not removed`);
    expect(lstatSync(file).isFile()).toBe(true);
  });

  it('runs as non-root without a control socket after one warning, or on $XDG_RUNTIME_DIR', async () => {
    // As uid 65534: /run/hotplugd is not writable for it.
    const xdg = tmp();
    chownSync(xdg, NOBODY, NOBODY);
    const run = (env: Record<string, string>): Promise<Ran> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, ['dist/src/cli.js', 'run', '--demo', '--log-format', 'json', '--sysfs', emptySysfs()], {
          uid: NOBODY,
          gid: NOBODY,
          env: { ...process.env, XDG_RUNTIME_DIR: '', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        p.stdout.on('data', (x: Buffer) => {
          stdout += x.toString();
          if (stdout.includes('"msg":"demo:')) p.kill('SIGTERM');
        });
        let stderr = '';
        p.stderr.on('data', (x: Buffer) => (stderr += x.toString()));
        p.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const without = await run({});
    expect(without.status).toBe(0);
    expect(without.stdout.split('\n').filter((l) => l.includes('no control socket'))).toHaveLength(1);
    const withXdg = await run({ XDG_RUNTIME_DIR: xdg });
    expect(withXdg.status).toBe(0);
    expect(withXdg.stdout).toContain(`"path":"${join(xdg, 'hotplugd/control')}"`);
  });
});

describe('settle with real uevents', () => {
  it.runIf(REAL_UEVENTS)('returns only once every uevent written before the call was handled', async () => {
    requireRoot();
    // No devices to walk, but the kernel's real uevent_seqnum.
    const sysfs = emptySysfs();
    symlinkSync('/sys/kernel', join(sysfs, 'kernel'));
    const dir = tmp();
    const sock = join(dir, 'control');
    const d = await startWith(sock, [], sysfs);
    const files = readdirSync('/sys/bus/platform/devices').map((x) => join('/sys/bus/platform/devices', x, 'uevent')).filter((f) => existsSync(f));
    const c = await Raw.open(sock);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) for (const f of files) writeFileSync(f, 'add');
      const r = await c.ask({ cmd: 'settle', timeout: 60 });
      expect(r).toMatchObject({ ok: true, settled: true });
      const st = (await c.ask({ cmd: 'status' })).status as { queue: { depth: number; inFlight: string[] }; uevents: { received: number } };
      expect(st.queue).toEqual({ depth: 0, inFlight: [] });
      // Every uevent up to the seqnum read at the call was received (none lost here: a 64 MiB buffer).
      expect(st.uevents.received).toBeGreaterThanOrEqual(files.length * 20 * (round + 1));
      const last = d.records.filter((x) => typeof x.seqnum === 'string').at(-1);
      if (last !== undefined) expect(BigInt(last.seqnum as string)).toBeLessThanOrEqual(BigInt(r.seqnum as string));
    }
    c.s.destroy();
  });
});
