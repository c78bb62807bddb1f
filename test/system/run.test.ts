/**
 * `hotplugd run` as a process: start-up failures exit at once, signals during
 * start-up, a SIGHUP storm under a small descriptor limit. These open the real
 * uevent socket (read-only: nothing is written to the host's /sys) and walk
 * fake sysfs trees.
 */
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CaughtSignals, type DaemonSignal } from '../../src/signals.js';
import { type Running, startDaemon, killLeftover } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const INDEX = ['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', ''];

let daemon: Running | undefined;
afterEach(async () => {
  await killLeftover(daemon);
  daemon = undefined;
});

/** A sysfs tree with `n` devices, each announcing a MODALIAS in its uevent file. */
function fakeSysfs(n: number): string {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-sysfs-'));
  for (let i = 0; i < n; i++) {
    const dir = join(root, 'devices', `bus${i % 20}`, `dev${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'uevent'), `DRIVER=x\nMODALIAS=${i % 2 === 0 ? 'platform:pcspkr' : `virtio:d0000000${i % 9}v00001AF4`}\n`);
  }
  return root;
}

function runSync(args: string[]): { status: number | null; signal: string | null; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'run', '--log-format', 'json', '--control', '', ...args], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

describe('hotplugd run start-up', () => {
  it('exits 111 at once with one line when the index is missing, instead of hanging on its open socket', () => {
    const r = runSync(['--mode', 'dry-run', '--modules-dir', '/nonexistent', '--cmdline', '', '--config-dir', '']);
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.status).toBe(111);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining('[E_INDEX_MISSING]')]);
  });

  it('exits 111 at once when the meta.pb is truncated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-meta-'));
    writeFileSync(join(dir, 'meta.pb'), Buffer.from([0x0a, 0x40, 0x01]));
    const r = runSync(['--mode', 'dry-run', '--meta', join(dir, 'meta.pb'), ...INDEX]);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(111);
    expect(r.stderr).toMatch(/\[E_INDEX_CORRUPT\]/);
  });

  it('escapes control bytes in its error line', () => {
    const r = runSync(['--mode', 'dry-run', '--modules-dir', '/nonexistent/\x1b[2Jx\x07', '--cmdline', '']);
    expect(r.status).toBe(111);
    expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f]/); // eslint-disable-line no-control-regex
    expect(r.stderr).toContain('/nonexistent/\\x1b[2Jx\\x07');
  });

  it('keeps a SIGHUP that arrives during start-up and reloads once started, instead of dying', async () => {
    daemon = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', fakeSysfs(10)]);
    const pid = daemon.proc.pid!;
    // Wait until the process has installed its SIGHUP handler (SIGHUP is 1: bit 0 of SigCgt),
    // then signal at once: start-up (imports, index load, walk) is still going on.
    for (let i = 0; i < 2000; i++) {
      const cgt = /SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
      if (cgt !== undefined && (BigInt(`0x${cgt}`) & 1n) !== 0n) break;
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(daemon.records.some((r) => r.msg === 'listening')).toBe(false);
    daemon.proc.kill('SIGHUP');
    await daemon.waitFor((r) => r.msg === 'reloaded', 15_000, 'the reload asked for during start-up');
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });
});

describe('hotplugd run --demo', () => {
  it('runs the real daemon in dry-run on the shipped index, says how to make a device event, and leaves no index cache behind', async () => {
    const sysfs = fakeSysfs(4);
    const cacheDir = mkdtempSync(join(tmpdir(), 'hotplugd-demo-cache-'));
    daemon = startDaemon(['--demo', '--sysfs', sysfs, '--config-dir', ''], { HOTPLUGD_CACHE_DIR: cacheDir });
    const demo = await daemon.waitFor((r) => typeof r.msg === 'string' && r.msg.startsWith('demo:'), 15_000, 'the demo hint');
    expect(demo.try).toBe(`echo add > ${sysfs}/devices/bus0/dev0/uevent`); // the pcspkr device of the fake tree
    expect(demo.then).toBeUndefined(); // no control socket here (--control ''): nothing to ask
    expect(daemon.records.find((r) => r.msg === 'listening')).toMatchObject({ kernel: 'dry-run', modulesDir: FIXTURE_DIR, index: FIXTURE_DIR });
    await daemon.waitFor((r) => r.msg === 'module' && r.module === 'pcspkr' && r.result === 'would-load', 10_000, 'would-load pcspkr');
    await daemon.waitFor((r) => r.msg === 'settled', 10_000, 'settled (when a cache would be written)');
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(readdirSync(cacheDir)).toEqual([]);
    expect(daemon.records.filter((r) => typeof r.msg === 'string' && r.msg.startsWith('index cache'))).toEqual([]);
  });

  it('says in "then" how to see the decision for the device of "try", and that command answers it', async () => {
    const sysfs = fakeSysfs(4);
    const sock = join(mkdtempSync(join(tmpdir(), 'hotplugd-demo-')), 'control');
    daemon = startDaemon(['--demo', '--sysfs', sysfs, '--config-dir', '', '--control', sock]);
    const demo = await daemon.waitFor((r) => typeof r.msg === 'string' && r.msg.startsWith('demo:'), 15_000, 'the demo hint');
    // Started from this checkout: its entry point, as a command to paste.
    expect(demo.then).toBe(`node ${resolve('dist/src/cli.js')} why --control ${sock} /devices/bus0/dev0`);
    const why = spawnSync(process.execPath, (demo.then as string).split(' ').slice(1), { encoding: 'utf8', timeout: 20_000 });
    expect(why.status).toBe(0);
    expect(why.stdout).toMatch(/would-load +pcspkr/);
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('explains a missing index by whether the kernel has module support at all', () => {
    const r = runSync(['--mode', 'dry-run', '--modules-dir', '/nonexistent', '--cmdline', '']);
    expect(r.status).toBe(111);
    if (existsSync('/proc/modules')) {
      expect(r.stderr).not.toContain('no loadable-module support');
    } else {
      // Our CI machines: a kernel without modules.
      expect(r.stderr).toContain('this kernel has no loadable-module support (/proc/modules is absent)');
      expect(r.stderr).toContain('hotplugd run --demo');
    }
  });
});

describe('hotplugd run reloads', () => {
  it('merges a storm of 100 SIGHUPs under a 256-descriptor limit: no EMFILE, every walk sees every device', async () => {
    const devices = 3000;
    const sysfs = fakeSysfs(devices);
    const args = ['dist/src/cli.js', 'run', '--log-format', 'json', '--control', '', ...INDEX, '--mode', 'dry-run', '--sysfs', sysfs];
    const proc = spawn('sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" ${args.map((a) => `'${a}'`).join(' ')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const records = (): Record<string, unknown>[] =>
      out
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 200 && !records().some((r) => r.msg === 'coldplug'); i++) await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 100; i++) {
      proc.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 15));
    }
    // The storm is over when every reload has had its walk and nothing changed for a second.
    let last = '';
    let stable = 0;
    for (let i = 0; i < 240 && stable < 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const walks = records().filter((r) => r.msg === 'coldplug').length;
      const reloads = records().filter((r) => r.msg === 'reloaded').length;
      const now = `${walks}/${reloads}`;
      stable = now === last && walks === reloads + 1 ? stable + 1 : 0;
      last = now;
    }
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    const walks = records().filter((r) => r.msg === 'coldplug');
    const reloads = records().filter((r) => r.msg === 'reloaded');
    expect(reloads.length).toBeGreaterThan(0);
    expect(reloads.length).toBeLessThan(100); // merged
    expect(walks.length).toBe(reloads.length + 1);
    for (const w of walks) expect(w).toMatchObject({ devices, unreadable: 0 });
    expect(out + err).not.toMatch(/EMFILE/);
    expect(records().filter((r) => (r.level as number) >= 50)).toEqual([]);
  }, 90_000);
});

describe('CaughtSignals', () => {
  it('keeps signals caught before a handler is attached and replays each kind once', () => {
    const proc = new EventEmitter();
    const caught = new CaughtSignals(proc);
    proc.emit('SIGHUP');
    proc.emit('SIGHUP');
    proc.emit('SIGTERM');
    const got: DaemonSignal[] = [];
    caught.attach((s) => got.push(s));
    expect(got).toEqual(['SIGHUP', 'SIGTERM']);
    proc.emit('SIGHUP');
    expect(got).toEqual(['SIGHUP', 'SIGTERM', 'SIGHUP']);
  });
});
