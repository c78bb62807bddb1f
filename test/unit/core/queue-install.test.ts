/**
 * An install command never holds the queue: past its time limit plus the
 * grace, a command with no outcome (a process SIGKILL cannot end) is
 * recorded failed (E_INSTALL_STUCK), its dependents are skipped, the next
 * request is served, and it is left behind (stuck) until it ends, as a load
 * past the load timeout is. Fake runner; the time limits are a few ms.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INSTALL_ENDED_MSG, LoadQueue, type QueuePolicy } from '../../../src/core/queue.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { FakeKernel, FakeRunner, recordingLog } from '../../support/fakes.js';
import { FIXTURE_DIR } from '../../support/helpers.js';

const USB = 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00';

function setup(conf: string, runner: FakeRunner, policy: QueuePolicy = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-conf-'));
  writeFileSync(join(dir, 'test.conf'), conf);
  const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [dir], cmdline: '' });
  const rec = recordingLog();
  const kernel = new FakeKernel();
  const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/lib/modules/test', runner, installTimeoutMs: 20, installGraceMs: 10, ...policy });
  const loads = () => rec.records().filter((r) => r.msg === 'module');
  return { queue, kernel, rec, loads };
}

describe('an install command that never ends', () => {
  it('is recorded failed E_INSTALL_STUCK, its dependents skip, the next request is served, and it stays stuck until it ends', async () => {
    const runner = new FakeRunner({ usb_storage: 'hang' });
    const { queue, kernel, rec, loads } = setup('install usb-storage /bin/true\n', runner);
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-1', origin: 'uevent' });
    queue.submit({ modalias: 'platform:pcspkr', devpath: '/devices/pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(queue.busy).toBe(false);
    expect(loads().find((r) => r.module === 'usb_storage')).toMatchObject({ result: 'failed', code: 'E_INSTALL_STUCK', command: '/bin/true', installTimeoutMs: 20, devpath: '/devices/usb1/1-1' });
    expect(loads().find((r) => r.module === 'uas')).toMatchObject({ result: 'skipped', reason: 'dependency-failed', failedDependency: 'usb_storage' });
    // The next request was served.
    expect(kernel.calls.map((c) => c.name)).toContain('pcspkr');
    expect(loads().find((r) => r.module === 'pcspkr')).toMatchObject({ result: 'loaded' });
    expect(queue.stuckModules).toEqual(['usb_storage']);
    expect(queue.counts).toMatchObject({ failed: 1, installCommands: 1, installStuck: 1 });
    // Another device while it is stuck: never started twice.
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-2', origin: 'uevent' });
    await queue.idle();
    expect(runner.runs).toHaveLength(1);
    expect(loads().find((r) => r.module === 'usb_storage' && r.devpath === '/devices/usb1/1-2')).toMatchObject({ result: 'skipped', reason: 'in-flight' });
    // It ends at last (the SIGKILL took effect once the process could run): one record, no longer stuck.
    runner.release('usb_storage');
    await new Promise((r) => setImmediate(r));
    expect(queue.stuckModules).toEqual([]);
    expect(rec.records().filter((r) => r.msg === INSTALL_ENDED_MSG)).toEqual([expect.objectContaining({ module: 'usb_storage', exitCode: null, signal: 'SIGKILL', level: 40 })]);
  });

  it('gives the runner the time limit, and a command killed at it within the grace is E_INSTALL_TIMEOUT, not stuck', async () => {
    const runner = new FakeRunner({ pcspkr: 'timeout' });
    const { queue, loads } = setup('install pcspkr /bin/true\n', runner, { installTimeoutMs: 1234 });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(runner.runs).toEqual([{ module: 'pcspkr', command: '/bin/true', timeoutMs: 1234 }]);
    expect(loads()[0]).toMatchObject({ result: 'install-command', code: 'E_INSTALL_TIMEOUT', timedOut: true });
    expect(queue.stuckModules).toEqual([]);
  });

  it('frees its load slot with --jobs: the other loads go on', async () => {
    const runner = new FakeRunner({ usb_storage: 'hang' });
    const { queue, kernel, loads } = setup('install usb-storage /bin/true\n', runner, { jobs: 2 });
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-1', origin: 'uevent' });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    await queue.idle();
    expect(loads().find((r) => r.module === 'usb_storage')).toMatchObject({ result: 'failed', code: 'E_INSTALL_STUCK' });
    expect(kernel.calls.map((c) => c.name)).toEqual(expect.arrayContaining(['pcspkr', 'virtio_net']));
    expect(queue.stuckModules).toEqual(['usb_storage']);
    runner.release('usb_storage', 0);
  });
});
