/**
 * The queue's decisions over time: live kernel state (rmmod), repeat requests
 * of failed modules, transient errnos, loads that never return, and failed
 * dependencies in long and diamond-shaped graphs.
 */
import { describe, expect, it } from 'vitest';
import { indexFromDepmod } from '../../../src/core/index/from-depmod.js';
import { ModuleIndex } from '../../../src/core/index/module-index.js';
import { LOAD_TIMEOUT_MSG, LoadQueue, type QueuePolicy } from '../../../src/core/queue.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { FakeKernel, recordingLog } from '../../support/fakes.js';
import { chainIndex } from '../../support/chain-index.js';
import { FIXTURE_DIR } from '../../support/helpers.js';

const base = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });

function setup(kernel: FakeKernel, policy: QueuePolicy = {}, index: ModuleIndex = base) {
  const rec = recordingLog();
  const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/lib/modules/test', retryDelayMs: 1, ...policy });
  const loads = () => rec.records().filter((r) => r.msg === 'module');
  return { queue, rec, loads };
}

const USB = 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00';

describe('live kernel state', () => {
  it('loads a module again after rmmod removed it, and again after a reload', async () => {
    const kernel = new FakeKernel();
    const { queue, loads } = setup(kernel);
    queue.submit({ modalias: 'platform:pcspkr', devpath: '/devices/platform/pcspkr', origin: 'uevent' });
    await queue.idle();
    queue.submit({ modalias: 'platform:pcspkr', devpath: '/devices/platform/pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(1); // live: not loaded twice
    kernel.rmmod('pcspkr');
    queue.submit({ modalias: 'platform:pcspkr', devpath: '/devices/platform/pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['pcspkr', 'pcspkr']);
    expect(loads().filter((r) => r.result === 'loaded')).toHaveLength(2);
    kernel.rmmod('pcspkr');
    queue.reload(base);
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(3);
  });

  it('loads a dependency again when it was removed while its dependent stayed', async () => {
    const kernel = new FakeKernel();
    const { queue } = setup(kernel);
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    await queue.idle();
    kernel.rmmod('virtio_net');
    kernel.rmmod('failover');
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.slice(5).map((c) => c.name)).toEqual(['failover', 'virtio_net']);
  });
});

describe('failure policy', () => {
  it('gives each later device one failed-before record per module, with the earlier code, and never retries', async () => {
    const kernel = new FakeKernel({ pcspkr: 'EPERM' });
    const { queue, loads } = setup(kernel);
    for (const dev of ['/devices/a', '/devices/b']) {
      for (let i = 0; i < 3; i++) {
        queue.submit({ modalias: 'platform:pcspkr', devpath: dev, seqnum: String(i), origin: 'uevent' });
        await queue.idle();
      }
    }
    expect(kernel.calls).toHaveLength(1);
    const recs = loads().filter((r) => r.module === 'pcspkr');
    // Device a has its record (the failure); device b gets one saying why nothing loads.
    expect(recs.map((r) => [r.devpath, r.result, r.reason, r.code])).toEqual([
      ['/devices/a', 'failed', undefined, 'EPERM'],
      ['/devices/b', 'skipped', 'failed-before', 'EPERM'],
    ]);
  });

  it('repeats the skip records of a failed dependency once per device, not per uevent', async () => {
    const kernel = new FakeKernel({ usbcore: 'ENOEXEC' });
    const { queue, loads } = setup(kernel);
    for (let i = 0; i < 5; i++) {
      queue.submit({ modalias: USB, devpath: '/devices/usb1/1-1', seqnum: String(i), origin: 'uevent' });
      await queue.idle();
    }
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-2', origin: 'uevent' });
    await queue.idle();
    const byDevice = (d: string) => loads().filter((r) => r.devpath === d).map((r) => `${String(r.module)}:${String(r.result)}:${String(r.reason ?? '')}`);
    expect(byDevice('/devices/usb1/1-1')).toEqual([
      'usb_common:loaded:',
      'usbcore:failed:',
      'scsi_common:loaded:',
      'scsi_mod:loaded:',
      'usb_storage:skipped:dependency-failed',
      'uas:skipped:dependency-failed',
    ]);
    expect(byDevice('/devices/usb1/1-2')).toEqual(['usbcore:skipped:failed-before', 'usb_storage:skipped:dependency-failed', 'uas:skipped:dependency-failed']);
  });

  it('keeps the once-per-device memory bounded', async () => {
    const kernel = new FakeKernel({ pcspkr: 'EPERM' });
    const { queue, loads } = setup(kernel, { deviceRecordCap: 8 });
    for (let i = 0; i < 100; i++) {
      queue.submit({ modalias: 'platform:pcspkr', devpath: `/devices/d${i}`, origin: 'uevent' });
      await queue.idle();
    }
    expect(loads()).toHaveLength(100);
    expect((queue as unknown as { reportedForDevice: Set<string> }).reportedForDevice.size).toBe(8);
  });

  it('retries EBUSY after a backoff, recording each attempt, until the load succeeds', async () => {
    const kernel = new FakeKernel({ pcspkr: ['EBUSY', 'EAGAIN', 'ok'] });
    const { queue, loads } = setup(kernel);
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(3);
    expect(loads().map((r) => [r.result, r.code, r.attempt])).toEqual([
      ['retrying', 'EBUSY', 1],
      ['retrying', 'EAGAIN', 2],
      ['loaded', undefined, 3],
    ]);
    expect(queue.counts).toMatchObject({ loaded: 1, failed: 0, retries: 2 });
  });

  it('gives up on a transient errno after maxAttempts and records the failure', async () => {
    const kernel = new FakeKernel({ pcspkr: 'ENOMEM' });
    const { queue, loads } = setup(kernel, { maxAttempts: 2 });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(2);
    expect(loads().map((r) => [r.result, r.attempt])).toEqual([
      ['retrying', 1],
      ['failed', 2],
    ]);
  });

  it('does not retry a permanent errno', async () => {
    const kernel = new FakeKernel({ pcspkr: 'ENOEXEC' });
    const { queue } = setup(kernel);
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(1);
  });

  it('warns about a load that never returns, goes on with the queue, and records the load when the kernel answers', async () => {
    const kernel = new FakeKernel({ virtio_net: 'hang' });
    const { queue, rec, loads } = setup(kernel, { loadTimeoutMs: 20 });
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', devpath: '/devices/v1', origin: 'uevent' });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    const warning = rec.records().find((r) => r.msg === LOAD_TIMEOUT_MSG)!;
    expect(warning).toMatchObject({ module: 'virtio_net', path: '/lib/modules/test/kernel/drivers/net/virtio_net.ko', loadTimeoutMs: 20 });
    expect(warning.ms).toBeGreaterThanOrEqual(0);
    expect(loads().find((r) => r.module === 'pcspkr')).toMatchObject({ result: 'loaded' });
    expect(queue.stuck).toBe(1);
    // A later request for it is not loaded twice.
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', devpath: '/devices/v2', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.filter((c) => c.name === 'virtio_net')).toHaveLength(1);
    expect(loads().find((r) => r.devpath === '/devices/v2')).toMatchObject({ module: 'virtio_net', result: 'skipped', reason: 'in-flight' });
    kernel.release('virtio_net');
    await new Promise((r) => setTimeout(r, 0));
    expect(queue.stuck).toBe(0);
    expect(loads().filter((r) => r.module === 'virtio_net').at(-1)).toMatchObject({ result: 'loaded', devpath: '/devices/v1' });
  });
});

describe('failed dependencies', () => {
  it('skips all 2,999 modules above a failed bottom of a 3,000-deep chain, naming it', async () => {
    const kernel = new FakeKernel({ m0: 'ENOEXEC' });
    const { queue, loads } = setup(kernel, {}, chainIndex(3000));
    queue.submit({ modalias: 'dev:top', origin: 'uevent' });
    await queue.idle();
    const skipped = loads().filter((r) => r.result === 'skipped');
    expect(skipped).toHaveLength(2999);
    expect(skipped.every((r) => r.failedDependency === 'm0')).toBe(true);
    expect(kernel.calls).toHaveLength(1);
  });

  it('gives a diamond-shaped graph the same records as before', async () => {
    // d needs b and c, both need a (modules.dep closure lines, as depmod writes them).
    const dep = 'a.ko:\nb.ko: a.ko\nc.ko: a.ko\nd.ko: b.ko c.ko a.ko\ne.ko:\nf.ko: e.ko d.ko b.ko c.ko a.ko\n';
    const index = new ModuleIndex(indexFromDepmod({ dir: '/x', alias: 'alias dev:f f\n', dep }));
    const kernel = new FakeKernel({ a: 'ENOEXEC' });
    const { queue, loads } = setup(kernel, {}, index);
    queue.submit({ modalias: 'dev:f', origin: 'uevent' });
    await queue.idle();
    expect(loads().map((r) => [r.module, r.result, r.failedDependency])).toEqual([
      ['a', 'failed', undefined],
      ['c', 'skipped', 'a'],
      ['b', 'skipped', 'a'],
      ['d', 'skipped', 'a'],
      ['e', 'loaded', undefined],
      ['f', 'skipped', 'a'],
    ]);
  });
});
