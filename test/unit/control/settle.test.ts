/**
 * Settle through the Daemon with fakes: a flood of uevents and coldplug
 * requests, settle asked at random moments; no answer "settled" while a
 * request is queued or a load in flight, or before the seqnum read at the
 * call was handled; seqnums never received are covered by the resync walk.
 */
import { getEventListeners, setMaxListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { formatUevent } from '../../../src/core/uevent.js';
import { Daemon, type DaemonDeps } from '../../../src/daemon.js';
import { type ColdplugEntry, type ColdplugResult } from '../../../src/sys/coldplug.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { FakeKernel, FakeUeventSource, recordingLog } from '../../support/fakes.js';
import { FIXTURE_DIR } from '../../support/helpers.js';

const INDEX = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MODALIASES = ['platform:pcspkr', 'virtio:d00000001v00001AF4', 'pci:v00008086d0000100Esv00008086sd0000001Ebc02sc00i00', 'usb:v0BDAp8153d3000dc00dsc00dp00icFFiscFFip00in00'];

function setup(kernel: FakeKernel) {
  const source = new FakeUeventSource();
  let seqnum = 1000n;
  const walks: number[] = [];
  const d: DaemonDeps = {
    log: recordingLog('info').log,
    loadIndex: () => INDEX,
    kernel,
    openSource: () => source,
    walk: async (onEntry: (e: ColdplugEntry) => void): Promise<ColdplugResult> => {
      walks.push(1);
      await tick(2);
      for (const [i, m] of MODALIASES.entries()) onEntry({ devpath: `/devices/walk${i}`, modalias: m });
      return { devices: MODALIASES.length, entries: [], errors: [], ms: 2 };
    },
    readKernelSeqnum: () => seqnum,
    notifier: { enabled: false, notify: () => undefined, close: () => undefined },
    modulesDir: FIXTURE_DIR,
    quietCheckMs: 5,
    resyncIntervalMs: 0,
  };
  /**
   * The kernel emits one uevent (seqnum+1) and the socket delivers it now,
   * a few ms later (still in the socket's buffer when settle is called), or
   * never (another network namespace).
   */
  const emit = (i: number, deliver: 'now' | 'later' | 'never' = 'now'): void => {
    seqnum++;
    if (deliver === 'never') return;
    const env: Record<string, string> = { SEQNUM: seqnum.toString(), SUBSYSTEM: 'x' };
    if (i % 3 !== 2) env.MODALIAS = MODALIASES[i % MODALIASES.length]!;
    const msg = formatUevent(i % 5 === 4 ? 'change' : 'add', `/devices/dev${i}`, env);
    if (deliver === 'now') source.handler!(msg, 0);
    else setTimeout(() => source.handler!(msg, 0), 3);
  };
  return { d, source, emit, walks, kernelSeqnum: () => seqnum };
}

describe('settle', () => {
  it('never answers settled while a request is queued or in flight, nor before the seqnum read at the call was handled', async () => {
    // Loads take 0-3 ms each; reloads between bursts make every modalias load again.
    const kernel = new FakeKernel({}, new Map(), (name) => name.length % 4);
    const t = setup(kernel);
    const daemon = new Daemon(t.d);
    await daemon.start();
    const answers: { settled: boolean; ok: boolean }[] = [];
    const asks: Promise<void>[] = [];
    let i = 0;
    for (let round = 0; round < 30; round++) {
      const burst = 1 + ((round * 7) % 13);
      for (let k = 0; k < burst; k++) t.emit(i++, k === burst - 1 && round % 2 === 0 ? 'later' : 'now');
      if (round % 10 === 9) void daemon.reload();
      asks.push(
        daemon.waitSettled(5000).then((o) => {
          // Checked in the same turn the waiter resolved: nothing can have been queued since.
          const handled = BigInt((daemon.pending().seqnum as { handled: string }).handled);
          answers.push({ settled: o.settled, ok: !daemon.queue.busy && kernel.inFlight === 0 && handled >= o.target! });
        }),
      );
      await tick(round % 3);
    }
    await Promise.all(asks);
    expect(answers).toHaveLength(30);
    expect(answers.every((a) => a.settled && a.ok)).toBe(true);
    expect(kernel.calls.length).toBeGreaterThan(0);
    await daemon.stop();
  });

  it('does not answer while a load hangs, and answers once it ends', async () => {
    const kernel = new FakeKernel({ pcspkr: 'hang' });
    const t = setup(kernel);
    const daemon = new Daemon(t.d);
    const started = daemon.start();
    await started;
    let answered = false;
    const wait = daemon.waitSettled(5000).then((o) => (answered = o.settled));
    await tick(20);
    expect(answered).toBe(false);
    expect(daemon.pending()).toMatchObject({ inFlight: ['pcspkr'] });
    expect((await daemon.waitSettled(0)).settled).toBe(false); // --timeout 0 answers at once
    kernel.release('pcspkr');
    await wait;
    expect(answered).toBe(true);
    await daemon.stop();
  });

  it('answers settled past a load the load timeout gave up on, and names it as stuck', async () => {
    const kernel = new FakeKernel({ pcspkr: 'hang' });
    const t = setup(kernel);
    const daemon = new Daemon({ ...t.d, queue: { loadTimeoutMs: 20 } });
    await daemon.start();
    const o = await daemon.waitSettled(5000);
    expect(o.settled).toBe(true);
    expect(daemon.pending()).toMatchObject({ queued: 0, stuck: ['pcspkr'] });
    kernel.release('pcspkr');
    await tick(5);
    expect(daemon.pending()).toMatchObject({ stuck: [] });
    await daemon.stop();
  });

  it('counts seqnums the socket never delivers (another network namespace) as handled once the resync walk they cause is done', async () => {
    const t = setup(new FakeKernel());
    const daemon = new Daemon(t.d);
    await daemon.start();
    await daemon.waitSettled(1000);
    const walksBefore = t.walks.length;
    t.emit(1, 'never'); // the kernel's seqnum moves, nothing arrives
    const o = await daemon.waitSettled(5000);
    expect(o.settled).toBe(true);
    expect(o.target).toBe(t.kernelSeqnum());
    expect(t.walks.length).toBe(walksBefore + 1); // settled only after the resync walk
    expect(daemon.stats.resyncs).toBe(1);
    await daemon.stop();
  });

  it('forgets a waiter whose caller went away (its connection closed)', async () => {
    const kernel = new FakeKernel({ pcspkr: 'hang' });
    const t = setup(kernel);
    const daemon = new Daemon(t.d);
    await daemon.start();
    const gone = new AbortController();
    // 50 waiters of one caller: more listeners on one signal than Node's leak warning expects (10).
    setMaxListeners(50, gone.signal);
    const waits = Array.from({ length: 50 }, () => daemon.waitSettled(86_400_000, gone.signal));
    expect(daemon.settleWaiters).toBe(50);
    gone.abort();
    expect((await Promise.all(waits)).every((o) => !o.settled)).toBe(true);
    expect(daemon.settleWaiters).toBe(0);
    kernel.release('pcspkr');
    await daemon.stop();
  });

  it('leaves no abort listener behind once a waiter is answered (one connection, many settles)', async () => {
    const kernel = new FakeKernel({ pcspkr: 'hang' });
    const t = setup(kernel);
    const daemon = new Daemon(t.d);
    await daemon.start();
    const conn = new AbortController();
    const timedOut = await Promise.all(Array.from({ length: 3 }, () => daemon.waitSettled(10, conn.signal)));
    expect(timedOut.every((o) => !o.settled)).toBe(true);
    const settled = daemon.waitSettled(86_400_000, conn.signal);
    kernel.release('pcspkr');
    expect((await settled).settled).toBe(true);
    expect(getEventListeners(conn.signal, 'abort')).toHaveLength(0);
    await daemon.stop();
  });

  it('times out with what is pending', async () => {
    const kernel = new FakeKernel({ pcspkr: 'hang' });
    const t = setup(kernel);
    const daemon = new Daemon(t.d);
    await daemon.start();
    const o = await daemon.waitSettled(30);
    expect(o.settled).toBe(false);
    expect(daemon.pending()).toMatchObject({ phase: 'running', inFlight: ['pcspkr'], walking: false });
    kernel.release('pcspkr');
    await daemon.stop();
  });

  // With the quiet check an hour apart, only the check at the moment itself can answer these.
  const QUIET = 3_600_000;

  it('answers when the message it waits for is read, though that message queued nothing', async () => {
    const t = setup(new FakeKernel());
    const daemon = new Daemon({ ...t.d, quietCheckMs: QUIET });
    await daemon.start();
    expect((await daemon.waitSettled(1000)).settled).toBe(true);
    t.emit(14, 'later'); // a `change` uevent without MODALIAS, read a few ms after settle is asked
    const o = await daemon.waitSettled(5000);
    expect(o).toEqual({ settled: true, target: t.kernelSeqnum() });
    expect(daemon.stats.events).toBe(1);
    expect(daemon.queue.counts.requests).toBe(MODALIASES.length); // the coldplug ones only
    await daemon.stop();
  });

  it('answers when a walk that queued nothing ends, and when a walk fails', async () => {
    const t = setup(new FakeKernel());
    let walks = 0;
    const walk = async (): Promise<ColdplugResult> => {
      walks++;
      await tick(5);
      if (walks === 3) throw new Error('walk failed');
      return { devices: 0, entries: [], errors: [], ms: 5 };
    };
    const daemon = new Daemon({ ...t.d, walk, quietCheckMs: QUIET });
    await daemon.start();
    expect((await daemon.waitSettled(1000)).settled).toBe(true);
    for (const expected of [2, 3]) {
      const reloading = daemon.reload(); // its walk runs from here
      expect(daemon.pending()).toMatchObject({ walking: true });
      expect((await daemon.waitSettled(5000)).settled).toBe(true);
      expect(walks).toBe(expected);
      await reloading;
    }
    await daemon.stop();
  });

  it('sends READY=1 only when the coldplug loads are done with readyAfter settled', async () => {
    const kernel = new FakeKernel({ pcspkr: 'hang' });
    const t = setup(kernel);
    const notes: string[] = [];
    const daemon = new Daemon({ ...t.d, readyAfter: 'settled', notifier: { enabled: true, notify: (s) => void notes.push(s), close: () => undefined } });
    await daemon.start();
    await tick(10);
    expect(notes.filter((n) => n.startsWith('READY=1'))).toEqual([]);
    kernel.release('pcspkr');
    await daemon.waitSettled(1000);
    await tick(0);
    expect(notes.filter((n) => n.startsWith('READY=1'))).toEqual([expect.stringContaining('coldplug done')]);
    await daemon.stop();
  });
});
