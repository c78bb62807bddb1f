/**
 * DaemonMetrics: counted from the records a RecordTap hands out (the real
 * records, written by the real queue and uevent intake through a pino logger),
 * gauges read at scrape time; label values from closed sets only.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LOAD_MSG, LoadQueue } from '../../src/core/queue.js';
import { formatUevent } from '../../src/core/uevent.js';
import { createLogger, RecordTap } from '../../src/log.js';
import { type DaemonGauges, DaemonMetrics, rejectKind } from '../../src/metrics.js';
import { CONTENT_TYPE, MAX_BUFFERED_BYTES, MetricsFeed } from '../../src/metrics-feed.js';
import { loadIndex } from '../../src/sys/indexfs.js';
import { UeventIntake } from '../../src/uevent-intake.js';
import { FakeKernel } from '../support/fakes.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const ZERO: DaemonGauges = { queueDepth: 0, inFlight: 0, stuck: 0, ueventsReceived: 0 };
const HDA = 'pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00';

function logged(): { tap: RecordTap; log: ReturnType<typeof createLogger> } {
  const tap = new RecordTap();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return { tap, log: createLogger({ format: 'json', level: 'debug', stream: sink, tap }) };
}

function metricsOf(tap: RecordTap, gauges: () => DaemonGauges = () => ZERO): DaemonMetrics {
  return new DaemonMetrics(tap, gauges, { processMetrics: false });
}

/** The value of one sample line ("name{labels} value"), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('DaemonMetrics', () => {
  it('counts the records the real queue writes, by result and by errno, never naming a module', async () => {
    const { tap, log } = logged();
    const m = metricsOf(tap);
    const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
    const queue = new LoadQueue({ index, kernel: new FakeKernel({ snd_hda_intel: 'ENODEV' }), log, modulesDir: '/lib/modules/test' });
    queue.submit({ modalias: HDA, devpath: '/devices/a', origin: 'uevent' });
    await queue.idle();
    queue.submit({ modalias: HDA, devpath: '/devices/b', origin: 'uevent' }); // failed before: skipped
    await queue.idle();
    const text = await m.text();
    expect(sample(text, 'hotplugd_module_loads_total{result="failed"}')).toBe(1);
    expect(sample(text, 'hotplugd_module_loads_total{result="loaded"}')).toBe(queue.counts.loaded);
    expect(queue.counts.loaded).toBeGreaterThan(0);
    expect(sample(text, 'hotplugd_module_load_failures_total{code="ENODEV"}')).toBe(1);
    expect(sample(text, 'hotplugd_module_skips_total{reason="failed-before"}')).toBe(1);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_count')).toBe(queue.counts.loaded + 1);
    expect(sample(text, 'hotplugd_queue_wait_seconds_count')).toBe(queue.counts.loaded + 1);
    expect(text).not.toMatch(/snd_hda|\/devices\/|pci:v/);
  });

  it('puts load and wait times in second buckets from 1 ms to 30 s, leaving install commands and retries out where they do not belong', async () => {
    const tap = new RecordTap();
    const m = metricsOf(tap);
    const rec = (fields: object): void => tap.publish(JSON.stringify({ level: 30, msg: LOAD_MSG, module: 'x', ...fields }));
    rec({ result: 'loaded', ms: 0.4, queueMs: 2000 });
    rec({ result: 'loaded', ms: 4000, queueMs: 0.2 });
    rec({ result: 'retrying', code: 'EAGAIN', ms: 20, queueMs: 1 }); // a load attempt; its wait is counted by the final record
    rec({ result: 'install-command', command: '/bin/true', ms: 7, queueMs: 3 }); // not finit_module
    const text = await m.text();
    expect(sample(text, 'hotplugd_module_load_duration_seconds_bucket{le="0.001"}')).toBe(1);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_bucket{le="0.025"}')).toBe(2);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_bucket{le="2.5"}')).toBe(2);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_bucket{le="5"}')).toBe(3);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_bucket{le="30"}')).toBe(3);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_count')).toBe(3);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_sum')).toBeCloseTo(4.0204, 6);
    expect(sample(text, 'hotplugd_queue_wait_seconds_count')).toBe(3);
    expect(sample(text, 'hotplugd_queue_wait_seconds_bucket{le="0.001"}')).toBe(1);
    expect(sample(text, 'hotplugd_queue_wait_seconds_bucket{le="2.5"}')).toBe(3);
    expect(sample(text, 'hotplugd_queue_wait_seconds_bucket{le="1"}')).toBe(2);
  });

  it('counts a value outside the closed sets as "other": hostile records cannot add series', async () => {
    const tap = new RecordTap();
    const m = metricsOf(tap);
    for (let i = 0; i < 100; i++) {
      tap.publish(JSON.stringify({ msg: LOAD_MSG, result: `r${i}`, ms: 1 }));
      tap.publish(JSON.stringify({ msg: LOAD_MSG, result: 'failed', code: `E${i}/../x` }));
      tap.publish(JSON.stringify({ msg: LOAD_MSG, result: 'skipped', reason: { a: i } }));
      tap.publish(JSON.stringify({ msg: 'coldplug', why: `w${i}` }));
    }
    tap.publish('not json');
    tap.publish('null');
    const text = await m.text();
    expect(sample(text, 'hotplugd_module_loads_total{result="other"}')).toBe(100);
    expect(sample(text, 'hotplugd_module_load_failures_total{code="other"}')).toBe(100);
    expect(sample(text, 'hotplugd_module_skips_total{reason="other"}')).toBe(100);
    expect(sample(text, 'hotplugd_coldplug_walks_total{why="other"}')).toBe(100);
    expect(text.split('\n').filter((l) => l.startsWith('hotplugd_module_loads_total{'))).toHaveLength(11); // 10 results and "other"
    expect(tap.size).toBe(1); // still subscribed
  });

  it('counts rejected uevents by kind from the intake\'s records, including the per-minute summary', async () => {
    const { tap, log } = logged();
    const m = metricsOf(tap);
    const intake = new UeventIntake(log, { events: 0, adds: 0, rejected: 0 }, () => undefined, () => undefined);
    intake.message(formatUevent('add', '/devices/x', { SEQNUM: '1' }), 4242); // not the kernel
    intake.message(Buffer.from('libudev\0xxxx'), 0);
    intake.message(Buffer.alloc(0), 0);
    intake.message(Buffer.alloc(9000, 65), 0);
    intake.message(formatUevent('explode', '/devices/x', { SEQNUM: '2' }), 0);
    intake.message(formatUevent('add', '/devices/x', {}), 0);
    intake.message(formatUevent('add', 'devices/x', { SEQNUM: '3' }), 0);
    tap.publish(JSON.stringify({ msg: 'uevents rejected (summary)', reason: 'sender is not the kernel', suppressed: 40 }));
    const text = await m.text();
    for (const [kind, n] of [['not-kernel', 41], ['libudev', 1], ['empty', 1], ['too-large', 1], ['unknown-action', 1], ['no-seqnum', 1], ['malformed', 1]] as const) {
      expect(sample(text, `hotplugd_uevents_rejected_total{reason="${kind}"}`), kind).toBe(n);
    }
    expect(rejectKind(42)).toBe('other');
  });

  it('reads the gauges and the uevents received at each scrape, not before', async () => {
    let g: DaemonGauges = { queueDepth: 3, inFlight: 1, stuck: 0, ueventsReceived: 10 };
    const m = metricsOf(new RecordTap(), () => g);
    const first = await m.text();
    expect(sample(first, 'hotplugd_queue_depth')).toBe(3);
    expect(sample(first, 'hotplugd_queue_in_flight')).toBe(1);
    expect(sample(first, 'hotplugd_uevents_received_total')).toBe(10);
    g = { queueDepth: 0, inFlight: 0, stuck: 2, ueventsReceived: 25 };
    const second = await m.text();
    expect(sample(second, 'hotplugd_queue_depth')).toBe(0);
    expect(sample(second, 'hotplugd_loads_stuck')).toBe(2);
    expect(sample(second, 'hotplugd_uevents_received_total')).toBe(25);
  });

  it('follows the daemon records: listening, coldplug walks, losses, resyncs, reloads, settled', async () => {
    const tap = new RecordTap();
    const m = metricsOf(tap);
    const pub = (r: object): void => tap.publish(JSON.stringify(r));
    pub({ msg: 'listening', modules: 4250, aliases: 26284, indexMs: 177.5 });
    pub({ msg: 'coldplug', why: 'start', devices: 300, ms: 120 });
    pub({ msg: 'uevents lost; resync scheduled', lost: '7', reason: 'seqnum gap', lostTotal: '7' });
    pub({ msg: 'coldplug', why: 'resync', devices: 301, ms: 80 });
    pub({ msg: 'reloaded', modules: { before: 4250, after: 12 }, aliases: { before: 26284, after: 30 }, indexMs: 2 });
    pub({ msg: 'reload failed; keeping the current index' });
    pub({ msg: 'module load still in flight', module: 'slow' });
    pub({ msg: 'settled', time: '2026-11-27T08:00:00.000Z', processMs: 350, phases: { settled: 340 } });
    pub({ msg: 'settled', time: '2026-11-27T08:00:05.000Z', processMs: 5350 });
    const text = await m.text();
    expect(sample(text, 'hotplugd_index_modules')).toBe(12);
    expect(sample(text, 'hotplugd_index_aliases')).toBe(30);
    expect(sample(text, 'hotplugd_index_load_duration_seconds')).toBe(0.002);
    expect(sample(text, 'hotplugd_coldplug_walks_total{why="start"}')).toBe(1);
    expect(sample(text, 'hotplugd_coldplug_walks_total{why="resync"}')).toBe(1);
    expect(sample(text, 'hotplugd_resyncs_total')).toBe(1);
    expect(sample(text, 'hotplugd_coldplug_devices')).toBe(301);
    expect(sample(text, 'hotplugd_coldplug_walk_duration_seconds')).toBe(0.08);
    expect(sample(text, 'hotplugd_uevents_lost_total')).toBe(7);
    expect(sample(text, 'hotplugd_reloads_total{result="ok"}')).toBe(1);
    expect(sample(text, 'hotplugd_reloads_total{result="failed"}')).toBe(1);
    expect(sample(text, 'hotplugd_module_load_timeouts_total')).toBe(1);
    expect(sample(text, 'hotplugd_startup_settled_seconds')).toBe(0.35); // the first settled record only
    expect(sample(text, 'hotplugd_last_settled_timestamp_seconds')).toBe(Date.parse('2026-11-27T08:00:05.000Z') / 1000);
  });

  it('exports prom-client\'s process metrics under their standard names, CPU counted from the process\'s start, unless asked not to, and stops counting when closed', async () => {
    const tap = new RecordTap();
    const before = process.cpuUsage();
    const m = new DaemonMetrics(tap, () => ZERO);
    const text = await m.text();
    // The CPU the process used before the metrics existed is counted (they are created after start-up).
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(before.user / 1e6);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThanOrEqual((before.user + before.system) / 1e6);
    expect(text).toMatch(/^process_start_time_seconds /m);
    expect(text).toMatch(/^hotplugd_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
    expect(await metricsOf(tap).text()).not.toMatch(/^process_/m);
    expect(m.contentType).toBe(CONTENT_TYPE);
    m.close();
    tap.publish(JSON.stringify({ msg: LOAD_MSG, result: 'loaded' }));
    expect(sample(await m.text(), 'hotplugd_module_loads_total{result="loaded"}')).toBe(0);
  });
});

describe('MetricsFeed', () => {
  it('keeps the records written before the metrics module loads and counts them once loaded', async () => {
    const tap = new RecordTap();
    const feed = new MetricsFeed(tap, () => ZERO, { processMetrics: false });
    for (let i = 0; i < 5; i++) tap.publish(JSON.stringify({ msg: LOAD_MSG, result: 'would-load' }));
    const text = await feed.text();
    tap.publish(JSON.stringify({ msg: LOAD_MSG, result: 'would-load' }));
    expect(sample(text, 'hotplugd_module_loads_total{result="would-load"}')).toBe(5);
    expect(sample(await feed.text(), 'hotplugd_module_loads_total{result="would-load"}')).toBe(6);
    feed.close();
  });

  it('loads the metrics by itself at the first settled record, or when its buffer is full', async () => {
    const settledTap = new RecordTap();
    const a = new MetricsFeed(settledTap, () => ZERO, { processMetrics: false });
    const loadedA = a.metrics.bind(a);
    let calledA = 0;
    a.metrics = () => (calledA++, loadedA());
    settledTap.publish(JSON.stringify({ msg: 'settled' }));
    await new Promise((r) => setImmediate(r));
    expect(calledA).toBe(1);

    const fullTap = new RecordTap();
    const b = new MetricsFeed(fullTap, () => ZERO, { processMetrics: false });
    const loadedB = b.metrics.bind(b);
    let calledB = 0;
    b.metrics = () => (calledB++, loadedB());
    const line = JSON.stringify({ msg: LOAD_MSG, result: 'builtin', modalias: 'x'.repeat(1000) });
    const fill = Math.ceil(MAX_BUFFERED_BYTES / line.length);
    for (let i = 0; i < fill - 1; i++) fullTap.publish(line);
    await new Promise((r) => setImmediate(r));
    expect(calledB).toBe(0);
    fullTap.publish(line);
    await new Promise((r) => setImmediate(r));
    expect(calledB).toBeGreaterThan(0);
    expect(sample(await b.text(), 'hotplugd_module_loads_total{result="builtin"}')).toBe(fill);
    a.close();
    b.close();
  });
});
