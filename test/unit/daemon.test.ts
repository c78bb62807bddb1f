/**
 * The daemon's lifecycle through DaemonDeps fakes (no socket, no /sys):
 * start-up failure, reload and walk serialization, stop during a walk,
 * READY/STOPPING order, settled rate limiting, a socket that goes deaf.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ModuleIndex } from '../../src/core/index/module-index.js';
import { formatUevent } from '../../src/core/uevent.js';
import { Daemon, type DaemonDeps } from '../../src/daemon.js';
import { Serial, SettleTracker } from '../../src/daemon-state.js';
import { HotplugError } from '../../src/errors.js';
import { type ColdplugEntry, type ColdplugResult } from '../../src/sys/coldplug.js';
import { loadIndex } from '../../src/sys/indexfs.js';
import { FakeKernel, FakeUeventSource, recordingLog } from '../support/fakes.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const INDEX = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
const DEVICES: ColdplugEntry[] = [
  { devpath: '/devices/virtio0', modalias: 'virtio:d00000001v00001AF4' },
  { devpath: '/devices/platform/pcspkr', modalias: 'platform:pcspkr' },
];

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A walk the test controls: counts concurrent walks, finishes when released (or never). */
class ControlledWalk {
  running = 0;
  maxRunning = 0;
  calls = 0;
  signals: AbortSignal[] = [];
  private releases: (() => void)[] = [];
  constructor(private readonly auto = true) {}

  walk = async (onEntry: (e: ColdplugEntry) => void, signal: AbortSignal): Promise<ColdplugResult> => {
    this.calls++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.signals.push(signal);
    try {
      if (this.auto) await tick(5);
      else await new Promise<void>((r) => this.releases.push(r));
      for (const e of DEVICES) onEntry(e);
      return { devices: DEVICES.length, entries: DEVICES, errors: [], ms: 1 };
    } finally {
      this.running--;
    }
  };

  releaseAll(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

function deps(over: Partial<DaemonDeps> & { walker?: ControlledWalk } = {}) {
  const rec = recordingLog();
  const notes: string[] = [];
  const source = new FakeUeventSource();
  const walker = over.walker ?? new ControlledWalk();
  let indexLoads = 0;
  const d: DaemonDeps = {
    log: rec.log,
    loadIndex: (): ModuleIndex => {
      indexLoads++;
      return INDEX;
    },
    kernel: new FakeKernel(),
    openSource: () => source,
    walk: walker.walk,
    readKernelSeqnum: () => undefined,
    notifier: { enabled: true, notify: (s) => void notes.push(s), close: () => undefined },
    modulesDir: '/lib/modules/x',
    ...over,
  };
  return { d, rec, notes, source, walker, indexLoads: () => indexLoads };
}

describe('Daemon start-up', () => {
  it('closes the socket, aborts the walk and sends no READY=1 when the index cannot be loaded', async () => {
    const t = deps({
      loadIndex: () => {
        throw new HotplugError('E_INDEX_MISSING', 'no depmod index here', { file: '/nonexistent' });
      },
      walker: new ControlledWalk(false),
    });
    const daemon = new Daemon(t.d);
    await expect(daemon.start()).rejects.toMatchObject({ code: 'E_INDEX_MISSING' });
    expect(t.source.closed).toBe(1);
    expect(t.walker.signals[0]!.aborted).toBe(true);
    expect(t.notes.filter((n) => n.startsWith('READY=1'))).toEqual([]);
  });

  it('sends READY=1 once the coldplug requests are queued, and never after STOPPING=1', async () => {
    const t = deps({ walker: new ControlledWalk(false) });
    const daemon = new Daemon(t.d);
    const started = daemon.start();
    await tick(5);
    await daemon.stop(); // SIGTERM while the walk hangs
    await started;
    t.walker.releaseAll();
    await tick(5);
    expect(t.walker.signals[0]!.aborted).toBe(true);
    expect(t.notes).toEqual(['STOPPING=1']);
    expect(t.rec.records().filter((r) => r.msg === 'module')).toEqual([]);
  });

  it('sends READY=1 only once the code for later use is loaded, and a failed load is logged, not fatal', async () => {
    let loaded!: () => void;
    const t = deps({ preload: () => new Promise<void>((r) => (loaded = r)) });
    const daemon = new Daemon(t.d);
    const started = daemon.start();
    await tick(20); // the walk (5 ms) is done
    expect(t.notes.filter((n) => n.startsWith('READY=1'))).toEqual([]);
    loaded();
    await started;
    expect(t.notes.filter((n) => n.startsWith('READY=1'))).toHaveLength(1);
    await daemon.stop();

    const f = deps({ preload: () => Promise.reject(new Error('chunk gone')) });
    const failing = new Daemon(f.d);
    await failing.start();
    expect(f.notes.filter((n) => n.startsWith('READY=1'))).toHaveLength(1);
    expect(f.rec.records().filter((r) => r.msg === 'code for later use could not be loaded')).toHaveLength(1);
    await failing.stop();
  });

  it('stops promptly while a walk never finishes', async () => {
    const t = deps({ walker: new ControlledWalk(false) });
    const daemon = new Daemon(t.d);
    const started = daemon.start();
    await tick(5);
    const stopping = daemon.stop();
    // Neither start() nor stop() waits for the stuck walk.
    await Promise.all([started, stopping]);
    expect(t.rec.records().some((r) => r.msg === 'stopped')).toBe(true);
  });
});

describe('Daemon idle hook (the index cache write)', () => {
  it('is called only once start-up is done and the queue has drained, after the settled record', async () => {
    const seen: string[] = [];
    const t = deps({
      idle: () => {
        seen.push(`idle after ${t.rec.records().filter((r) => r.msg === 'settled').length} settled`);
      },
      walker: new ControlledWalk(false),
    });
    const daemon = new Daemon(t.d);
    const started = daemon.start();
    await tick(5);
    expect(seen).toEqual([]); // the walk is still going: not idle
    t.walker.releaseAll();
    await started;
    for (let i = 0; i < 50 && seen.length === 0; i++) await tick(5);
    expect(seen[0]).toBe('idle after 1 settled');
    expect(t.rec.records().find((r) => r.msg === 'settled')).toMatchObject({ indexKind: 'depmod' });
    await daemon.stop();
  });
});

describe('Daemon reloads and walks', () => {
  it('merges 100 reload requests made during a reload into one more, with one walk at a time', async () => {
    const t = deps();
    const daemon = new Daemon(t.d);
    await daemon.start();
    const results = await Promise.all(Array.from({ length: 100 }, () => daemon.reload()));
    expect(results.every((r) => r)).toBe(true);
    expect(t.indexLoads()).toBe(3); // start, the first reload, one merged reload
    expect(t.walker.calls).toBe(3);
    expect(t.walker.maxRunning).toBe(1);
    await daemon.stop();
  });

  it('keeps the old index and says why when a reload cannot read the new one', async () => {
    let fail = false;
    const t = deps({
      loadIndex: () => {
        if (fail) throw new HotplugError('E_INDEX_CORRUPT', 'truncated meta.pb', { file: '/x/meta.pb' });
        return INDEX;
      },
    });
    const daemon = new Daemon(t.d);
    await daemon.start();
    fail = true;
    expect(await daemon.reload()).toBe(false);
    const err = t.rec.records().find((r) => r.msg === 'reload failed; keeping the current index');
    expect(err).toMatchObject({ code: 'E_INDEX_CORRUPT' });
    expect(t.notes.slice(-2)).toEqual(['RELOADING=1', 'READY=1']);
    await daemon.stop();
  });

  it('does not reload, walk or send READY=1 once stopping', async () => {
    const t = deps({ walker: new ControlledWalk(false) });
    const daemon = new Daemon(t.d);
    const started = daemon.start();
    await tick(1);
    t.walker.releaseAll();
    await started;
    const reloading = daemon.reload(); // its walk hangs
    await tick(5);
    await daemon.stop();
    expect(await reloading).toBe(true);
    t.walker.releaseAll();
    expect(await daemon.reload()).toBe(false);
    const stopAt = t.notes.indexOf('STOPPING=1');
    expect(stopAt).toBeGreaterThan(0);
    expect(t.notes.slice(stopAt + 1)).toEqual([]);
  });

  it('hands the reloaded index to the queue: a module the reload blacklists is not loaded', async () => {
    const conf = mkdtempSync(join(tmpdir(), 'hotplugd-reload-'));
    writeFileSync(join(conf, 'e1000.conf'), 'blacklist e1000\n');
    const blacklisting = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [conf], cmdline: '' });
    rmSync(conf, { recursive: true });
    let loads = 0;
    const kernel = new FakeKernel();
    const t = deps({ kernel, loadIndex: () => (loads++ === 0 ? INDEX : blacklisting) });
    const daemon = new Daemon(t.d);
    await daemon.start();
    expect(await daemon.reload()).toBe(true);
    expect(daemon.index).toBe(blacklisting);
    t.source.handler!(formatUevent('add', '/devices/e1000', { MODALIAS: 'pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00', SEQNUM: '1' }), 0);
    await daemon.queue.idle();
    expect(t.rec.records().filter((r) => r.msg === 'module' && r.module === 'e1000').map((r) => r.result)).toEqual(['blacklisted']);
    expect(kernel.calls.map((c) => c.name)).not.toContain('e1000');
    await daemon.stop();
  });

  it('walks again after lost events, one resync per interval however many losses', async () => {
    const t = deps({ resyncIntervalMs: 50 });
    const daemon = new Daemon(t.d);
    await daemon.start();
    const send = (seq: number): void => t.source.handler!(formatUevent('change', '/devices/x', { SEQNUM: String(seq) }), 0);
    send(1);
    for (let i = 0; i < 20; i++) send(10 + i * 10); // 20 gaps
    await tick(120);
    expect(daemon.stats.resyncs).toBeGreaterThanOrEqual(1);
    expect(daemon.stats.resyncs).toBeLessThanOrEqual(2);
    expect(t.walker.maxRunning).toBe(1);
    await daemon.stop();
  });
});

describe('Daemon records and socket', () => {
  it('says where start-up time went in its first settled record', async () => {
    const kernel = new FakeKernel();
    const t = deps({ kernel });
    const daemon = new Daemon(t.d);
    await daemon.start();
    await daemon.queue.idle();
    await tick(5);
    const settled = t.rec.records().filter((r) => r.msg === 'settled');
    expect(settled).toHaveLength(1);
    const first = settled[0] as { phases: Record<string, number>; loadMs: { count: number; total: number; max: number }; indexSource: string };
    const p = first.phases;
    for (const k of ['socketBound', 'indexReady', 'walkDone', 'firstLoadStarted', 'settled']) expect(p[k], k).toBeTypeOf('number');
    expect(p.socketBound!).toBeLessThanOrEqual(p.indexReady!);
    expect(p.indexReady!).toBeLessThanOrEqual(p.firstLoadStarted!);
    expect(Math.max(p.walkDone!, p.firstLoadStarted!)).toBeLessThanOrEqual(p.settled!);
    expect(first.loadMs.count).toBe(kernel.calls.length);
    expect(first.indexSource).toBe(INDEX.source);
    await daemon.stop();
  });

  it('writes settled when something changed, not once per uevent of a storm', async () => {
    const t = deps({ settleIntervalMs: 60_000 });
    const daemon = new Daemon(t.d);
    await daemon.start();
    await daemon.queue.idle();
    await tick(5);
    const before = t.rec.records().filter((r) => r.msg === 'settled').length;
    expect(before).toBe(1);
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 20; i++) {
        t.source.handler!(formatUevent('add', '/devices/virtio0', { MODALIAS: 'virtio:d00000001v00001AF4', SEQNUM: String(round * 20 + i + 1) }), 0);
      }
      await daemon.queue.idle();
      await tick(0);
    }
    // 1,000 uevents that changed nothing: no record within the interval.
    expect(t.rec.records().filter((r) => r.msg === 'settled').length).toBe(before);
    // A new device that loads something is reported at once.
    t.source.handler!(formatUevent('add', '/devices/e1000', { MODALIAS: 'pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00', SEQNUM: '5000' }), 0);
    await daemon.queue.idle();
    await tick(5);
    expect(t.rec.records().filter((r) => r.msg === 'settled').length).toBe(before + 1);
    await daemon.stop();
  });

  it('treats a uevent socket that stopped working as fatal and stops feeding the watchdog', async () => {
    const t = deps({ watchdogUsec: 20_000 });
    const daemon = new Daemon(t.d);
    await daemon.start();
    t.source.dead = true;
    t.source.errorHandler!(Object.assign(new Error('error when polling socket'), { code: 'EIO' }));
    const e = await daemon.fatal;
    expect(e.code).toBe('E_SYSTEM');
    expect(t.rec.records().some((r) => r.msg === 'uevent socket closed')).toBe(true);
    const watchdogs = t.notes.filter((n) => n === 'WATCHDOG=1').length;
    await tick(50);
    expect(t.notes.filter((n) => n === 'WATCHDOG=1').length).toBe(watchdogs);
    await daemon.stop();
  });
});

describe('Serial and SettleTracker', () => {
  it('runs one job at a time and hands over to the merged one without a gap', async () => {
    let active = 0;
    let max = 0;
    let runs = 0;
    const s = new Serial(async () => {
      runs++;
      active++;
      max = Math.max(max, active);
      await tick(2);
      active--;
      return runs;
    });
    const first = s.run();
    const merged = [s.run(), s.run(), s.run()];
    expect(await first).toBe(1);
    expect(await Promise.all(merged)).toEqual([2, 2, 2]);
    expect(max).toBe(1);
    expect(s.running).toBe(false);
  });

  it('writes a trailing record when unchanged drains keep coming', async () => {
    let now = 0;
    let written = 0;
    const t = new SettleTracker(() => written++, () => true, 100, () => now);
    t.touch();
    t.drained({ loaded: 1 });
    expect(written).toBe(1);
    t.touch();
    t.drained({ loaded: 1 }); // unchanged, within the interval: trailing
    expect(written).toBe(1);
    now = 100;
    await tick(150);
    expect(written).toBe(2);
    t.cancel();
  });
});
