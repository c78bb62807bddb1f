/**
 * The daemon's Prometheus metrics (prom-client), on a registry of their own
 * (not prom-client's global one), fed by two things only:
 * - the log records, through the RecordTap (log.ts): what the log says
 *   happened is what the metrics count, so the two never disagree;
 * - a snapshot callback read at each scrape (DaemonGauges): the state that no
 *   record carries (queue depth, requests in flight, uevents read).
 *
 * Naming follows Prometheus' conventions (and node-exporter's): `hotplugd_`
 * prefix, `_total` counters, base units (`_seconds`, `_bytes`). Every label
 * value comes from a closed set (results, skip reasons, errno names, reject
 * kinds, walk reasons); a value outside it is counted as "other", and a
 * module name, devpath or MODALIAS is never a label: series stay bounded.
 *
 * Process metrics are prom-client's defaults, under their default names
 * (`process_*`, `nodejs_*`, no prefix): the names every Prometheus client
 * library exports, which generic dashboards and alerts expect.
 */
import { constants } from 'node:os';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LOAD_MSG, LOAD_TIMEOUT_MSG, type LoadResult, type SkipReason } from './core/queue.js';
import { type ParsedRecord, type RecordTap } from './log.js';
import { VERSION } from './version.js';

/** What the daemon reports at each scrape (the lead wires it to the daemon's state). */
export interface DaemonGauges {
  /** Requests waiting in the load queue. */
  queueDepth: number;
  /** Requests being served now (a load or install command in flight): at most --jobs. */
  inFlight: number;
  /** Loads left behind by the load timeout, still inside the kernel, and install commands left behind, still running. */
  stuck: number;
  /** Uevents read from the socket since start (no record is written per uevent). */
  ueventsReceived: number;
}

/** Load duration buckets: 1 ms (a small module) to 30 s (a driver waiting on firmware or a bus scan). */
export const LOAD_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Queue wait buckets: up to 2 minutes (a coldplug of a large machine with slow drivers, serialized). */
export const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const RESULTS = {
  loaded: true,
  'already-loaded': true,
  builtin: true,
  blacklisted: true,
  failed: true,
  retrying: true,
  skipped: true,
  'would-load': true,
  'install-command': true,
  'would-run': true,
} satisfies Record<LoadResult, true>;
const SKIP_REASONS = {
  'dependency-failed': true,
  'failed-before': true,
  'in-flight': true,
  'install-command': true,
  'install-command-ran': true,
} satisfies Record<SkipReason, true>;
/** Failure codes that are not errno names: install commands (core/install.ts), path checks, an unnamed errno. */
const OWN_CODES = new Set(['E_INSTALL_SPAWN', 'E_INSTALL_TIMEOUT', 'E_INSTALL_STUCK', 'E_INSTALL_SIGNAL', 'E_INSTALL_STATUS', 'E_PATH_ESCAPE', 'E_DECOMPRESS', 'E_INPUT', 'E_TOO_LARGE', 'EUNKNOWN']);
const WALK_REASONS = new Set(['start', 'resync', 'reload']);

/** A value from a closed set, or "other". */
function closed(value: unknown, allowed: (v: string) => boolean): string {
  return typeof value === 'string' && allowed(value) ? value : 'other';
}

/**
 * The kind of a rejected uevent (the `reason` of an `uevent rejected` record,
 * from intake and core/uevent.ts, carries numbers and quoted text: the kind
 * is the bounded part).
 */
export function rejectKind(reason: unknown): string {
  if (typeof reason !== 'string') return 'other';
  if (reason === 'sender is not the kernel') return 'not-kernel';
  if (reason === 'libudev message') return 'libudev';
  if (reason === 'empty message') return 'empty';
  if (reason.startsWith('message of ')) return 'too-large';
  if (reason.startsWith('unknown action')) return 'unknown-action';
  if (reason.startsWith('SEQNUM')) return 'no-seqnum';
  return 'malformed';
}

/** Milliseconds as records carry them -> seconds, rounded to the microsecond (no 0.38839999999999997). */
function seconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: () => void;

  private readonly loads = new Counter({ name: 'hotplugd_module_loads_total', help: 'Module records written, by result (skipped: once per device and module)', labelNames: ['result'] as const, registers: [this.registry] });
  private readonly failures = new Counter({ name: 'hotplugd_module_load_failures_total', help: 'Failed module records, by errno name or hotplugd code', labelNames: ['code'] as const, registers: [this.registry] });
  private readonly skips = new Counter({ name: 'hotplugd_module_skips_total', help: 'Skipped module records, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  private readonly loadTimeouts = new Counter({ name: 'hotplugd_module_load_timeouts_total', help: 'Loads still in flight after the load timeout (left behind)', registers: [this.registry] });
  private readonly loadSeconds = new Histogram({ name: 'hotplugd_module_load_duration_seconds', help: 'Time inside finit_module per load attempt (install commands excluded)', buckets: LOAD_BUCKETS, registers: [this.registry] });
  private readonly waitSeconds = new Histogram({ name: 'hotplugd_queue_wait_seconds', help: 'Time from a request being queued to its module load or install command starting', buckets: WAIT_BUCKETS, registers: [this.registry] });
  private readonly queueDepth = new Gauge({ name: 'hotplugd_queue_depth', help: 'Requests waiting in the load queue', registers: [this.registry] });
  private readonly inFlight = new Gauge({ name: 'hotplugd_queue_in_flight', help: 'Requests being served now (at most --jobs)', registers: [this.registry] });
  private readonly stuck = new Gauge({ name: 'hotplugd_loads_stuck', help: 'Loads left behind by the load timeout, still inside the kernel, and install commands left behind past --install-timeout and its grace, still running', registers: [this.registry] });
  private readonly received = new Counter({ name: 'hotplugd_uevents_received_total', help: 'Messages read from the uevent socket', registers: [this.registry] });
  private readonly rejected = new Counter({ name: 'hotplugd_uevents_rejected_total', help: 'Uevent messages rejected, by kind (counts past 10 a minute arrive with the next minute\'s summary)', labelNames: ['reason'] as const, registers: [this.registry] });
  private readonly lost = new Counter({ name: 'hotplugd_uevents_lost_total', help: 'Uevents the kernel sent that the socket lost (SEQNUM gaps, ENOBUFS, behind uevent_seqnum)', registers: [this.registry] });
  private readonly walks = new Counter({ name: 'hotplugd_coldplug_walks_total', help: 'Walks of SYSFS/devices completed, by why they ran', labelNames: ['why'] as const, registers: [this.registry] });
  private readonly resyncs = new Counter({ name: 'hotplugd_resyncs_total', help: 'Resync walks completed after lost uevents', registers: [this.registry] });
  private readonly walkSeconds = new Gauge({ name: 'hotplugd_coldplug_walk_duration_seconds', help: 'Duration of the last completed walk of SYSFS/devices', registers: [this.registry] });
  private readonly walkDevices = new Gauge({ name: 'hotplugd_coldplug_devices', help: 'Devices found by the last completed walk', registers: [this.registry] });
  private readonly reloads = new Counter({ name: 'hotplugd_reloads_total', help: 'Index reloads (SIGHUP or reload), by result', labelNames: ['result'] as const, registers: [this.registry] });
  private readonly indexSeconds = new Gauge({ name: 'hotplugd_index_load_duration_seconds', help: 'Time the last successful index load took (start or reload)', registers: [this.registry] });
  private readonly indexModules = new Gauge({ name: 'hotplugd_index_modules', help: 'Modules in the index in use', registers: [this.registry] });
  private readonly indexAliases = new Gauge({ name: 'hotplugd_index_aliases', help: 'Alias patterns in the index in use', registers: [this.registry] });
  private readonly settledAt = new Gauge({ name: 'hotplugd_last_settled_timestamp_seconds', help: 'When the queue last drained (the last settled record), Unix time', registers: [this.registry] });
  private readonly startupSeconds = new Gauge({ name: 'hotplugd_startup_settled_seconds', help: 'Process start to the first settled record (coldplug loads done)', registers: [this.registry] });

  constructor(
    tap: RecordTap,
    private readonly gauges: () => DaemonGauges,
    opts: { processMetrics?: boolean } = {},
  ) {
    new Gauge({ name: 'hotplugd_build_info', help: 'hotplugd version (always 1)', labelNames: ['version'] as const, registers: [this.registry] }).set({ version: VERSION }, 1);
    for (const result of Object.keys(RESULTS)) this.loads.inc({ result }, 0);
    for (const why of WALK_REASONS) this.walks.inc({ why }, 0);
    for (const result of ['ok', 'failed']) this.reloads.inc({ result }, 0);
    if (opts.processMetrics !== false) this.processMetrics();
    this.unsubscribe = tap.subscribe((_line, record) => this.record(record));
  }

  /**
   * prom-client's process metrics. Its CPU counters count from their own
   * creation, which here comes after start-up (metrics-feed.ts): the CPU the
   * process used before is added, so they count from the process's start as
   * Prometheus expects. (nodejs_gc_* and the event-loop lag start with them.)
   */
  private processMetrics(): void {
    const before = process.cpuUsage();
    collectDefaultMetrics({ register: this.registry });
    const add = (name: string, micros: number): void => (this.registry.getSingleMetric(name) as Counter | undefined)?.inc(micros / 1e6);
    add('process_cpu_user_seconds_total', before.user);
    add('process_cpu_system_seconds_total', before.system);
    add('process_cpu_seconds_total', before.user + before.system);
  }

  /** The Prometheus text exposition (format 0.0.4), the gauges read now. */
  async text(): Promise<string> {
    const g = this.gauges();
    this.queueDepth.set(g.queueDepth);
    this.inFlight.set(g.inFlight);
    this.stuck.set(g.stuck);
    this.received.reset();
    this.received.inc(g.ueventsReceived);
    return this.registry.metrics();
  }

  /** The Content-Type of text(). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stop reading records. */
  close(): void {
    this.unsubscribe();
  }

  /** One record (its fields, parsed once for every consumer): counted by its message. Lines that are not JSON objects are ignored. */
  private record(parsed: ParsedRecord): void {
    const r = parsed();
    if (r === undefined) return;
    switch (r.msg) {
      case LOAD_MSG:
        return this.module(r);
      case LOAD_TIMEOUT_MSG:
        return this.loadTimeouts.inc();
      case 'uevent rejected':
        return this.rejected.inc({ reason: rejectKind(r.reason) });
      case 'uevents rejected (summary)':
        return this.rejected.inc({ reason: rejectKind(r.reason) }, num(r.suppressed) ?? 0);
      case 'uevents lost; resync scheduled': {
        const n = Number(r.lost); // a decimal string (a bigint in the daemon)
        if (Number.isSafeInteger(n) && n > 0) this.lost.inc(n);
        return;
      }
      case 'coldplug':
        return this.walk(r);
      case 'listening':
        return this.index(num(r.modules), num(r.aliases), num(r.indexMs));
      case 'reloaded': {
        this.reloads.inc({ result: 'ok' });
        const after = (v: unknown): number | undefined => num((v as { after?: unknown } | undefined)?.after);
        return this.index(after(r.modules), after(r.aliases), num(r.indexMs));
      }
      case 'reload failed; keeping the current index':
        return this.reloads.inc({ result: 'failed' });
      case 'settled':
        return this.settled(r);
    }
  }

  private module(r: Record<string, unknown>): void {
    const result = closed(r.result, (v) => Object.hasOwn(RESULTS, v));
    this.loads.inc({ result });
    if (result === 'failed') this.failures.inc({ code: closed(r.code, (v) => Object.hasOwn(constants.errno, v) || OWN_CODES.has(v)) });
    if (result === 'skipped') this.skips.inc({ reason: closed(r.reason, (v) => Object.hasOwn(SKIP_REASONS, v)) });
    const ms = num(r.ms);
    // Install commands carry `command` and their own time: not time in finit_module.
    if (ms !== undefined && r.command === undefined) this.loadSeconds.observe(seconds(ms));
    // A retrying record's wait is counted once, by the attempt that ends it.
    const queueMs = num(r.queueMs);
    if (queueMs !== undefined && result !== 'retrying') this.waitSeconds.observe(seconds(queueMs));
  }

  private walk(r: Record<string, unknown>): void {
    const why = closed(r.why, (v) => WALK_REASONS.has(v));
    this.walks.inc({ why });
    if (why === 'resync') this.resyncs.inc();
    const ms = num(r.ms);
    if (ms !== undefined) this.walkSeconds.set(seconds(ms));
    const devices = num(r.devices);
    if (devices !== undefined) this.walkDevices.set(devices);
  }

  private index(modules: number | undefined, aliases: number | undefined, ms: number | undefined): void {
    if (modules !== undefined) this.indexModules.set(modules);
    if (aliases !== undefined) this.indexAliases.set(aliases);
    if (ms !== undefined) this.indexSeconds.set(seconds(ms));
  }

  private settled(r: Record<string, unknown>): void {
    const at = typeof r.time === 'string' ? Date.parse(r.time) : typeof r.time === 'number' ? r.time : NaN;
    if (Number.isFinite(at)) this.settledAt.set(at / 1000);
    // Only the first settled record after start carries the start-up phases.
    const processMs = num(r.processMs);
    if (r.phases !== undefined && processMs !== undefined) this.startupSeconds.set(seconds(processMs));
  }
}
