import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyConfig, parseCmdline, parseModprobeConf } from '../../../src/core/config.js';
import { ModuleIndex } from '../../../src/core/index/module-index.js';
import { type LoadRequest, LoadQueue } from '../../../src/core/queue.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { SyscallKernel } from '../../../src/sys/kernel.js';
import { FakeKernel, recordingLog } from '../../support/fakes.js';
import { FIXTURE_DIR } from '../../support/helpers.js';

const base = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });

function indexWith(conf: string): ModuleIndex {
  return loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [writeConf(conf)], cmdline: '' });
}

function writeConf(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-conf-'));
  writeFileSync(join(dir, 'test.conf'), text);
  return dir;
}

function setup(opts: { index?: ModuleIndex; kernel?: FakeKernel } = {}) {
  const kernel = opts.kernel ?? new FakeKernel();
  const rec = recordingLog();
  const queue = new LoadQueue({ index: opts.index ?? base, kernel, log: rec.log, modulesDir: '/lib/modules/test' });
  const loads = () => rec.records().filter((r) => r.msg === 'module');
  return { kernel, queue, rec, loads };
}

const HDA = 'pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00';
const ALIAS = (name: string): LoadRequest => ({ module: name, origin: 'request' });

describe('LoadQueue', () => {
  it('loads a module with its modules.dep closure deepest first, as modprobe orders it', async () => {
    const { kernel, queue, loads } = setup();
    queue.submit({ modalias: HDA, devpath: '/devices/pci0000:00/0000:00:1b.0', seqnum: '42', origin: 'uevent' });
    await queue.idle();
    // modprobe --show-depends snd_hda_intel on the same index:
    expect(kernel.calls.map((c) => c.name)).toEqual([
      'soundcore', 'snd', 'snd_timer', 'snd_pcm', 'snd_hwdep', 'snd_hda_core', 'snd_hda_codec', 'snd_intel_sdw_acpi', 'snd_intel_dspcfg', 'snd_hda_intel',
    ]);
    const last = loads().at(-1)!;
    expect(last).toMatchObject({ module: 'snd_hda_intel', result: 'loaded', modalias: HDA, devpath: '/devices/pci0000:00/0000:00:1b.0', seqnum: '42' });
    expect(last.path).toBe('/lib/modules/test/kernel/sound/pci/hda/snd-hda-intel.ko');
    expect(typeof last.ms).toBe('number');
    expect(typeof last.queueMs).toBe('number');
    expect(loads()[0]).toMatchObject({ module: 'soundcore', dependencyOf: 'snd_hda_intel', role: 'dependency' });
  });

  it('honours softdeps: pre before the module (after its dependencies)', async () => {
    const { kernel, queue } = setup();
    queue.submit(ALIAS('ext4'));
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['crc32c_intel', 'crc32c_generic', 'jbd2', 'mbcache', 'crc16', 'ext4']);
  });

  for (const [code, result] of [
    ['EEXIST', 'already-loaded'],
    ['ENOENT', 'failed'],
    ['EPERM', 'failed'],
    ['ENOEXEC', 'failed'],
    ['EINVAL', 'failed'],
    ['ENOSYS', 'failed'],
    ['EACCES', 'failed'],
  ] as const) {
    it(`records ${code} from the kernel as ${result} and goes on with the next request`, async () => {
      const { queue, loads, kernel } = setup({ kernel: new FakeKernel({ virtio_net: code }) });
      queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
      queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
      await queue.idle();
      const net = loads().find((r) => r.module === 'virtio_net')!;
      expect(net).toMatchObject({ result, code, errno: expect.any(Number) });
      expect(loads().find((r) => r.module === 'pcspkr')).toMatchObject({ result: 'loaded' });
      expect(kernel.calls.filter((c) => c.name === 'virtio_net')).toHaveLength(1);
    });
  }

  it('turns 1,000 uevents for one modalias into one load', async () => {
    const { kernel, queue, loads } = setup();
    for (let i = 0; i < 1000; i++) queue.submit({ modalias: 'virtio:d00000001v00001AF4', seqnum: String(i), origin: 'uevent' });
    await queue.idle();
    for (let i = 0; i < 1000; i++) queue.submit({ modalias: 'virtio:d00000001v00001AF4', seqnum: String(i), origin: 'uevent' });
    await queue.idle();
    // modprobe --show-depends virtio_net on the same index:
    expect(kernel.calls.map((c) => c.name)).toEqual(['virtio_ring', 'virtio', 'failover', 'net_failover', 'virtio_net']);
    expect(loads().filter((r) => r.module === 'virtio_net')).toHaveLength(1);
    expect(queue.counts.requests).toBe(2000);
  });

  it('skips the dependents of a failed dependency, naming it', async () => {
    const { kernel, queue, loads } = setup({ kernel: new FakeKernel({ usbcore: 'ENOEXEC' }) });
    queue.submit({ modalias: 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['usb_common', 'usbcore', 'scsi_common', 'scsi_mod']);
    const skipped = loads().filter((r) => r.result === 'skipped');
    expect(skipped.map((r) => r.module).sort()).toEqual(['uas', 'usb_storage']);
    expect(skipped.every((r) => r.failedDependency === 'usbcore')).toBe(true);
  });

  it('does not retry a failed module for later events until the index is reloaded', async () => {
    const { kernel, queue } = setup({ kernel: new FakeKernel({ pcspkr: 'EPERM' }) });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(1);
    queue.reload(base);
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(2);
  });

  it('skips built-in modules and loaded ones, recording each once', async () => {
    const loaded = new Map([['failover', 'live' as const]]);
    const { kernel, queue, loads } = setup({ kernel: new FakeKernel({}, loaded) });
    queue.submit(ALIAS('ext4'));
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    queue.submit({ modalias: 'fs-debugfs', origin: 'uevent' });
    queue.submit({ modalias: 'fs-debugfs', origin: 'coldplug' });
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).not.toContain('failover');
    expect(loads().filter((r) => r.result === 'builtin').map((r) => r.module)).toEqual(['debugfs']);
  });

  it('applies the blacklist to modalias matches only, never to dependencies', async () => {
    const index = indexWith('blacklist snd_pcm\nblacklist virtio_net\n');
    const { kernel, queue, loads } = setup({ index });
    queue.submit({ modalias: HDA, origin: 'uevent' });
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toContain('snd_pcm');
    expect(kernel.calls.map((c) => c.name)).not.toContain('virtio_net');
    expect(loads().find((r) => r.module === 'virtio_net')).toMatchObject({ result: 'blacklisted' });
  });

  it('passes modprobe.d options first and command-line parameters last, as libkmod joins them', async () => {
    const cfg = emptyConfig();
    // The daemon reads the command line before modprobe.d (sys/indexfs.ts); the order of options must not depend on that.
    parseCmdline('pcspkr.from_cmdline=1', cfg);
    parseModprobeConf('options pcspkr debug=1\n', 'x.conf', cfg);
    const index = new ModuleIndex(
      (await import('../../../src/core/index/from-depmod.js')).indexFromDepmod({
        dir: FIXTURE_DIR,
        alias: 'alias platform:pcspkr pcspkr\n',
        dep: 'kernel/drivers/input/misc/pcspkr.ko:\n',
      }),
      cfg,
    );
    const { kernel, queue } = setup({ index });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls[0]!.params).toBe('debug=1 from_cmdline=1');
  });

  it('passes options written for the alias a module was found by, and not to its dependencies', async () => {
    const cfg = emptyConfig();
    parseModprobeConf('alias my-beeper pcspkr\noptions my-beeper viaalias=1\noptions platform:pcspkr viamodalias=1\n', 'x.conf', cfg);
    const index = new ModuleIndex(
      (await import('../../../src/core/index/from-depmod.js')).indexFromDepmod({
        dir: FIXTURE_DIR,
        alias: 'alias platform:pcspkr pcspkr\n',
        dep: 'kernel/pcspkr.ko: kernel/dep.ko\nkernel/dep.ko:\n',
      }),
      cfg,
    );
    const { kernel, queue } = setup({ index });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    queue.submit({ modalias: 'my-beeper', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.map((c) => [c.name, c.params])).toEqual([
      ['dep', ''],
      ['pcspkr', 'viamodalias=1'],
    ]);
    const again = setup({ index });
    again.queue.submit({ modalias: 'my-beeper', origin: 'uevent' });
    await again.queue.idle();
    expect(again.kernel.calls.map((c) => [c.name, c.params])).toEqual([
      ['dep', ''],
      ['pcspkr', 'viaalias=1'],
    ]);
  });

  it('loads a module with an absolute path (a depmod.d external directory) from that path', async () => {
    const parts = (await import('../../../src/core/index/from-depmod.js')).indexFromDepmod({
      dir: FIXTURE_DIR,
      alias: 'alias platform:ext ext\n',
      dep: '/lib/modules/external/ext.ko:\n',
    });
    const { kernel, queue, loads } = setup({ index: new ModuleIndex(parts) });
    queue.submit({ modalias: 'platform:ext', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.map((c) => c.path)).toEqual(['/lib/modules/external/ext.ko']);
    expect(loads()[0]).toMatchObject({ module: 'ext', result: 'loaded', path: '/lib/modules/external/ext.ko' });
  });

  it('records a module without a file, or with a path outside the module directory, as failed', async () => {
    const { indexFromDepmod } = await import('../../../src/core/index/from-depmod.js');
    const parts = indexFromDepmod({ dir: FIXTURE_DIR, alias: 'alias dev:ghost ghost\n', dep: '' });
    const { queue, loads, kernel } = setup({ index: new ModuleIndex(parts) });
    queue.submit({ modalias: 'dev:ghost', origin: 'uevent' });
    await queue.idle();
    expect(loads()[0]).toMatchObject({ module: 'ghost', result: 'failed', code: 'ENOENT' });
    expect(kernel.calls).toHaveLength(0);
  });

  it('never has more than one load in flight', async () => {
    const { kernel, queue } = setup({ kernel: new FakeKernel({}, new Map(), 2) });
    queue.submit({ modalias: HDA, origin: 'uevent' });
    queue.submit({ modalias: 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00', origin: 'uevent' });
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.length).toBeGreaterThan(15);
    expect(kernel.maxInFlight).toBe(1);
  });

  it('finishes the load in flight on stop and starts nothing new', async () => {
    const { kernel, queue } = setup({ kernel: new FakeKernel({}, new Map(), 20) });
    queue.submit({ modalias: HDA, origin: 'uevent' });
    queue.submit({ modalias: 'virtio:d00000001v00001AF4', origin: 'uevent' });
    await new Promise((r) => setTimeout(r, 5));
    const dropped = await queue.stop();
    expect(dropped).toBe(1);
    expect(kernel.calls).toHaveLength(1);
    expect(kernel.inFlight).toBe(0);
  });
});

describe('the real finit_module binding', () => {
  it('reaches the kernel through koffi and comes back as a clean failed record', async () => {
    const kernel = new SyscallKernel({ procfs: '/proc', sysfs: '/sys' });
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-mod-'));
    writeFileSync(join(dir, 'bogus.ko'), Buffer.from('not an ELF module'));
    const parts = (await import('../../../src/core/index/from-depmod.js')).indexFromDepmod({ dir, alias: 'alias dev:bogus bogus\n', dep: 'bogus.ko:\n' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index: new ModuleIndex(parts), kernel, log: rec.log, modulesDir: dir });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    queue.submit({ modalias: 'dev:bogus', origin: 'uevent' });
    await queue.idle();
    clearInterval(timer);
    const r = rec.records().find((x) => x.module === 'bogus')!;
    expect(r.result).toBe('failed');
    const hasModules = (await import('node:fs')).existsSync('/proc/modules');
    if (!hasModules) {
      // This kernel has no loadable-module support: finit_module answers ENOSYS.
      expect(r.code).toBe('ENOSYS');
    } else {
      // A kernel with modules refuses the bogus image (or an unprivileged caller).
      expect(['ENOEXEC', 'EINVAL', 'EPERM', 'EKEYREJECTED', 'EBADMSG']).toContain(r.code);
    }
    expect(r.errno).toBeGreaterThan(0);
    expect(ticks).toBeGreaterThanOrEqual(0);
  });
});
