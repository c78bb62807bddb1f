/**
 * Which index a load reads: the module directory's meta.pb or depmod's files,
 * chosen again at every load (run's start and each SIGHUP call loadIndex with
 * the location setup() made once), and a damaged meta.pb that was chosen
 * automatically does not disable a good module directory.
 */
import { mkdtempSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { setup } from '../../../src/commands/daemon-setup.js';
import { encodeMeta } from '../../../src/core/index/meta/write.js';
import { type HotplugError } from '../../../src/errors.js';
import { depmodParts, type IndexLocation, loadIndex } from '../../../src/sys/indexfs.js';
import { smallDepmodDir } from '../../support/small-index.js';

const AHCI = 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01';
const hourAgo = (): Date => new Date(Date.now() - 3600_000);
const later = (): Date => new Date(Date.now() + 60_000);

describe('index choice at every load', () => {
  let dir: string;
  let meta: Uint8Array;
  beforeAll(async () => {
    dir = smallDepmodDir(['ahci', 'virtio_net'], 400).dir;
    // A meta.pb that differs from depmod's files (no virtio_net), to see which one answers.
    const metaDir = smallDepmodDir(['ahci'], 400).dir;
    meta = await encodeMeta(depmodParts(metaDir));
  });

  function freshMeta(): void {
    writeFileSync(join(dir, 'meta.pb'), meta);
    utimesSync(join(dir, 'modules.dep'), hourAgo(), hourAgo());
  }

  function location(): IndexLocation {
    const values = { 'modules-dir': dir, 'config-dir': [''], cmdline: '', mode: 'dry-run', 'log-level': 'error' };
    return setup(values, 'dry-run', new PassThrough()).location;
  }

  it('reads depmod files on a reload after depmod ran, and meta.pb again after build-meta ran', () => {
    freshMeta();
    const loc = location(); // once, as run does
    const first = loadIndex(loc);
    expect(first.kind).toBe('meta.pb');
    expect(first.source).toBe(join(dir, 'meta.pb'));
    expect(first.stats().kind).toBe('meta.pb');
    expect(first.moduleByName('virtio_net')).toBeUndefined();
    utimesSync(join(dir, 'modules.dep'), later(), later()); // depmod ran: meta.pb is stale
    const second = loadIndex(loc);
    expect(second.kind).toBe('depmod');
    expect(second.source).toBe(dir);
    expect(second.moduleByName('virtio_net')).toBeDefined();
    freshMeta(); // build-meta ran after depmod
    expect(loadIndex(loc).kind).toBe('meta.pb');
  });

  it("falls back to depmod's files, with a warning, when the meta.pb chosen is truncated", () => {
    freshMeta();
    truncateSync(join(dir, 'meta.pb'), Math.floor(meta.length / 2));
    const index = loadIndex(location());
    expect(index.kind).toBe('depmod');
    expect(index.lookup(AHCI).names).toEqual(['ahci']);
    expect(index.fallback).toMatchObject({ file: join(dir, 'meta.pb'), code: 'E_INDEX_CORRUPT' });
    expect(index.warnings[0]).toMatchObject({ file: join(dir, 'meta.pb') });
    expect(index.warnings[0]!.problem).toMatch(/^not used, depmod's files read instead: .*\[E_INDEX_CORRUPT\]$/);
  });

  it('falls back when the meta.pb chosen fails its checksum', () => {
    freshMeta();
    const damaged = new Uint8Array(meta);
    damaged[100]! ^= 0x10;
    writeFileSync(join(dir, 'meta.pb'), damaged);
    const index = loadIndex(location());
    expect(index.kind).toBe('depmod');
    expect(index.fallback?.problem).toMatch(/checksum mismatch/);
  });

  it('keeps an explicit --meta that is corrupt a hard E_INDEX_CORRUPT error', () => {
    freshMeta();
    truncateSync(join(dir, 'meta.pb'), Math.floor(meta.length / 2));
    expect(() => loadIndex({ ...location(), meta: join(dir, 'meta.pb') })).toThrow(expect.objectContaining({ code: 'E_INDEX_CORRUPT' }));
  });

  it("throws the meta.pb's own error when there are no depmod files to fall back to", () => {
    const lonely = mkdtempSync(join(tmpdir(), 'hotplugd-lonely-')); // a meta.pb and nothing else
    writeFileSync(join(lonely, 'meta.pb'), Buffer.from(meta).subarray(0, 1000));
    let err: HotplugError | undefined;
    try {
      loadIndex({ modulesDir: lonely, configDirs: [], cmdline: '' });
    } catch (e) {
      err = e as HotplugError;
    }
    expect(err?.code).toBe('E_INDEX_CORRUPT');
    expect(err?.message).toMatch(/meta\.pb: truncated/);
  });
});
