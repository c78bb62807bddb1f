/**
 * The index cache through the built CLI: `run` writes it after settling and
 * starts from it next time (the records say so), an unwritable cache
 * directory costs one record and nothing else, and processes writing the
 * same cache at once leave one whole file; a cache another user could have
 * written is passed over (also while she swaps directories under it), and
 * `match` never writes one. Every run names a temporary --cache-dir: the
 * host's /var/cache is never written.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheFileFor, readCache } from '../../src/sys/index-cache.js';
import { loadIndexWithCache } from '../../src/sys/indexfs.js';
import { forgeModulePath } from '../support/forge-cache.js';
import { smallDepmodDir } from '../support/small-index.js';
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
  // An hour old: not "racy" (index-cache.ts RACY_NS), so that a second start finds nothing to hash or rewrite.
  const old = new Date(Date.now() - 3600_000);
  for (const n of readdirSync(dir)) utimesSync(join(dir, n), old, old);
  return dir;
}

/** A sysfs tree with one device (so that start-up ends with a settled record). */
function oneDeviceSysfs(): string {
  const root = emptySysfs();
  mkdirSync(join(root, 'devices', 'platform', 'pcspkr'), { recursive: true });
  writeFileSync(join(root, 'devices', 'platform', 'pcspkr', 'uevent'), 'MODALIAS=platform:pcspkr\n');
  return root;
}

/** A sysfs tree with a virtio network device. */
function virtioSysfs(): string {
  const root = emptySysfs();
  mkdirSync(join(root, 'devices', 'virtio0'), { recursive: true });
  writeFileSync(join(root, 'devices', 'virtio0', 'uevent'), `MODALIAS=${VIRTIO_NET}\n`);
  return root;
}

async function runUntilSettled(dir: string, cacheDir: string, until: (r: Rec) => boolean, sysfs = oneDeviceSysfs()): Promise<Rec[]> {
  daemon = startDaemon(['--modules-dir', dir, '--config-dir', '', '--cmdline', '', '--mode', 'dry-run', '--sysfs', sysfs, '--cache-dir', cacheDir]);
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
    expect(first.find((r) => r.msg === 'index cache written')).toMatchObject({ file: cacheFileFor(cacheDir, dir) });

    const second = await runUntilSettled(dir, cacheDir, (r) => r.msg === 'settled');
    expect(second.find((r) => r.msg === 'listening')).toMatchObject({ kind: 'cache', modulesDir: dir, index: cacheFileFor(cacheDir, dir) });
    expect(second.find((r) => r.msg === 'settled')).toMatchObject({ indexKind: 'cache' });
    expect(second.some((r) => r.msg === 'index cache written' || r.msg === 'index cache not used')).toBe(false);
  });

  it('warns once about a damaged cache, runs from depmod files and writes a good one', async () => {
    const dir = modulesDir();
    const cacheDir = mkdtempSync(join(tmpdir(), 'hotplugd-cache-'));
    writeFileSync(cacheFileFor(cacheDir, dir), 'not an index');
    const recs = await runUntilSettled(dir, cacheDir, (r) => r.msg === 'index cache written');
    expect(recs.filter((r) => r.msg === 'index cache not used')).toEqual([
      expect.objectContaining({ level: 40, file: cacheFileFor(cacheDir, dir), code: 'E_INDEX_CORRUPT' }),
    ]);
    expect(recs.find((r) => r.msg === 'listening')).toMatchObject({ kind: 'depmod' });
    expect(readCache(cacheFileFor(cacheDir, dir), dir)).toHaveProperty('hit');
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

const VIRTIO_NET = 'virtio:d00000001v00001AF4';

/** `hotplugd match --json` of VIRTIO_NET: exit code, virtio_net's path, stderr lines. */
function matchJson(dir: string, cacheDir: string): { code: number | null; path: unknown; stderr: string[] } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'match', '--json', '--modules-dir', dir, '--config-dir', '', '--cmdline', '', '--cache-dir', cacheDir, VIRTIO_NET], { encoding: 'utf8' });
  const d = JSON.parse(r.stdout) as { modules: { name: string; path: unknown }[] };
  return { code: r.status, path: d.modules.find((m) => m.name === 'virtio_net')?.path, stderr: r.stderr.split('\n').filter(Boolean) };
}

/** A cache written by root for `dir` in `cacheDir` (a writing load, as `run` makes it). */
async function rootCache(dir: string, cacheDir: string): Promise<string> {
  const w = loadIndexWithCache({ modulesDir: dir, configDirs: [''], cmdline: '', cacheDir }, { write: true }).cache?.write;
  expect((await w!()).written).toBe(true);
  return cacheFileFor(cacheDir, dir);
}

describe('index cache (hotplugd match)', () => {
  it('never writes a cache or creates its directory: it only reads one', () => {
    const dir = modulesDir();
    const base = mkdtempSync(join(tmpdir(), 'hotplugd-cache-'));
    expect(matchJson(dir, join(base, 'new')).code).toBe(0);
    expect(existsSync(join(base, 'new'))).toBe(false);
    mkdirSync(join(base, 'empty'));
    expect(matchJson(dir, join(base, 'empty')).code).toBe(0);
    expect(readdirSync(join(base, 'empty'))).toEqual([]);
  });

  it("passes over a cache in another user's directory, or under a parent she may write, with one warning naming the directory, and answers the module depmod's files name", async () => {
    const dir = modulesDir();
    const base = mkdtempSync(join(tmpdir(), 'hotplugd-cache-'));
    const cacheDir = join(base, 'users', 'cache');
    mkdirSync(join(base, 'users'));
    // What she can do in a directory she may write: a valid, fresh cache, one path changed, the CRC recomputed.
    forgeModulePath(await rootCache(dir, cacheDir), 'kernel/drivers/net/virtio_net.ko', 'kernel/drivers/net/dummy.ko');
    const cases: [string, () => void, string][] = [
      ['her directory', () => chownSync(cacheDir, 65534, 65534), `not trusted: ${cacheDir} is owned by uid 65534`],
      ['a directory anyone may write', () => chmodSync(cacheDir, 0o777), `not trusted: ${cacheDir} is writable by its group or others and not sticky (mode 777)`],
      ['a parent she owns', () => chownSync(join(base, 'users'), 65534, 65534), `not trusted: ${join(base, 'users')} (above the cache directory) is owned by uid 65534`],
      ['a parent anyone may write', () => chmodSync(join(base, 'users'), 0o777), `not trusted: ${join(base, 'users')} (above the cache directory) is writable by its group or others`],
    ];
    for (const [what, make, problem] of cases) {
      chownSync(cacheDir, 0, 0);
      chmodSync(cacheDir, 0o755);
      chownSync(join(base, 'users'), 0, 0);
      chmodSync(join(base, 'users'), 0o755);
      make();
      const r = matchJson(dir, cacheDir);
      expect(r.path, what).toBe('kernel/drivers/net/virtio_net.ko');
      expect(r.stderr, what).toEqual([expect.stringContaining(problem)]);
    }
    // The daemon (dry-run): one warning, depmod's files, the right file, nothing written there.
    const recs = await runUntilSettled(dir, cacheDir, (r) => r.msg === 'settled', virtioSysfs());
    expect(recs.filter((r) => r.msg === 'index cache not used')).toEqual([expect.objectContaining({ level: 40, code: 'E_INPUT', problem: expect.stringContaining(`not trusted: ${join(base, 'users')}`) as string })]);
    expect(recs.find((r) => r.msg === 'listening')).toMatchObject({ kind: 'depmod' });
    expect(recs.find((r) => r.module === 'virtio_net')).toMatchObject({ result: 'would-load', path: join(dir, 'kernel/drivers/net/virtio_net.ko') });
    expect(recs.some((r) => r.msg === 'index cache written' || r.msg === 'index cache not written')).toBe(false);
  });
});

describe('index cache (hotplugd coldplug)', () => {
  it('processes writing the same cache at once leave one whole, usable file and no temporary files', async () => {
    const dir = modulesDir();
    const cacheDir = join(mkdtempSync(join(tmpdir(), 'hotplugd-cache-')), 'hotplugd');
    mkdirSync(cacheDir);
    const sysfs = virtioSysfs();
    const one = (): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, ['dist/src/cli.js', 'coldplug', '--dry-run', '--log-format', 'json', '--sysfs', sysfs, '--modules-dir', dir, '--config-dir', '', '--cmdline', '', '--cache-dir', cacheDir]);
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => resolve({ code, out: out.includes('"module":"virtio_net"') ? 'virtio_net' : out }));
      });
    const runs = await Promise.all([one(), one(), one(), one()]);
    expect(runs).toEqual(Array(4).fill({ code: 0, out: 'virtio_net' }));
    expect(readdirSync(cacheDir)).toEqual([basename(cacheFileFor(cacheDir, dir))]);
    expect(readCache(cacheFileFor(cacheDir, dir), dir)).toHaveProperty('hit');
    expect(await one()).toEqual({ code: 0, out: 'virtio_net' });
  });
});

/** gcc, to build the swapping helper; undefined with the reason when there is none. */
function compileSwap(): string | undefined {
  const out = join(mkdtempSync(join(tmpdir(), 'hotplugd-swap-')), 'swap');
  chmodSync(join(out, '..'), 0o755);
  try {
    execFileSync('gcc', ['-O2', '-o', out, '-x', 'c', '-'], { input: SWAP_C, stdio: ['pipe', 'ignore', 'pipe'] });
    return out;
  } catch (e) {
    console.log(`cannot build the renameat2 helper with gcc (${(e as Error).message})`);
    return undefined;
  }
}

/** swap A B: exchange A and B with renameat2(RENAME_EXCHANGE) until killed (exit 1 on the first failure). */
const SWAP_C = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  (void)argc;
  for (;;)
    if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2 /* RENAME_EXCHANGE */) != 0) { perror("renameat2"); return 1; }
}
`;

/** A module tree of one module (virtio_net) and an empty 0755 directory for the race, both root's. */
function raceTree(): { dir: string; base: string } {
  const small = smallDepmodDir(['virtio_net'], 50);
  const dir = join(mkdtempSync(join(tmpdir(), 'hotplugd-mods-')), '6.1.0-race');
  cpSync(small.dir, dir, { recursive: true });
  const base = mkdtempSync(join(tmpdir(), 'hotplugd-race-'));
  chmodSync(base, 0o755);
  return { dir, base };
}

/**
 * 1,000 reads of the cache at `file` while uid 65534 exchanges `a` and `b`
 * in a loop (the swap helper): how many answered her planted path, the right
 * one, or were refused (and with which problems, `hers/…` for either name).
 */
async function readsDuringSwap(swap: string, [a, b]: [string, string], file: string, dir: string, planted: string): Promise<{ planted: number; right: number; refused: number; problems: Set<string> }> {
  const swapper = spawn(swap, [a, b], { uid: 65534, gid: 65534, stdio: ['ignore', 'ignore', 'pipe'] });
  let swapErr = '';
  swapper.stderr.on('data', (d: Buffer) => (swapErr += d.toString()));
  const seen = { planted: 0, right: 0, refused: 0, problems: new Set<string>() };
  try {
    for (let i = 0; i < 1000; i++) {
      const r = readCache(file, dir);
      if ('hit' in r) {
        const path = r.hit.parts.modules.find((m) => m.name === 'virtio_net')?.path;
        if (path === planted) seen.planted++;
        else if (path === 'kernel/drivers/net/virtio_net.ko') seen.right++;
      } else if ('problem' in r) {
        seen.refused++;
        seen.problems.add(r.problem.replace(/hers\/(cache|evil)/, 'hers/…'));
      }
    }
    expect(swapper.exitCode, `the swap loop ran all along (${swapErr})`).toBeNull();
  } finally {
    swapper.kill('SIGKILL');
  }
  return seen;
}

describe('index cache: a user who owns the directory above it', () => {
  // A parent she owns is refused by ownership alone, whatever the race: this
  // checks that no swap ever gets her bytes decoded; the race itself (a walk
  // that checks one directory and reads another) is the sticky-directory
  // symlink flip's test below.
  it("never gets her cache decoded while she swaps her directory with root's under a parent she owns (renameat2 RENAME_EXCHANGE, 1,000 reads, each answer checked)", async (ctx) => {
    const swap = compileSwap();
    ctx.skip(swap === undefined, 'needs gcc to build the renameat2 helper');
    if (swap === undefined) return;
    const { dir, base } = raceTree();
    const parent = join(base, 'hers');
    mkdirSync(parent);
    const file = await rootCache(dir, join(parent, 'cache'));
    // Her directory: the same file, fresh and intact, virtio_net's path an absolute one she chose.
    const evil = join(parent, 'evil');
    mkdirSync(evil);
    cpSync(file, join(evil, basename(file)));
    const planted = forgeModulePath(join(evil, basename(file)), 'kernel/drivers/net/virtio_net.ko', '/tmp/planted/evil.ko');
    for (const p of [evil, join(evil, basename(file)), parent]) chownSync(p, 65534, 65534);
    const seen = await readsDuringSwap(swap, [join(parent, 'cache'), evil], file, dir, planted);
    console.log(`1000 reads during the swap loop: ${JSON.stringify({ ...seen, problems: [...seen.problems] })}`);
    expect(seen.planted).toBe(0);
    // She owns a directory above the cache: every read is refused, naming it.
    expect(seen.refused).toBe(1000);
    expect([...seen.problems].every((p) => p.includes(`not trusted: ${parent} (above the cache directory) is owned by uid 65534`))).toBe(true);
  });

  it("reads only root's cache through a symlink she flips between root's directory and hers (in a sticky directory, 1,000 reads)", async (ctx) => {
    const swap = compileSwap();
    ctx.skip(swap === undefined, 'needs gcc to build the renameat2 helper');
    if (swap === undefined) return;
    const { dir, base } = raceTree();
    const roots = join(base, 'roots');
    mkdirSync(roots);
    const file = await rootCache(dir, join(roots, 'cache'));
    // A sticky directory anyone may write (as /tmp): her directory and her two symlinks there.
    const sticky = join(base, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    const hers = join(sticky, 'hers');
    mkdirSync(join(hers, 'cache'), { recursive: true });
    const herFile = join(hers, 'cache', basename(cacheFileFor(join(sticky, 'link', 'cache'), dir)));
    cpSync(file, herFile);
    const planted = forgeModulePath(herFile, 'kernel/drivers/net/virtio_net.ko', '/tmp/planted/evil.ko');
    for (const p of [hers, join(hers, 'cache'), herFile]) chownSync(p, 65534, 65534);
    execFileSync('ln', ['-s', roots, join(sticky, 'link')], { uid: 65534, gid: 65534 });
    execFileSync('ln', ['-s', hers, join(sticky, 'link2')], { uid: 65534, gid: 65534 });
    const through = herFile.replace(join(hers, 'cache'), join(sticky, 'link', 'cache'));
    const seen = await readsDuringSwap(swap, [join(sticky, 'link'), join(sticky, 'link2')], through, dir, planted);
    console.log(`1000 reads through the flipped symlink: ${JSON.stringify({ ...seen, problems: [...seen.problems] })}`);
    expect(seen.planted).toBe(0);
    expect(seen.right + seen.refused).toBe(1000);
  });
});
