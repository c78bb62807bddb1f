/**
 * Every input bounded (issue 8, findings 5, 7 and 9): regular files only,
 * read with a cap; decompression stops at one cap whatever the format; the
 * /sys walk survives FIFOs, symlinks, huge files and can be aborted; a
 * --cmdline/--config-dir that cannot be used is an error. Outcomes only
 * (codes, exit status, peak RSS), never timings.
 */
import { execFileSync, execSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress, MAX_MODULE_BYTES, zstdWindows } from '../../src/core/decompress.js';
import { walkSysfs } from '../../src/sys/coldplug.js';
import { SyscallKernel } from '../../src/sys/kernel.js';
import { readBounded, readBoundedSync } from '../../src/sys/readfile.js';
import { FIXTURE_DIR, rng } from '../support/helpers.js';

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'hotplugd-bounds-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function fifo(path: string): string {
  execFileSync('mkfifo', [path]);
  return path;
}

function thrown(f: () => unknown): { code?: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('did not throw');
}

async function rejected(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('did not reject');
}

describe('the bounded reader', () => {
  const dir = tmp();
  const pipe = fifo(join(dir, 'fifo'));
  const sparse = join(dir, 'sparse');
  writeFileSync(sparse, '');
  truncateSync(sparse, 100 * 1024 * 1024);
  writeFileSync(join(dir, 'exact'), 'x'.repeat(4096));
  writeFileSync(join(dir, 'over'), 'x'.repeat(4097));
  symlinkSync(join(dir, 'exact'), join(dir, 'link'));

  it('refuses a FIFO, a character device and a directory with E_INPUT, without blocking', async () => {
    for (const [file, kind] of [
      [pipe, 'a FIFO'],
      ['/dev/zero', 'a character device'],
      [dir, 'a directory'],
    ] as const) {
      const e = thrown(() => readBoundedSync(file, 4096));
      expect(e.code).toBe('E_INPUT');
      expect(e.message).toBe(`${file}: ${kind}, not a regular file: refused`);
      expect((await rejected(readBounded(file, 4096))).code).toBe('E_INPUT');
    }
  });

  it('reads /dev/null as empty where an operator names a file, refuses /dev/zero by the cap, and never opens another device', async () => {
    const opts = { memoryDevices: true };
    expect(readBoundedSync('/dev/null', 4096, opts).length).toBe(0);
    expect((await readBounded('/dev/null', 4096, opts)).length).toBe(0);
    expect(thrown(() => readBoundedSync('/dev/zero', 4096, opts)).code).toBe('E_TOO_LARGE');
    expect((await rejected(readBounded('/dev/zero', 4096, opts))).code).toBe('E_TOO_LARGE');
    // /dev/tty: major 5; refused from its stat, before any open(2) (without a controlling terminal open would say ENXIO instead).
    expect(thrown(() => readBoundedSync('/dev/tty', 4096, opts)).message).toBe('/dev/tty: a character device, not a regular file: refused');
    expect((await rejected(readBounded('/dev/tty', 4096, opts))).code).toBe('E_INPUT');
  });

  it('reads a file of exactly the cap and refuses one byte more, naming the file and the cap', async () => {
    expect(readBoundedSync(join(dir, 'exact'), 4096).length).toBe(4096);
    expect((await readBounded(join(dir, 'exact'), 4096)).length).toBe(4096);
    expect(thrown(() => readBoundedSync(join(dir, 'over'), 4096)).message).toBe(`${join(dir, 'over')}: larger than the 4 KiB cap: refused`);
    expect((await rejected(readBounded(join(dir, 'over'), 4096))).code).toBe('E_TOO_LARGE');
  });

  it('stops reading a 100 MB sparse file at the cap', async () => {
    expect(thrown(() => readBoundedSync(sparse, 64 * 1024)).code).toBe('E_TOO_LARGE');
    expect((await rejected(readBounded(sparse, 64 * 1024))).code).toBe('E_TOO_LARGE');
  });

  it('refuses a symlink with ELOOP when asked not to follow, and follows it otherwise', async () => {
    expect((await rejected(readBounded(join(dir, 'link'), 4096, { noFollow: true }))).code).toBe('ELOOP');
    expect(readBoundedSync(join(dir, 'link'), 4096).length).toBe(4096);
  });

  it('refuses a module file that is a FIFO instead of blocking on it', async () => {
    const kernel = new SyscallKernel({ procfs: dir, sysfs: dir });
    const r = await kernel.load({ name: 'fifo', path: pipe, params: '' });
    expect(r).toMatchObject({ ok: false, code: 'E_INPUT' });
  });
});

/** A fake sysfs: devices/<name>/ with the files given (string = content). */
function fakeSysfs(): { root: string; dev: (name: string) => string } {
  const root = tmp();
  mkdirSync(join(root, 'devices'));
  return {
    root,
    dev: (name) => {
      const d = join(root, 'devices', name);
      mkdirSync(d, { recursive: true });
      return d;
    },
  };
}

describe('the /sys walk', () => {
  it('reports a FIFO, a symlink to /dev/zero, a 100 MB modalias and a directory named uevent, and still finds the good devices', async () => {
    const { root, dev } = fakeSysfs();
    writeFileSync(join(dev('good1'), 'uevent'), 'DRIVER=x\nMODALIAS=pci:v00008086d00001234\n');
    writeFileSync(join(dev('good2'), 'uevent'), 'DRIVER=x\n');
    writeFileSync(join(dev('good2'), 'modalias'), 'usb:v1234p5678\n');
    for (const name of ['fifo', 'zero', 'huge']) writeFileSync(join(dev(name), 'uevent'), 'DRIVER=x\n');
    fifo(join(root, 'devices/fifo/modalias'));
    symlinkSync('/dev/zero', join(root, 'devices/zero/modalias'));
    writeFileSync(join(root, 'devices/huge/modalias'), '');
    truncateSync(join(root, 'devices/huge/modalias'), 100 * 1024 * 1024);
    mkdirSync(join(dev('uevdir'), 'uevent'));
    writeFileSync(join(dev('fifouevent'), 'modalias'), 'never:read\n');
    fifo(join(root, 'devices/fifouevent/uevent'));

    const r = await walkSysfs(root);
    expect(r.entries.map((e) => e.modalias).sort()).toEqual(['pci:v00008086d00001234', 'usb:v1234p5678']);
    expect(r.errors.map((e) => [e.path.slice(root.length), e.code]).sort()).toEqual([
      ['/devices/fifo/modalias', 'E_INPUT'],
      ['/devices/fifouevent/uevent', 'E_INPUT'],
      ['/devices/huge/modalias', 'E_TOO_LARGE'],
      ['/devices/uevdir/uevent', 'E_INPUT'],
      ['/devices/zero/modalias', 'ELOOP'],
    ]);
    expect(r.aborted).toBe(false);
  });

  it('hands out no device before the caller has returned to the event loop, then all of them in slices', async () => {
    const { root } = fakeSysfs();
    for (let i = 0; i < 300; i++) {
      mkdirSync(join(root, `devices/d${i}`));
      writeFileSync(join(root, `devices/d${i}/uevent`), `MODALIAS=fake:d${i}\n`);
    }
    const seen: string[] = [];
    const walking = walkSysfs(root, { onEntry: (e) => seen.push(e.modalias), sliceMs: 0 });
    expect(seen).toEqual([]); // the daemon builds its queue after starting the walk
    const r = await walking;
    expect(seen).toHaveLength(300);
    expect(r.entries.map((e) => e.modalias)).toEqual(seen);
  });

  it('stops when its signal is aborted and resolves with part of the tree', async () => {
    const { root } = fakeSysfs();
    // 40 levels of 25 devices each: 1,000 devices.
    let d = join(root, 'devices');
    for (let level = 0; level < 40; level++) {
      for (let i = 0; i < 25; i++) {
        mkdirSync(join(d, `dev${i}`));
        writeFileSync(join(d, `dev${i}`, 'uevent'), `MODALIAS=fake:l${level}d${i}\n`);
      }
      d = join(d, 'next');
      mkdirSync(d);
    }
    const full = await walkSysfs(root);
    expect(full.entries).toHaveLength(1000);

    const ctl = new AbortController();
    let seen = 0;
    const r = await walkSysfs(root, {
      onEntry: () => {
        if (++seen === 10) ctl.abort();
      },
      signal: ctl.signal,
    });
    expect(r.aborted).toBe(true);
    expect(seen).toBe(10);
    expect(r.entries.length).toBeLessThan(100);

    const before = new AbortController();
    before.abort();
    const none = await walkSysfs(root, { signal: before.signal });
    expect(none).toMatchObject({ aborted: true, devices: 0, entries: [] });
  });
});

describe('--cmdline and --config-dir', () => {
  const INDEX = ['match', '--modules-dir', FIXTURE_DIR, 'virtio:d00000001v00001AF4'];
  const dir = tmp();

  /** The CLI in a child with a time limit, so that a hang is a failure (status null), not a stuck test run. */
  function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ['dist/src/cli.js', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('refuses --cmdline /dev/zero at once by the cap, with one line, exit 111', () => {
    const r = cli([...INDEX, '--config-dir', '', '--cmdline', '/dev/zero']);
    expect(r.status).toBe(111);
    expect(r.stderr).toBe('hotplugd: --cmdline: /dev/zero: larger than the 64 KiB cap: refused [E_TOO_LARGE]\n');
  });

  it('takes --cmdline /dev/null and --config-dir /dev/null as empty, as modprobe -C /dev/null does', () => {
    const r = cli([...INDEX, '--config-dir', '/dev/null', '--cmdline', '/dev/null']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('virtio_net');
  });

  it('refuses a FIFO --cmdline instead of waiting for a writer', () => {
    const r = cli([...INDEX, '--config-dir', '', '--cmdline', fifo(join(dir, 'cmdline-fifo'))]);
    expect(r.status).toBe(111);
    expect(r.stderr).toMatch(/--cmdline: .*cmdline-fifo: a FIFO, not a regular file: refused \[E_INPUT\]/);
  });

  it('refuses a --cmdline larger than 64 KiB', () => {
    const big = join(dir, 'cmdline-big');
    writeFileSync(big, 'quiet '.repeat(20_000));
    const r = cli([...INDEX, '--config-dir', '', '--cmdline', big]);
    expect(r.status).toBe(111);
    expect(r.stderr).toMatch(/larger than the 64 KiB cap: refused \[E_TOO_LARGE\]/);
  });

  it('makes a missing --cmdline file an error, not a silently empty command line', () => {
    const r = cli([...INDEX, '--config-dir', '', '--cmdline', join(dir, 'no-such-cmdline')]);
    expect(r.status).toBe(111);
    expect(r.stderr).toMatch(/--cmdline: .*no-such-cmdline: no such file or directory \[E_INPUT\]/);
  });

  it('makes a missing --config-dir an error, and still applies a readable --cmdline', () => {
    const missing = cli([...INDEX, '--cmdline', '', '--config-dir', join(dir, 'no-such-dir')]);
    expect(missing.status).toBe(111);
    expect(missing.stderr).toMatch(/--config-dir: .*no-such-dir: no such file or directory \[E_INPUT\]/);
    const cmdline = join(dir, 'cmdline');
    writeFileSync(cmdline, 'quiet modprobe.blacklist=virtio_net\n');
    const r = cli([...INDEX, '--json', '--config-dir', '', '--cmdline', cmdline]);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { modules: { blacklisted: boolean }[] }).modules[0]!.blacklisted).toBe(true);
  });
});

describe('decompression', () => {
  it('gives back exactly the data in every format, up to the cap, and refuses one byte more', async () => {
    const data = Buffer.alloc(300_000, 7);
    const dir = tmp();
    writeFileSync(join(dir, 'm.ko'), data);
    execFileSync('xz', ['-k', '-0', join(dir, 'm.ko')]);
    execFileSync('zstd', ['-q', '-k', join(dir, 'm.ko')]);
    const forms = [
      ['gzip', gzipSync(data)],
      ['xz', execFileSync('cat', [join(dir, 'm.ko.xz')])],
      ['zstd', execFileSync('cat', [join(dir, 'm.ko.zst')])],
    ] as const;
    for (const [kind, packed] of forms) {
      expect(Buffer.from(await decompress(packed, kind, `m.ko.${kind}`, data.length)).equals(data)).toBe(true);
      const e = await rejected(decompress(packed, kind, `m.ko.${kind}`, data.length - 1));
      expect(e.code).toBe('E_DECOMPRESS');
      expect(e.message).toMatch(new RegExp(`^m\\.ko\\.${kind}: ${kind} data (decompresses to|declares a window or size of) more than the 299999 bytes cap`));
    }
  });

  it('answers mutated gzip, xz and zstd input with data within the cap or E_DECOMPRESS, nothing else', async () => {
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));
    const dir = tmp();
    writeFileSync(join(dir, 'm.ko'), data);
    execFileSync('xz', ['-k', '-0', join(dir, 'm.ko')]);
    execFileSync('zstd', ['-q', '-k', '--no-check', join(dir, 'm.ko')]);
    const forms = [
      ['gzip', gzipSync(data)],
      ['xz', execFileSync('cat', [join(dir, 'm.ko.xz')])],
      ['zstd', execFileSync('cat', [join(dir, 'm.ko.zst')])],
    ] as const;
    const r = rng(8);
    const cap = 64 * 1024;
    for (const [kind, packed] of forms) {
      for (let n = 0; n < 150; n++) {
        const m = Buffer.from(packed.subarray(0, n % 3 === 0 ? r(packed.length) : packed.length));
        for (let k = 0; k < 1 + r(4); k++) if (m.length > 0) m[r(Math.min(m.length, 64))] = r(256);
        try {
          expect((await decompress(m, kind, 'm', cap)).length).toBeLessThanOrEqual(cap);
        } catch (e) {
          expect((e as { code?: string }).code, String(e)).toBe('E_DECOMPRESS');
        }
      }
    }
  });

  it('refuses a zstd frame whose window is past the cap before allocating it', async () => {
    // Frame header: no content size, window 2^30 (1 GiB); one RLE block of 128 KiB zeros, last.
    const block = 1 | (1 << 1) | (131072 << 3);
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, block & 0xff, (block >> 8) & 0xff, (block >> 16) & 0xff, 0x00]);
    expect(zstdWindows(frame)).toEqual([2 ** 30]);
    const e = await rejected(decompress(frame, 'zstd', 'w.ko.zst'));
    expect(e.code).toBe('E_DECOMPRESS');
    expect(e.message).toBe('w.ko.zst: zstd data declares a window or size of more than the 256 MiB cap: refused');
  });

  describe('bombs of 600 MiB of zeros', () => {
    const dir = tmp();
    beforeAll(() => {
      // Piped straight into the compressors: the zeros never touch the disk.
      execSync(`head -c 600M /dev/zero | zstd -q -c > bomb.ko.zst`, { cwd: dir, shell: '/bin/sh' });
      execSync(`head -c 600M /dev/zero | xz -0 -T1 -c > bomb.ko.xz`, { cwd: dir, shell: '/bin/sh' });
      execSync(`head -c 600M /dev/zero | gzip -1 -c > bomb.ko.gz`, { cwd: dir, shell: '/bin/sh' });
    }, 120_000);

    /** Decompress in a child and report its peak RSS (VmHWM) with the outcome. */
    function inChild(file: string): { code?: string; message?: string; hwm: number } {
      const script = `
        import { readFileSync } from 'node:fs';
        import { decompress, compressionOf } from ${JSON.stringify(`${process.cwd()}/dist/src/core/decompress.js`)};
        const file = ${JSON.stringify(file)};
        let out = {};
        try { await decompress(readFileSync(file), compressionOf(file), file); } catch (e) { out = { code: e.code, message: e.message }; }
        const hwm = Number(/VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'))[1]) * 1024;
        console.log(JSON.stringify({ ...out, hwm }));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { code?: string; message?: string; hwm: number };
    }

    for (const ext of ['zst', 'xz', 'gz']) {
      it(`stops a .ko.${ext} bomb at the cap with E_DECOMPRESS, peak RSS under the cap + 200 MB`, () => {
        const file = join(dir, `bomb.ko.${ext}`);
        const r = inChild(file);
        expect(r.code).toBe('E_DECOMPRESS');
        expect(r.message).toMatch(/decompresses to more than the 256 MiB cap: refused$/);
        expect(r.hwm).toBeLessThan(MAX_MODULE_BYTES + 200 * 1024 * 1024);
      }, 120_000);
    }
  });
});
