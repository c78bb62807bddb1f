/**
 * The index cache through the built CLI: `run` writes it after settling and
 * starts from it next time (the records say so), an unwritable cache
 * directory costs one record and nothing else, and processes writing the
 * same cache at once leave one whole file. Every run names a temporary
 * --cache-dir: the host's /var/cache is never written.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readCache } from '../../src/sys/index-cache.js';
import { emptySysfs, killLeftover, type Rec, type Running, startDaemon } from '../support/daemon-helpers.js';
import { FIXTURE_ABI, FIXTURE_DIR } from '../support/helpers.js';

let daemon: Running | undefined;
afterEach(async () => {
  await killLeftover(daemon);
  daemon = undefined;
});

/** The Debian fixture as /…/RELEASE, so that the cache is named RELEASE.idx. */
function modulesDir(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'hotplugd-mods-')), FIXTURE_ABI);
  cpSync(FIXTURE_DIR, dir, { recursive: true });
  return dir;
}

/** A sysfs tree with one device (so that start-up ends with a settled record). */
function oneDeviceSysfs(): string {
  const root = emptySysfs();
  mkdirSync(join(root, 'devices', 'platform', 'pcspkr'), { recursive: true });
  writeFileSync(join(root, 'devices', 'platform', 'pcspkr', 'uevent'), 'MODALIAS=platform:pcspkr\n');
  return root;
}

async function runUntilSettled(dir: string, cacheDir: string, until: (r: Rec) => boolean): Promise<Rec[]> {
  daemon = startDaemon(['--modules-dir', dir, '--config-dir', '', '--cmdline', '', '--mode', 'dry-run', '--sysfs', oneDeviceSysfs(), '--cache-dir', cacheDir]);
  await daemon.waitFor(until, 30_000, 'the record awaited');
  daemon.proc.kill('SIGTERM');
  expect(await daemon.exited).toBe(0);
  return daemon.records;
}

describe('index cache (hotplugd run)', () => {
  it('is written after the first settle and read at the next start: listening and settled say kind cache', async () => {
    const dir = modulesDir();
    const cacheDir = join(mkdtempSync(join(tmpdir(), 'hotplugd-cache-')), 'hotplugd');
    const first = await runUntilSettled(dir, cacheDir, (r) => r.msg === 'index cache written');
    expect(first.find((r) => r.msg === 'listening')).toMatchObject({ kind: 'depmod' });
    expect(first.find((r) => r.msg === 'settled')).toMatchObject({ indexKind: 'depmod' });
    // Written after the first settled record, not before: it stays off the start-up path.
    expect(first.findIndex((r) => r.msg === 'settled')).toBeLessThan(first.findIndex((r) => r.msg === 'index cache written'));
    expect(first.find((r) => r.msg === 'index cache written')).toMatchObject({ file: join(cacheDir, `${FIXTURE_ABI}.idx`) });

    const second = await runUntilSettled(dir, cacheDir, (r) => r.msg === 'settled');
    expect(second.find((r) => r.msg === 'listening')).toMatchObject({ kind: 'cache', index: join(cacheDir, `${FIXTURE_ABI}.idx`) });
    expect(second.find((r) => r.msg === 'settled')).toMatchObject({ indexKind: 'cache' });
    expect(second.some((r) => r.msg === 'index cache written' || r.msg === 'index cache not used')).toBe(false);
  });

  it('warns once about a damaged cache, runs from depmod files and writes a good one', async () => {
    const dir = modulesDir();
    const cacheDir = mkdtempSync(join(tmpdir(), 'hotplugd-cache-'));
    writeFileSync(join(cacheDir, `${FIXTURE_ABI}.idx`), 'not an index');
    const recs = await runUntilSettled(dir, cacheDir, (r) => r.msg === 'index cache written');
    expect(recs.filter((r) => r.msg === 'index cache not used')).toEqual([
      expect.objectContaining({ level: 40, file: join(cacheDir, `${FIXTURE_ABI}.idx`), code: 'E_INDEX_CORRUPT' }),
    ]);
    expect(recs.find((r) => r.msg === 'listening')).toMatchObject({ kind: 'depmod' });
    expect(readCache(join(cacheDir, `${FIXTURE_ABI}.idx`), dir)).toHaveProperty('hit');
  });

  it('runs on when the cache directory cannot be made or written, with one record saying why', async () => {
    const dir = modulesDir();
    const base = mkdtempSync(join(tmpdir(), 'hotplugd-cache-'));
    const missingParent = await runUntilSettled(dir, join(base, 'no', 'hotplugd'), (r) => r.msg === 'index cache not written');
    expect(missingParent.filter((r) => r.msg === 'index cache not written')).toEqual([expect.objectContaining({ level: 30, code: 'ENOENT' })]);
    writeFileSync(join(base, 'file'), '');
    const notDir = await runUntilSettled(dir, join(base, 'file'), (r) => r.msg === 'index cache not written');
    expect(notDir.filter((r) => r.msg === 'index cache not written')).toEqual([expect.objectContaining({ level: 40 })]);
    expect(notDir.some((r) => r.msg === 'settled')).toBe(true);
  });
});

describe('index cache (hotplugd match)', () => {
  it('processes writing the same cache at once leave one whole, usable file and no temporary files', async () => {
    const dir = modulesDir();
    const cacheDir = join(mkdtempSync(join(tmpdir(), 'hotplugd-cache-')), 'hotplugd');
    mkdirSync(cacheDir);
    const one = (): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, ['dist/src/cli.js', 'match', '--modules-dir', dir, '--config-dir', '', '--cmdline', '', '--cache-dir', cacheDir, 'virtio:d00000001v00001AF4']);
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => resolve({ code, out }));
      });
    const runs = await Promise.all([one(), one(), one(), one()]);
    expect(runs).toEqual(Array(4).fill({ code: 0, out: 'virtio_net\n' }));
    expect(readdirSync(cacheDir)).toEqual([`${FIXTURE_ABI}.idx`]);
    expect(readCache(join(cacheDir, `${FIXTURE_ABI}.idx`), dir)).toHaveProperty('hit');
    expect(await one()).toEqual({ code: 0, out: 'virtio_net\n' });
  });
});
