/**
 * build-meta replaces meta.pb atomically: a failure mid-write (a full disk)
 * leaves the old file whole and no temporary file behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AtomicFs, writeFileAtomic } from '../../src/sys/atomic-write.js';
import { FIXTURE_DIR } from '../support/helpers.js';

function enospcAfter(limit: number): AtomicFs & { calls: string[] } {
  let written = 0;
  const calls: string[] = [];
  return {
    calls,
    openSync: (p, flags, mode) => (calls.push(`open ${p}`), fs.openSync(p, flags, mode)),
    writeSync: (fd, buf, off, len) => {
      if (written >= limit) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      const n = fs.writeSync(fd, buf, off, Math.min(len, limit - written));
      written += n;
      return n;
    },
    fsyncSync: (fd) => (calls.push('fsync'), fs.fsyncSync(fd)),
    closeSync: (fd) => fs.closeSync(fd),
    renameSync: (a, b) => (calls.push('rename'), fs.renameSync(a, b)),
    unlinkSync: (p) => (calls.push('unlink'), fs.unlinkSync(p)),
  };
}

describe('atomic write', () => {
  it('leaves the old file unchanged and removes the temporary file when the disk fills', () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'hotplugd-atomic-'));
    const file = join(dir, 'meta.pb');
    fs.writeFileSync(file, 'old contents');
    const ops = enospcAfter(1000);
    expect(() => writeFileAtomic(file, new Uint8Array(5000).fill(7), ops)).toThrow(
      expect.objectContaining({ code: 'E_SYSTEM', message: expect.stringMatching(/meta\.pb: cannot write \(ENOSPC\); the file is unchanged/) }),
    );
    expect(fs.readFileSync(file, 'utf8')).toBe('old contents');
    expect(fs.readdirSync(dir)).toEqual(['meta.pb']);
    expect(ops.calls).toContain('unlink');
    expect(ops.calls).not.toContain('rename');
  });

  it('writes, syncs the file, renames it over the target and syncs the directory', () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'hotplugd-atomic-'));
    const file = join(dir, 'meta.pb');
    fs.writeFileSync(file, 'old contents');
    const ops = enospcAfter(Infinity);
    writeFileAtomic(file, Buffer.from('new contents'), ops);
    expect(fs.readFileSync(file, 'utf8')).toBe('new contents');
    expect(fs.readdirSync(dir)).toEqual(['meta.pb']);
    expect(ops.calls.map((c) => c.replace(dir, 'DIR').replace(/\.meta\.pb\..*\.tmp$/, '.meta.pb.TMP'))).toEqual([
      'open DIR/.meta.pb.TMP',
      'fsync',
      'rename',
      'open DIR',
      'fsync',
    ]);
  });

  it('build-meta past the file size limit keeps the old meta.pb, which match still reads', () => {
    try {
      execFileSync('sh', ['-c', 'command -v prlimit']);
    } catch {
      throw new Error('prlimit (util-linux) is not installed: this test needs it');
    }
    const dir = fs.mkdtempSync(join(tmpdir(), 'hotplugd-atomic-'));
    for (const f of ['modules.dep', 'modules.alias']) fs.cpSync(join(FIXTURE_DIR, f), join(dir, f));
    const cli = (args: string[], limit?: number) => {
      const pre = limit === undefined ? [] : ['prlimit', `--fsize=${limit}`, '--'];
      const argv = [...pre, process.execPath, 'dist/src/cli.js', ...args];
      return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    };
    expect(cli(['build-meta', '--from-depmod', dir, '-o', join(dir, 'meta.pb')]).status).toBe(0);
    const before = fs.readFileSync(join(dir, 'meta.pb'));
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(join(dir, 'modules.dep'), old, old);
    // The rebuild dies with EFBIG a megabyte in, as it would with ENOSPC.
    const r = cli(['build-meta', '--from-depmod', dir, '-o', join(dir, 'meta.pb')], 1_000_000);
    expect(r.status).toBe(111);
    expect(r.stderr).toMatch(/meta\.pb: cannot write \(EFBIG\)/);
    expect(fs.readFileSync(join(dir, 'meta.pb')).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['meta.pb', 'modules.alias', 'modules.dep']);
    const m = cli(['match', '--modules-dir', dir, '--cmdline', '', '--config-dir', '', 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01']);
    expect(m.stdout).toBe('ahci\n');
    expect(m.stderr).toBe(''); // read from meta.pb, no fallback needed
  });
});
