/**
 * The index cache (src/sys/index-cache.ts): a fresh cache answers as depmod's
 * files do; every kind of staleness or damage is one problem and a rebuild,
 * never a crash or a wrong answer.
 */
import { appendFileSync, chmodSync, chownSync, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import protobuf from 'protobufjs';
import { beforeEach, describe, expect, it } from 'vitest';
import { type ModuleIndex } from '../../../src/core/index/module-index.js';
import { CACHE_FORMAT, readCacheRecord, replaceCacheRecord } from '../../../src/core/index/meta/cache-record.js';
import { META_SCHEMA } from '../../../src/core/index/meta/schema.js';
import { cacheFileFor, readCache, writeCacheFile } from '../../../src/sys/index-cache.js';
import { type IndexLoad, type IndexLocation, loadIndexWithCache } from '../../../src/sys/indexfs.js';
import { forgeModulePath } from '../../support/forge-cache.js';
import { smallDepmodDir } from '../../support/small-index.js';

const AHCI = 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01';
const hourAgo = new Date(Date.now() - 3600_000);

/** A load as `run` and `coldplug` make it: it may write the cache. */
const loadRW = (l: IndexLocation): IndexLoad => loadIndexWithCache(l, { write: true });

function answers(index: ModuleIndex, queries: readonly string[]): string {
  return queries.map((q) => `${q}\t${index.lookup(q).source}\t${index.lookup(q).names.join(' ')}`).join('\n');
}

describe('index cache', () => {
  let dir: string;
  let queries: string[];
  let cacheDir: string;
  let loc: IndexLocation;
  let file: string;

  /** A load, and its cache write done at once. */
  async function load(): Promise<IndexLoad> {
    const r = loadRW(loc);
    if (r.cache?.write) expect((await r.cache.write()).written).toBe(true);
    return r;
  }

  beforeEach(() => {
    const small = smallDepmodDir(['ahci', 'virtio_net'], 400);
    // Named like a module directory (/lib/modules/RELEASE), with old mtimes (not racy).
    dir = join(mkdtempSync(join(tmpdir(), 'hotplugd-cache-')), '6.1.0-test');
    cpSync(small.dir, dir, { recursive: true });
    // A module with an alias but no file: it must stay "no file", not become built in.
    appendFileSync(join(dir, 'modules.alias'), 'alias pci:vFFFFd* nofile_mod\n');
    writeFileSync(join(dir, 'modules.symbols'), 'alias symbol:ahci_ops libahci\n');
    for (const n of readdirSync(dir)) utimesSync(join(dir, n), hourAgo, hourAgo);
    queries = [...small.queries, 'pci:vFFFFd0', 'nofile_mod', 'symbol:ahci_ops'];
    cacheDir = join(mkdtempSync(join(tmpdir(), 'hotplugd-cachedir-')), 'cache');
    loc = { modulesDir: dir, configDirs: [''], cmdline: '', cacheDir };
    file = cacheFileFor(cacheDir, dir);
  });

  it('is written after a load from depmod files, in a directory it creates 0755, and then used with the same answers', async () => {
    const first = await load();
    expect(first.index.kind).toBe('depmod');
    expect(basename(file)).toMatch(/^6\.1\.0-test-[0-9a-f]{8}\.idx$/);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o755);
    const second = loadRW(loc);
    expect(second.index.kind).toBe('cache');
    expect(second.cache).toEqual({ file });
    expect(answers(second.index, queries)).toBe(answers(first.index, queries));
    expect(second.index.lookup('nofile_mod').source).toBe('none');
    expect(second.index.lookup('symbol:ahci_ops').names).toEqual(['libahci']);
    // Its module list is a module table (module-table.ts), not a Module message per module; no radix trees.
    const msg = protobuf.Root.fromJSON(META_SCHEMA).lookupType('hotplugd.meta.Meta').decode(readFileSync(file)) as unknown as Record<string, unknown[] | object | undefined>;
    expect([msg.modules, msg.moduleDeviceMatches ?? null, typeof msg.moduleTable]).toEqual([[], null, 'object']);
  });

  it('is used only when every directory from / to it is owned by root (or this user) and not writable by others; else one problem naming the directory, depmod files read, nothing written', async () => {
    await load();
    const want = answers(loadRW({ ...loc, cacheDir: '' }).index, queries);
    expect(loadRW(loc).index.kind).toBe('cache');
    const parent = dirname(cacheDir);
    const cases: [string, () => void, () => void, string][] = [
      ['a directory anyone may write', () => chmodSync(cacheDir, 0o777), () => chmodSync(cacheDir, 0o755), `${cacheDir} is writable by its group or others and not sticky (mode 777)`],
      ['a directory its group may write', () => chmodSync(cacheDir, 0o775), () => chmodSync(cacheDir, 0o755), `${cacheDir} is writable by its group`],
      ["another user's directory", () => chownSync(cacheDir, 65534, 65534), () => chownSync(cacheDir, 0, 0), `${cacheDir} is owned by uid 65534`],
      ['a parent another user owns', () => chownSync(parent, 65534, 65534), () => chownSync(parent, 0, 0), `${parent} (above the cache directory) is owned by uid 65534`],
      ['a parent anyone may write', () => chmodSync(parent, 0o777), () => chmodSync(parent, 0o700), `${parent} (above the cache directory) is writable by its group or others`],
    ];
    for (const [what, make, undo, problem] of cases) {
      make();
      try {
        const r = loadRW(loc);
        expect(r.index.kind, what).toBe('depmod');
        expect(r.cache?.problem?.problem, what).toContain(problem);
        expect(r.cache?.write, `${what}: nothing is written there`).toBeUndefined();
        expect(answers(r.index, queries), what).toBe(want);
      } finally {
        undo();
      }
    }
    expect(loadRW(loc).index.kind).toBe('cache');
  });

  it("is not used when the file itself is another user's, writable by others, or has a second link, with one problem naming it", async () => {
    await load();
    const cases: [string, () => void, () => void, RegExp][] = [
      ['writable by others', () => chmodSync(file, 0o666), () => chmodSync(file, 0o644), /writable by its group or others/],
      ["another user's", () => chownSync(file, 65534, 65534), () => chownSync(file, 0, 0), /owned by uid 65534/],
      ['hard-linked', () => linkSync(file, join(cacheDir, 'other')), () => {}, /2 links/],
    ];
    for (const [what, make, undo, problem] of cases) {
      make();
      try {
        const r = loadRW(loc);
        expect(r.index.kind, what).toBe('depmod');
        expect(r.cache?.problem?.problem, what).toMatch(problem);
      } finally {
        undo();
      }
    }
  });

  it('refuses a cache carrying an absolute or ".." module path, intact and fresh as it is (one problem, depmod files read)', async () => {
    await load();
    const good = readFileSync(file);
    for (const evil of ['/tmp/evil.ko', 'kernel/../../../../tmp/evil.ko']) {
      writeFileSync(file, good);
      forgeModulePath(file, 'kernel/drivers/net/virtio_net.ko', evil);
      const r = loadRW(loc);
      expect(r.index.kind, evil).toBe('depmod');
      expect(r.cache?.problem, evil).toMatchObject({ code: 'E_PATH_ESCAPE' });
      expect(r.index.moduleByName('virtio_net')?.path).toBe('kernel/drivers/net/virtio_net.ko');
    }
  });

  it('is not written for a module directory whose modules.dep names a module by an absolute path (depmod.d `external`): a cache never holds one', async () => {
    appendFileSync(join(dir, 'modules.dep'), '/opt/vendor/extra_mod.ko: kernel/drivers/ata/libahci.ko\n');
    utimesSync(join(dir, 'modules.dep'), hourAgo, hourAgo);
    const first = loadRW(loc);
    expect(first.index.moduleByName('extra_mod')?.path).toBe('/opt/vendor/extra_mod.ko');
    expect(await first.cache!.write!()).toMatchObject({ written: false, level: 'info', problem: expect.stringMatching(/absolute/) as string });
    expect(existsSync(file)).toBe(false);
  });

  it('is read, never written, by a read-only load: no file, no directory created', async () => {
    const ro = loadIndexWithCache(loc);
    expect(ro.index.kind).toBe('depmod');
    expect(ro.cache?.write).toBeUndefined();
    expect(existsSync(cacheDir)).toBe(false);
    await load();
    expect(loadIndexWithCache(loc).index.kind).toBe('cache');
    utimesSync(join(dir, 'modules.alias'), new Date(Date.now() - 600_000), new Date(Date.now() - 600_000));
    const touched = loadIndexWithCache(loc);
    expect(touched.index.kind).toBe('cache');
    expect(touched.cache?.write).toBeUndefined(); // not even the record's new stat
  });

  it('is named by the release and its module directory: two trees of one release keep two caches', async () => {
    await load();
    const twin = join(mkdtempSync(join(tmpdir(), 'hotplugd-twin-')), '6.1.0-test');
    cpSync(dir, twin, { recursive: true });
    const other = cacheFileFor(cacheDir, twin);
    expect(other).not.toBe(file);
    expect(basename(other)).toMatch(/^6\.1\.0-test-[0-9a-f]{8}\.idx$/);
    const t = loadRW({ ...loc, modulesDir: twin });
    expect(t.cache?.problem).toBeUndefined();
    expect((await t.cache!.write!()).written).toBe(true);
    expect(loadRW(loc).index.kind).toBe('cache');
    expect(loadRW({ ...loc, modulesDir: twin }).index.kind).toBe('cache');
  });

  it('is still used when a source was touched but not changed (mtime differs, hash matches), and its record is rewritten', async () => {
    await load();
    utimesSync(join(dir, 'modules.alias'), new Date(Date.now() - 600_000), new Date(Date.now() - 600_000));
    const r = loadRW(loc);
    expect(r.index.kind).toBe('cache');
    expect(r.cache?.write).toBeDefined();
    await r.cache!.write!();
    const rec = readCacheRecord(readFileSync(file), file).record;
    expect(rec.sources.find((s) => s.path.endsWith('modules.alias'))!.mtimeNs).toBe(statSync(join(dir, 'modules.alias'), { bigint: true }).mtimeNs);
    expect(loadRW(loc).cache?.write).toBeUndefined(); // stat matches again: nothing hashed, nothing to write
  });

  it.each([
    ['a source whose content changed', () => writeFileSync(join(dir, 'modules.alias'), `alias ${AHCI} virtio_net\n`), 'modules.alias changed'],
    ['a source whose size changed', () => appendFileSync(join(dir, 'modules.dep'), 'kernel/x/nofile_mod.ko:\n'), 'modules.dep changed'],
    ['a source that appeared', () => writeFileSync(join(dir, 'modules.builtin'), 'kernel/x/nofile_mod.ko\n'), 'modules.builtin appeared'],
  ])('is rebuilt after %s', async (_what, change, problem) => {
    const before = await load();
    change();
    const r = loadRW(loc);
    expect(r.index.kind).toBe('depmod');
    expect(r.cache?.problem?.problem).toContain(problem);
    expect(r.cache?.write).toBeDefined();
    expect((await r.cache!.write!()).written).toBe(true);
    const again = loadRW(loc);
    expect(again.index.kind).toBe('cache');
    expect(answers(again.index, queries)).toBe(answers(r.index, queries));
    expect(answers(again.index, queries)).not.toBe(answers(before.index, queries));
  });

  it('hashes a source modified within the same timestamp tick as the cache was written, and sees the change ("racy", as git)', async () => {
    // The same whole second for both versions: a coarse file system cannot tell them apart by stat.
    const tick = new Date(Math.floor(Date.now() / 1000) * 1000);
    utimesSync(join(dir, 'modules.alias'), tick, tick);
    await load();
    const alias = readFileSync(join(dir, 'modules.alias'), 'latin1');
    writeFileSync(join(dir, 'modules.alias'), alias.replace('virtio_net', 'virtio_nex')); // same size
    utimesSync(join(dir, 'modules.alias'), tick, tick);
    const r = loadRW(loc);
    expect(r.index.kind).toBe('depmod');
    expect(r.cache?.problem?.problem).toContain('modules.alias changed');
  });

  it('is not used for another module directory (another release), and is rebuilt there', async () => {
    await load();
    const other = join(dir, '..', '6.1.0-other');
    cpSync(dir, other, { recursive: true });
    cpSync(file, cacheFileFor(cacheDir, other));
    const r = loadRW({ ...loc, modulesDir: other });
    expect(r.index.kind).toBe('depmod');
    expect(r.cache?.problem?.problem).toMatch(/built for .*6\.1\.0-test/);
  });

  it('changes of modprobe.d and the command line need no rebuild: they are applied over the cached index at every load', async () => {
    await load();
    const conf = mkdtempSync(join(tmpdir(), 'hotplugd-conf-'));
    writeFileSync(join(conf, 'x.conf'), 'blacklist ahci\nalias mine ahci\n');
    const r = loadRW({ ...loc, configDirs: [conf] });
    expect(r.index.kind).toBe('cache');
    expect(r.index.isBlacklisted('ahci')).toBe(true);
    expect(r.index.lookup('mine').names).toEqual(['ahci']);
  });

  it('refuses an unknown format with a problem naming it', async () => {
    await load();
    const bytes = readFileSync(file);
    const { record, at } = readCacheRecord(bytes, file);
    writeFileSync(file, replaceCacheRecord(bytes, at, { ...record, format: 99 }));
    expect(readCache(file, dir)).toEqual({ problem: `unknown cache format 99 (this hotplugd writes ${CACHE_FORMAT})` });
  });

  it('ignores a truncated cache, a meta.pb, a directory and an oversized file, each with a problem, and reads depmod files', async () => {
    await load();
    const good = readFileSync(file);
    const cases: [() => void, RegExp][] = [
      [() => truncateSync(file, good.length - 10), /no checksum/],
      [() => writeFileSync(file, good.subarray(0, good.length >> 1)), /no checksum/],
      [() => writeFileSync(file, ''), /no checksum/],
      [() => truncateSync(file, 65 * 1024 * 1024), /larger than the 64 MiB cap/],
    ];
    for (const [damage, problem] of cases) {
      writeFileSync(file, good);
      damage();
      const r = loadRW(loc);
      expect(r.index.kind).toBe('depmod');
      expect(r.cache?.problem?.problem).toMatch(problem);
    }
    const asDir = cacheFileFor(cacheDir, join(dir, '..', 'dir-release'));
    mkdirSync(asDir);
    expect(readCache(asDir, join(dir, '..', 'dir-release'))).toMatchObject({ code: 'E_INPUT', problem: expect.stringMatching(/not a regular file/) as string });
  });

  it('ignores the cache after single-byte damage (one bit flipped in each of ~750 bytes, all of the record and checksum), with a problem: never a crash, never other answers', async () => {
    const depmod = (await load()).index;
    const want = answers(depmod, queries);
    const good = readFileSync(file);
    // Every byte of the record and checksum at the end, and bytes at a stride before them.
    const tail = good.length - 450;
    const stride = Math.ceil(tail / 300);
    const at = [...Array.from({ length: Math.ceil(tail / stride) }, (_, k) => k * stride), ...Array.from({ length: 450 }, (_, k) => tail + k)];
    let refused = 0;
    for (const i of at) {
      const bad = Buffer.from(good);
      bad[i]! ^= 1 << (i % 8);
      writeFileSync(file, bad);
      const r = readCache(file, dir);
      if ('problem' in r) refused++;
      else if ('hit' in r) expect(answers(loadRW(loc).index, queries)).toBe(want);
    }
    expect(refused).toBe(at.length);
  });

  it('writing into a directory whose parent is missing, or that is a file, reports it and throws nothing', () => {
    const missing = writeCacheFile(join(cacheDir, 'no', 'such', 'x.idx'), new Uint8Array(4));
    expect(missing).toMatchObject({ written: false, level: 'info', code: 'ENOENT' });
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(join(cacheDir, 'plain'), '');
    const notDir = writeCacheFile(join(cacheDir, 'plain', 'x.idx'), new Uint8Array(4));
    expect(notDir).toMatchObject({ written: false, level: 'warn' });
  });

  it('records the module directory as an absolute path: written through a relative one, used through the absolute one', async () => {
    loc = { ...loc, modulesDir: relative(process.cwd(), dir) };
    expect((await load()).index.kind).toBe('depmod');
    expect(loadRW({ ...loc, modulesDir: dir }).index.kind).toBe('cache');
  });

  it("is off with cacheDir '' (nothing read, nothing written)", () => {
    const r = loadRW({ ...loc, cacheDir: '' });
    expect(r.index.kind).toBe('depmod');
    expect(r.cache).toBeUndefined();
  });
});
