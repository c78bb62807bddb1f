/**
 * The daemon against the real kernel's uevent socket (CI runs as root).
 * Events are made with `echo add > /sys/.../uevent`: that re-announces the
 * host's devices to every listener (udevd too), so those tests run only where
 * the machine opts in with HOTPLUGD_TEST_REAL_UEVENTS=1 (CI's throwaway
 * machine does, in .ci/run; the e2e VM proves the same path on a real kernel).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawNetlinkSocket } from 'netlink';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatUevent } from '../../src/core/uevent.js';
import { loadIndex } from '../../src/sys/indexfs.js';
import { emptySysfs, itWithRealUevents, requireRoot, type Running, startDaemon, killLeftover } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const INDEX = ['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', ''];
const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });

/** Devices of this machine with a modalias, found in the real /sys. */
function devicesWithModalias(): { dir: string; modalias: string }[] {
  const out: { dir: string; modalias: string }[] = [];
  const walk = (dir: string): void => {
    let items;
    try {
      items = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of items) {
      if (d.isDirectory()) walk(join(dir, d.name));
      else if (d.name === 'modalias') {
        try {
          out.push({ dir, modalias: readFileSync(join(dir, 'modalias'), 'latin1').trim() });
        } catch {
          // unreadable: skip
        }
      }
    }
  };
  walk('/sys/devices');
  return out;
}

let daemon: Running | undefined;
afterEach(async () => {
  await killLeftover(daemon);
  daemon = undefined;
});

describe('hotplugd run with real kernel uevents', () => {
  beforeAll(() => requireRoot());

  itWithRealUevents('turns a real add uevent into would-load records within two seconds', async () => {
    const devices = devicesWithModalias().filter((d) => index.lookup(d.modalias).names.some((n) => !index.moduleByName(n)?.builtin));
    const virtio = devices.find((d) => d.modalias.startsWith('virtio:')) ?? devices[0];
    const pcspkr = devices.find((d) => d.modalias === 'platform:pcspkr');
    expect(virtio, 'a device whose driver is a loadable module').toBeDefined();
    daemon = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs()]);
    await daemon.waitFor((r) => r.msg === 'listening', 10000, 'listening');
    for (const d of [virtio!, ...(pcspkr ? [pcspkr] : [])]) {
      const expected = index.lookup(d.modalias).names;
      const t0 = Date.now();
      writeFileSync(join(d.dir, 'uevent'), 'add');
      const devpath = d.dir.slice('/sys'.length);
      for (const name of expected) {
        const r = await daemon.waitFor((x) => x.module === name && x.devpath === devpath, 2000, `would-load ${name} for ${devpath}`);
        expect(r).toMatchObject({ result: 'would-load', modalias: d.modalias, origin: 'uevent' });
        expect(r.seqnum).toMatch(/^\d+$/);
      }
      expect(Date.now() - t0).toBeLessThan(2000);
    }
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('rejects a forged uevent sent by a userspace netlink socket, and loads nothing for it', async () => {
    daemon = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs()]);
    await daemon.waitFor((r) => r.msg === 'listening', 10000, 'listening');
    const forger = new RawNetlinkSocket(15);
    try {
      const msg = formatUevent('add', '/devices/platform/forged', { SUBSYSTEM: 'platform', MODALIAS: 'platform:pcspkr', SEQNUM: '999999999' });
      await new Promise<void>((resolve, reject) => forger.send(msg, { port: 0, groups: 1 }, (e) => (e ? reject(e) : resolve())));
    } finally {
      forger.close();
    }
    const r = await daemon.waitFor((x) => x.msg === 'uevent rejected', 2000, 'the rejection');
    expect(r.reason).toBe('sender is not the kernel');
    expect(r.senderPort).not.toBe(0);
    await new Promise((res) => setTimeout(res, 300));
    expect(daemon.records.filter((x) => x.msg === 'module')).toEqual([]);
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  itWithRealUevents('survives a storm that overflows a small receive buffer, reports the loss, resyncs, and misses no device', async () => {
    daemon = startDaemon([...INDEX, '--mode', 'dry-run', '--rcvbuf', '4K', '--skip-coldplug', '--resync-interval', '200']);
    await daemon.waitFor((r) => r.msg === 'listening', 10000, 'listening');
    const passes = 50;
    execFileSync('sh', ['-c', `for i in $(seq ${passes}); do for f in $(find /sys/devices -name uevent -type f); do echo add > "$f" 2>/dev/null; done; done; true`]);
    const lost = await daemon.waitFor((r) => r.msg === 'uevents lost; resync scheduled', 5000, 'a loss report');
    expect(BigInt(lost.lost as string)).toBeGreaterThan(0n);
    await daemon.waitFor((r) => r.msg === 'coldplug' && r.why === 'resync', 10000, 'a resync walk');
    // Every device in /sys whose modalias resolves gets a record for each of its modules.
    const wanted = new Set(devicesWithModalias().flatMap((d) => index.lookup(d.modalias).names));
    await new Promise((res) => setTimeout(res, 1000));
    const got = new Set(daemon.records.filter((r) => r.msg === 'module').map((r) => r.module as string));
    expect([...wanted].filter((m) => !got.has(m))).toEqual([]);
    expect(daemon.proc.exitCode).toBeNull();
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 60000);

  itWithRealUevents('exits 0 on SIGTERM in the middle of a burst, and reloads on SIGHUP', async () => {
    daemon = startDaemon([...INDEX, '--mode', 'dry-run']);
    await daemon.waitFor((r) => r.msg === 'settled', 10000, 'settled after coldplug');
    daemon.proc.kill('SIGHUP');
    const reloaded = await daemon.waitFor((r) => r.msg === 'reloaded', 5000, 'reloaded');
    expect(reloaded.modules).toMatchObject({ before: expect.any(Number), after: expect.any(Number) });
    execFileSync('sh', ['-c', 'for i in 1 2 3; do for f in $(find /sys/devices -name uevent -type f); do echo add > "$f" 2>/dev/null; done; done; true']);
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.records.some((r) => r.msg === 'stopped')).toBe(true);
  });

  it('refuses --mode load with one clear line where modules cannot be loaded', () => {
    const procfs = mkdtempSync(join(tmpdir(), 'hotplugd-proc-')); // no "modules" file: a kernel without module support
    const r = spawnRun([...INDEX, '--mode', 'load', '--procfs', procfs]);
    expect(r.status).toBe(111);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`cannot load modules: ${procfs}/modules is absent: this kernel has no loadable-module support`));
  });
});

function spawnRun(args: string[]): { status: number | null; stderr: string } {
  try {
    execFileSync(process.execPath, ['dist/src/cli.js', 'run', '--control', '', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
    return { status: 0, stderr: '' };
  } catch (e) {
    const err = e as { status: number | null; stderr: string };
    return { status: err.status, stderr: err.stderr };
  }
}
