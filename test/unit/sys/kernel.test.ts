/** Kernel.moduleState on temporary sysfs trees, read as kmod 30's kmod_module_get_initstate reads it. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoadQueue } from '../../../src/core/queue.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { DryRunKernel, readModuleState, SyscallKernel } from '../../../src/sys/kernel.js';
import { recordingLog } from '../../support/fakes.js';
import { FIXTURE_DIR } from '../../support/helpers.js';

function tree(): string {
  const sys = mkdtempSync(join(tmpdir(), 'hotplugd-sys-'));
  const mod = (name: string, initstate?: string): void => {
    mkdirSync(join(sys, 'module', name), { recursive: true });
    if (initstate !== undefined) writeFileSync(join(sys, 'module', name, 'initstate'), initstate);
  };
  mod('pcspkr', 'live\n');
  mod('snd', 'coming\n');
  mod('usbcore', 'going\n');
  mod('half_made'); // the kernel has made the directory, not yet initstate
  mod('odd', 'sleeping\n');
  mod('fifo');
  execFileSync('mkfifo', [join(sys, 'module/fifo/initstate')]);
  writeFileSync(join(sys, 'module/notadir'), 'x');
  return sys;
}

describe('module state from SYSFS/module/NAME/initstate', () => {
  it('reads live, coming and going; a directory without initstate is coming (kmod 30); anything else is unknown', () => {
    const sys = tree();
    const state = (n: string) => readModuleState(sys, n);
    expect(['pcspkr', 'snd', 'usbcore', 'half_made', 'odd', 'absent', 'notadir'].map(state)).toEqual([
      'live', 'coming', 'going', 'coming', undefined, undefined, undefined,
    ]);
  });

  it('never blocks on a FIFO and never leaves the module directory', () => {
    const sys = tree();
    expect(readModuleState(sys, 'fifo')).toBeUndefined();
    expect(readModuleState(sys, '../module/pcspkr')).toBeUndefined();
    expect(readModuleState(sys, '..')).toBeUndefined();
    expect(readModuleState(sys, '')).toBeUndefined();
  });

  it('is what the real kernel seam answers', () => {
    const sys = tree();
    expect(new SyscallKernel({ sysfs: sys, procfs: sys }).moduleState('pcspkr')).toBe('live');
  });

  it('dry-run remembers what it would have loaded, on top of the real state, until forget()', async () => {
    const sys = tree();
    const kernel = new DryRunKernel({ sysfs: sys, procfs: sys });
    const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/lib/modules/test' });
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', devpath: '/devices/a', origin: 'uevent' });
    await queue.idle();
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', devpath: '/devices/b', origin: 'uevent' });
    await queue.idle();
    const would = () => rec.records().filter((r) => r.result === 'would-load').map((r) => r.module);
    expect(would()).toEqual(['virtio_ring', 'virtio', 'failover', 'net_failover', 'virtio_net']);
    expect(kernel.moduleState('virtio_net')).toBe('live');
    expect(kernel.moduleState('pcspkr')).toBe('live');
    queue.reload(index);
    expect(kernel.moduleState('virtio_net')).toBeUndefined();
  });
});
