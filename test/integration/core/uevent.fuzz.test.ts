/**
 * 100,000 random and mutated messages through the parser and the daemon's
 * listener path: nothing escapes, and memory stays bounded.
 */
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { formatUevent, parseUevent } from '../../../src/core/uevent.js';
import { Daemon } from '../../../src/daemon.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { FakeKernel, FakeUeventSource } from '../../support/fakes.js';
import { FIXTURE_DIR, rng } from '../../support/helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;


const MODALIASES = ['virtio:d00000001v00001AF4', 'platform:pcspkr', 'pci:v00008086d0000100Esv*', 'usb:v13FDp3940d0150dc00', 'acpi:PNP0C0A:', ''];

function message(r: (n: number) => number, seq: number): Buffer {
  const valid = formatUevent(['add', 'remove', 'change', 'bind'][r(4)]!, `/devices/x/${r(1000)}`, {
    SUBSYSTEM: 'pci',
    MODALIAS: MODALIASES[r(MODALIASES.length)]! + (r(3) === 0 ? String.fromCharCode(r(256)) : ''),
    SEQNUM: String(seq),
  });
  const m = Buffer.from(valid);
  switch (r(10)) {
    case 0:
      return m; // valid
    case 1: // flip bytes
      for (let i = 0; i < 1 + r(5); i++) m[r(m.length)] = r(256);
      return m;
    case 2:
      return m.subarray(0, r(m.length)); // truncate
    case 3:
      return Buffer.concat([Buffer.from('libudev\0'), m]);
    case 4:
      return Buffer.alloc(r(20000), r(256)); // junk, sometimes huge
    case 5:
      return Buffer.concat(Array.from({ length: 1 + r(200) }, () => Buffer.from(`K${r(9)}=${'v'.repeat(r(50))}\0`)));
    case 6:
      return Buffer.from(m.toString('latin1').replace(/=/g, r(2) ? '' : '=='), 'latin1');
    case 7:
      return Buffer.concat([m, m]); // duplicate keys
    case 8: {
      const b = Buffer.alloc(r(64));
      for (let i = 0; i < b.length; i++) b[i] = r(256);
      return b;
    }
    default:
      return Buffer.from(m.toString('latin1').replace('@', r(2) ? '' : '@@'), 'latin1');
  }
}

describe('fuzzing the uevent path', () => {
  it('parses 100,000 random and mutated messages without throwing', () => {
    const r = rng(2024);
    let ok = 0;
    for (let i = 0; i < 100000; i++) {
      const res = parseUevent(message(r, i));
      if (res.ok) ok++;
      else expect(typeof res.reason).toBe('string');
    }
    expect(ok).toBeGreaterThan(5000);
    expect(ok).toBeLessThan(100000);
  });

  it('feeds 100,000 of them through the daemon listener: it keeps running and memory stays bounded', async () => {
    let lines = 0;
    const log = pino({ level: 'debug' }, new Writable({ write: (_c, _e, cb) => (lines++, cb()) }));
    const source = new FakeUeventSource();
    const kernel = new FakeKernel();
    const daemon = new Daemon({
      log,
      loadIndex: () => loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' }),
      kernel,
      openSource: () => source,
      walk: async () => ({ devices: 0, entries: [], errors: [], ms: 0 }),
      readKernelSeqnum: () => undefined,
      notifier: { enabled: false, notify: () => undefined, close: () => undefined },
      modulesDir: '/lib/modules/x',
      resyncIntervalMs: 10,
    });
    await daemon.start();
    const r = rng(99);
    const round = async (n: number, from: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        source.handler!(message(r, from + i), r(8) === 0 ? 1 + r(1000) : 0);
        if (i % 1000 === 0) await new Promise((res) => setImmediate(res));
      }
      await daemon.queue.idle();
    };
    await round(20000, 0); // warm up: JIT, caches
    gc();
    const before = process.memoryUsage().heapUsed;
    await round(80000, 20000);
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    expect(daemon.stats.events).toBe(100000);
    expect(daemon.stats.rejected).toBeGreaterThan(10000);
    expect(daemon.stats.adds).toBeGreaterThan(1000);
    expect(kernel.calls.length).toBeGreaterThan(0);
    expect(growth).toBeLessThan(16 * 1024 * 1024);
    expect(lines).toBeGreaterThan(0);
    await daemon.stop();
  }, 120000);
});
